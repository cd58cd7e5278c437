"""Episodes per second of the Omniglot N-way K-shot `tf.data` sampler, against the learners.

For each episode configuration, iterates the training pipeline (`Omniglot.dataset`, the same one
`fit` consumes) for a fixed time after a warm-up and reports episodes/s and images/s; then
measures how many episodes/s a learner's compiled training step consumes on the same machine
(ProtoNet and first-order MAML on Conv-4), so the table shows the sampler's headroom. The 60-way
training episodes are also measured with each training-split augmentation.

    .venv/bin/python benchmarks/sampler_speed.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
from _record import environment, markdown_header

from keras_meta.learners import FirstOrderMAML, ProtoNet
from keras_meta.models import conv4
from keras_meta.tasks import Omniglot

AFFINE = {"name": "affine", "rotation": 10, "scale": 0.1, "shear": 0.1}
CONFIGS = [  # (ways, shots, queries per class, meta-batch, training augmentation)
    (5, 1, 15, 32, None), (5, 5, 15, 32, None), (20, 1, 15, 16, None), (20, 5, 15, 16, None),
    (60, 1, 5, 1, None), (60, 1, 5, 1, "rotate90"), (60, 1, 5, 1, "shift"),
    (60, 1, 5, 1, AFFINE), (60, 1, 5, 1, [AFFINE, "shift"]),
]


def describe(augment) -> str:
    if augment is None:
        return "none"
    items = augment if isinstance(augment, list) else [augment]
    return " + ".join(
        item if isinstance(item, str)
        else item["name"] + "(" + ", ".join(f"{k} {v}" for k, v in item.items() if k != "name")
        + ")" for item in items)


def sampler_rate(tasks: Omniglot, meta_batch: int, seconds: float) -> float:
    iterator = iter(tasks.dataset("train", meta_batch, seed=0))
    for _ in range(3):
        next(iterator)  # warm-up: tracing and the first prefetch
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        count += meta_batch
    return count / (time.perf_counter() - start)


def learner_rate(learner, tasks: Omniglot, meta_batch: int, steps: int) -> float:
    learner.compile(keras.optimizers.Adam(1e-3))
    data = tasks.dataset("train", meta_batch, seed=0)
    learner.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # tracing
    start = time.perf_counter()
    learner.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * meta_batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    env = environment()
    env["load_average_at_start"] = round(__import__("os").getloadavg()[0], 2)
    rows = []
    for ways, shots, queries, meta_batch, augment in CONFIGS:
        tasks = Omniglot(ways=ways, shots=shots, queries=queries, augment=augment)
        rate = sampler_rate(tasks, meta_batch, args.seconds)
        images = ways * (shots + queries)
        rows.append({"ways": ways, "shots": shots, "queries": queries,
                     "meta_batch": meta_batch, "augment": describe(augment),
                     "episodes_per_s": rate, "images_per_s": rate * images})
        print(f"{ways}-way {shots}-shot {queries}q x{meta_batch}, augment {describe(augment)}: "
              f"{rate:9.1f} episodes/s ({rate * images:,.0f} images/s)", flush=True)
    consumers = []
    five = Omniglot(ways=5, shots=1, queries=15)
    sixty = Omniglot(ways=60, shots=1, queries=5)
    for name, learner, tasks, meta_batch, steps in (
        ("ProtoNet, 60-way 1-shot 5q (training protocol)",
         ProtoNet(conv4(ways=0)), sixty, 1, 20),
        ("ProtoNet, 5-way 1-shot 15q", ProtoNet(conv4(ways=0)), five, 32, 5),
        ("first-order MAML, 5-way 1-shot 15q, 1 step",
         FirstOrderMAML(conv4(ways=5), update_rule=0.4,
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
         five, 32, 3),
    ):
        rate = learner_rate(learner, tasks, meta_batch, steps)
        consumers.append({"learner": name, "episodes_per_s": rate})
        print(f"{name}: consumes {rate:.1f} episodes/s", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sampler_speed.json").write_text(json.dumps(
        {"env": env, "sampler": rows, "learners": consumers}, indent=2) + "\n")
    lines = [markdown_header("Omniglot episode sampler: episodes per second", env)]
    lines.append("The training pipeline (`Omniglot(...).dataset('train', meta_batch)`, Vinyals "
                 "split, stateless per-episode seeds, random class and image choice and label "
                 f"permutation inside `tf.data`), iterated for {args.seconds:g} s after a "
                 f"warm-up. Load average at the start: {env['load_average_at_start']} (other "
                 "jobs shared the 2 cores, so both columns are lower bounds; the headroom is "
                 "measured under the same load).\n")
    lines.append("| ways | shots | queries/class | meta-batch | training augmentation | "
                 "episodes/s | images/s |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in rows:
        lines.append(f"| {r['ways']} | {r['shots']} | {r['queries']} | {r['meta_batch']} | "
                     f"{r['augment']} | {r['episodes_per_s']:,.1f} | "
                     f"{r['images_per_s']:,.0f} |")
    lines.append("\nWhat the learners consume on the same machine (compiled `fit` steps):\n")
    lines.append("| learner | episodes/s consumed | sampler headroom (slowest pipeline) |")
    lines.append("|---|---|---|")
    # Headroom against the slowest pipeline of each episode shape (augmented ones included).
    lookup = {}
    for r in rows:
        key = (r["ways"], r["shots"], r["queries"])
        lookup[key] = min(lookup.get(key, np.inf), r["episodes_per_s"])
    for c, key in zip(consumers, [(60, 1, 5), (5, 1, 15), (5, 1, 15)]):
        lines.append(f"| {c['learner']} | {c['episodes_per_s']:.1f} | "
                     f"{lookup[key] / c['episodes_per_s']:.0f}x |")
    (out / "sampler_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return int(np.any([lookup[k] < c["episodes_per_s"] for c, k in
                       zip(consumers, [(60, 1, 5), (5, 1, 15), (5, 1, 15)])]))


if __name__ == "__main__":
    raise SystemExit(main())
