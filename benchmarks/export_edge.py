"""Exported models at the edge: int8 accuracy on held-out Omniglot, size, and latency.

1. Exports a trained Omniglot ProtoNet run (SavedModel, ONNX, LiteRT, int8 dynamic and static
   ONNX variants calibrated on training images), then classifies held-out test episodes
   (Vinyals split, 5-way 1-shot, 15 queries per class) with the float and the int8 embedding
   graphs: accuracy with 95% CI, the drop, and file sizes.
2. Latency of the predict graph (batch 1 and 64; median and p99) for TensorFlow (the loaded
   SavedModel signature), onnxruntime (float, int8 dynamic, int8 static) and LiteRT, and of the
   adapt graph (support + queries -> logits, adapting inside the graph) for TensorFlow and
   onnxruntime: ProtoNet's (embed, prototypes) and second-order MAML's (conv-4, 5-way 1-shot,
   gradient steps inside the graph).

    python benchmarks/export_edge.py runs/benchmarks/omniglot-protonet-1shot
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from _record import environment, markdown_header

import keras_meta  # noqa: I001, F401  (first: it quiets TensorFlow's start-up logs)


def accuracy(embed, episodes) -> tuple[float, float]:
    """Mean accuracy and 95% CI of nearest-prototype classification with ``embed``."""
    accs = []
    for sx, sy, qx, qy in zip(*episodes):
        ways = int(sy.max()) + 1
        es, eq = embed(sx), embed(qx)
        protos = np.stack([es[sy == c].mean(0) for c in range(ways)])
        d = ((eq[:, None, :] - protos[None]) ** 2).sum(-1)
        accs.append(np.mean(d.argmin(1) == qy))
    accs = np.asarray(accs)
    return 100 * accs.mean(), 100 * 1.96 * accs.std(ddof=1) / np.sqrt(len(accs))


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)), 1e3 * float(np.percentile(times, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a trained Omniglot ProtoNet run directory")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()

    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    from export import export_learner
    from keras_meta import config as config_lib
    from keras_meta import runs
    from keras_meta.learners import MAML
    from keras_meta.models import conv4
    from keras_meta.tasks import Omniglot

    env = environment(("tensorflow", "keras", "numpy", "tf2onnx", "onnx", "onnxruntime",
                       "ai-edge-litert"))
    env["load_average_at_start"] = round(os.getloadavg()[0], 2)
    learner, config = runs.load_learner(args.run_dir)
    tasks = Omniglot(ways=5, shots=1, queries=15, split=config["tasks"]["split"])
    test = tasks.episodes("test", args.episodes, seed=2024)
    train = tasks.episodes("train", 16, seed=1)
    calibration = [q for q in train.query_x]
    tmp = Path(tempfile.mkdtemp())
    result = export_learner(
        learner, tmp, "protonet", spec=tasks.spec, formats="savedmodel,onnx,litert",
        examples=(test.support_x[0], test.support_y[0], test.query_x[0]),
        quantization=("dynamic", "static"), calibration=calibration)
    print(result)
    version = result.path
    files = {name: version / "onnx" / f"embed{suffix}.onnx"
             for name, suffix in (("float", ""), ("int8 dynamic", ".int8-dynamic"),
                                  ("int8 static", ".int8-static"))}
    sessions = {name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                for name, path in files.items()}
    episodes = (test.support_x, test.support_y, test.query_x, test.query_y)
    rows = []
    for name, session in sessions.items():
        size = files[name].stat().st_size
        acc, ci = accuracy(lambda x, s=session: s.run(["embedding"], {"x": x})[0], episodes)
        rows.append({"graph": name, "accuracy": acc, "ci95": ci, "bytes": size})
        print(f"{name:<14} {acc:6.2f} ± {ci:.2f}  {size / 1e6:.2f} MB", flush=True)
    base = rows[0]
    for row in rows:
        row["drop"] = base["accuracy"] - row["accuracy"]
        row["size_ratio"] = row["bytes"] / base["bytes"]

    # Latency of the predict (embed) graph.
    loaded = tf.saved_model.load(str(version))
    tf_predict = loaded.signatures["serving_default"]
    litert = Interpreter(model_path=str(version / "litert" / "serving_default.tflite"))
    runner = litert.get_signature_runner("serving_default")
    latency = []
    for batch in (1, 64):
        x = test.query_x[:5].reshape(-1, 28, 28, 1)[:batch]
        if len(x) < batch:
            x = np.concatenate([x] * (-(-batch // len(x))))[:batch]
        x = np.ascontiguousarray(x, np.float32)
        cases = {"TensorFlow (SavedModel)": lambda x=x: tf_predict(x=tf.constant(x)),
                 **{f"onnxruntime {k}": (lambda s=s, x=x: s.run(None, {"x": x}))
                    for k, s in sessions.items()},
                 "LiteRT": lambda x=x: runner(x=x)}
        for name, fn in cases.items():
            median, p99 = timed(fn, args.repeats)
            latency.append({"graph": "predict", "batch": batch, "runtime": name,
                            "median_ms": median, "p99_ms": p99})
            print(f"predict batch {batch:>2} {name:<26} {median:8.2f} ms  p99 {p99:8.2f}",
                  flush=True)

    # Latency of the adapt graphs: ProtoNet's and a second-order MAML conv-4's.
    maml_config = config_lib.load("configs/omniglot/maml_5way_1shot.yaml")
    maml = MAML(conv4(ways=5), update_rule=0.4, inner_steps=1,
                eval_inner_steps=maml_config["learner"]["eval_inner_steps"],
                loss=keras_loss())
    maml_result = export_learner(maml, tmp, "maml", spec=tasks.spec, formats="savedmodel,onnx",
                                 examples=(test.support_x[0], test.support_y[0],
                                           test.query_x[0]))
    print(maml_result)
    feed = {"support_x": test.support_x[0], "support_y": test.support_y[0],
            "query_x": test.query_x[0]}
    for label, path in (("ProtoNet", version), ("MAML, 3 steps", maml_result.path)):
        adapt_tf = tf.saved_model.load(str(path)).signatures["adapt"]
        adapt_ort = ort.InferenceSession(str(path / "onnx" / "adapt.onnx"),
                                         providers=["CPUExecutionProvider"])
        cases = {"TensorFlow (SavedModel)":
                 lambda f=adapt_tf: f(**{k: tf.constant(v) for k, v in feed.items()}),
                 "onnxruntime float": lambda s=adapt_ort: s.run(None, feed)}
        for name, fn in cases.items():
            median, p99 = timed(fn, max(20, args.repeats // 4))
            latency.append({"graph": f"adapt ({label})", "batch": "5 + 75", "runtime": name,
                            "median_ms": median, "p99_ms": p99})
            print(f"adapt {label:<14} {name:<26} {median:8.2f} ms  p99 {p99:8.2f}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"env": env, "run_dir": str(args.run_dir), "episodes": args.episodes,
              "quantization": rows, "latency": latency,
              "parity": {"protonet": result.parity.to_json(),
                         "maml": maml_result.parity.to_json()}}
    (out / "export_edge.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [markdown_header("Exported models at the edge: int8 accuracy, size, latency", env)]
    lines.append(
        f"Model: `{args.run_dir}` ({config['name']}, Conv-4 ProtoNet). Test: {args.episodes} "
        f"episodes of the {config['tasks']['split']} split's test classes, 5-way 1-shot, 15 "
        "queries per class, running batch-norm statistics; static quantization calibrated on "
        "the query images of 16 training episodes (1200 images).\n")
    lines.append("| embedding graph | accuracy (95% CI) | drop (points) | file | size vs float |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        lines.append(f"| ONNX {r['graph']} | {r['accuracy']:.2f} ± {r['ci95']:.2f} | "
                     f"{r['drop']:+.2f} | {r['bytes'] / 1e6:.2f} MB | {r['size_ratio']:.2f}x |")
    lines.append("\nLatency on this machine (median and 99th percentile of "
                 f"{args.repeats} calls; adapt graphs {max(20, args.repeats // 4)} calls; load "
                 f"average {env['load_average_at_start']} at the start, "
                 f"{os.getloadavg()[0]:.2f} at the end; above about 1, other jobs shared the 2 "
                 "cores):\n")
    lines.append("| graph | batch | runtime | median ms | p99 ms |")
    lines.append("|---|---|---|---|---|")
    for r in latency:
        lines.append(f"| {r['graph']} | {r['batch']} | {r['runtime']} | {r['median_ms']:.2f} |"
                     f" {r['p99_ms']:.2f} |")
    lines.append(f"\nParity of every artifact with the in-memory model (worst relative error): "
                 f"ProtoNet {result.parity.worst:.1e}, MAML {maml_result.parity.worst:.1e}.")
    (out / "export_edge.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def keras_loss():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


if __name__ == "__main__":
    sys.exit(main())
