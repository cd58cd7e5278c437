"""Start-up time and resident memory of the model server, per backend, on one exported model.

For each backend (TensorFlow on the SavedModel, ONNX Runtime on the onnx/ files) starts
`python -m serving` in a fresh process and measures the time from process start to the first
successful REST predict, the resident memory (VmRSS) then and after 200 more requests, the peak
(VmHWM), and median request latencies (batch 1, `serving_default` over REST and gRPC, `adapt` over
REST). Prints a markdown table and writes docs/results/serving.md and serving.json.

The model is an Omniglot-shaped Prototypical Network (Conv-4 embedding, 28x28x1 inputs, 3-way
head), exported by the test suite's artifact writer (tests/serving/conftest.py::write_export),
unless --export names an existing export folder (<base>/<model>/<version>/).

    .venv/bin/python benchmarks/serving_footprint.py [--trials 3] [--export DIR --model NAME]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from _record import environment, markdown_header

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"tf": "TensorFlow (SavedModel)", "onnx": "ONNX Runtime (onnx/)"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_default_export(base: Path) -> tuple[str, tuple[int, ...]]:
    sys.path.insert(0, str(ROOT))
    import keras_meta  # noqa: F401  (quiets TensorFlow's start-up logs)
    from tests.serving.conftest import FewShotNet, write_export

    model = "omniglot"
    (base / model).mkdir(parents=True)
    write_export(FewShotNet(seed=0, x_shape=(28, 28, 1), conv=True), str(base / model / "1"))
    return model, (28, 28, 1)


def _x_shape(base: Path, model: str) -> tuple[int, ...]:
    version = max((p for p in (base / model).iterdir() if p.name.isdigit()),
                  key=lambda p: int(p.name))
    table = json.loads((version / "onnx" / "signatures.json").read_text())
    return tuple(table["signatures"]["serving_default"]["inputs"]["x"]["shape"][1:])


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _median_ms(call, count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(backend: str, base: Path, model: str, x_shape: tuple[int, ...]) -> dict:
    import grpc
    import tensorflow as tf  # the client side only; the measured server is another process
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    rest, grpc_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{rest}/v1/models/{model}"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, *x_shape)).astype(np.float32)
    body = json.dumps({"inputs": x.tolist()})
    command = [sys.executable, "-m", "serving", f"--backend={backend}", f"--port={grpc_port}",
               f"--rest_api_port={rest}", "--file_system_poll_wait_seconds=0",
               "--log_level=WARNING", str(base)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read()}")
            try:
                if requests.post(f"{url}:predict", data=body, timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.01)
        startup = time.perf_counter() - start
        startup_cpu = _cpu_seconds(process.pid)
        first = _proc_status(process.pid)

        # http.client sends a bytes body in the same segment as the headers (requests does
        # not, and Nagle's algorithm with delayed ACKs then adds ~40 ms to every call).
        connection = http.client.HTTPConnection("127.0.0.1", rest, timeout=30)

        def post(payload: bytes):
            connection.request("POST", f"/v1/models/{model}:predict", payload,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status

        rest_ms = _median_ms(lambda: post(body.encode()), 100)
        support = rng.normal(size=(6, *x_shape)).astype(np.float32)
        adapt_body = json.dumps({"signature_name": "adapt", "inputs": {
            "support_x": support.tolist(), "support_y": [0, 0, 1, 1, 2, 2],
            "query_x": rng.normal(size=(4, *x_shape)).astype(np.float32).tolist()}}).encode()
        adapt_ms = _median_ms(lambda: post(adapt_body), 20)
        connection.close()
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
            grpc_ms = _median_ms(lambda: stub.Predict(request, timeout=30), 100)
        after = _proc_status(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    return {"startup_s": startup, "startup_cpu_s": startup_cpu, "rss_first_mib": first["VmRSS"],
            "rss_after_mib": after["VmRSS"], "peak_rss_mib": after["VmHWM"],
            "rest_predict_ms": rest_ms, "grpc_predict_ms": grpc_ms, "rest_adapt_ms": adapt_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="server starts per backend")
    parser.add_argument("--export", type=Path, help="an export folder (default: build one)")
    parser.add_argument("--model", help="model name under --export")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "serving.md")
    args = parser.parse_args()

    env = environment(("tensorflow", "onnxruntime", "numpy", "starlette", "uvicorn", "grpcio",
                       "protobuf", "tensorflow-serving-api"))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        if args.export:
            base, model = args.export, args.model
            x_shape = _x_shape(base, model)
        else:
            base = Path(tmp) / "exports"
            model, x_shape = _write_default_export(base)
        version = max((p for p in (base / model).iterdir() if p.name.isdigit()),
                      key=lambda p: int(p.name))
        sizes = {"savedmodel_mib": _size_mb(version) - _size_mb(version / "onnx"),
                 "onnx_mib": _size_mb(version / "onnx")}
        results = {}
        for backend in BACKENDS:
            trials = [measure(backend, base, model, x_shape) for _ in range(args.trials)]
            results[backend] = {key: statistics.median(t[key] for t in trials)
                                for key in trials[0]}
            results[backend]["trials"] = trials
            print(backend, {k: round(v, 3) for k, v in results[backend].items()
                            if k != "trials"}, flush=True)
    load_after = os.getloadavg()[0]

    rows = ["| backend | start-up to first predict: wall s (CPU s) | RSS after first predict "
            "(MiB) | RSS after 220 requests (MiB) | peak RSS (MiB) | REST predict (ms) | "
            "gRPC predict (ms) | REST adapt (ms) |", "|---|---|---|---|---|---|---|---|"]
    for backend, label in BACKENDS.items():
        r = results[backend]
        rows.append(f"| {label} | {r['startup_s']:.2f} ({r['startup_cpu_s']:.2f}) | "
                    f"{r['rss_first_mib']:.0f} | "
                    f"{r['rss_after_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
                    f"{r['rest_predict_ms']:.2f} | {r['grpc_predict_ms']:.2f} | "
                    f"{r['rest_adapt_ms']:.2f} |")
    table = "\n".join(rows)
    print(table)
    described = (f"`{args.export}` model `{model}`" if args.export else
                 "an Omniglot-shaped Prototypical Network (Conv-4 embedding of 64 channels, "
                 "28x28x1 inputs, 3-way head; `adapt` with 6 support and 4 query images) exported "
                 "by the test suite's artifact writer")
    text = markdown_header("Serving footprint", env) + (
        f"Model: {described}; on disk {sizes['savedmodel_mib']:.2f} MiB of SavedModel and "
        f"{sizes['onnx_mib']:.2f} MiB of ONNX files. Each backend was started {args.trials} times "
        "as `python -m serving --backend=<tf|onnx> ... <base>` in a fresh process (warm-up "
        "requests replayed, both APIs on loopback); the table gives medians. Start-up runs from "
        "process creation to the first successful REST predict, in wall-clock seconds and in CPU "
        "seconds of the server process (user + system, all threads: what start-up costs "
        "whatever else runs on the machine); RSS is the server process's "
        "VmRSS from /proc, peak its VmHWM. Latencies: median of 100 REST and 100 gRPC predicts "
        "of one image and 20 REST `adapt` calls, sequential, client on the same machine. "
        f"Load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end; the "
        "2 cores were shared with other work, so times are upper bounds.\n\n" + table + "\n")
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"environment": env, "model": described, "sizes": sizes, "trials": args.trials,
         "load_average": [load_before, load_after], "results": results}, indent=2) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
