"""The ONNX backend serves without TensorFlow: started from the command line in a fresh process,
it never imports TensorFlow's runtime (REST and gRPC), and with TensorFlow absent it serves REST."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from .conftest import MODEL, example_inputs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = """
import atexit, sys
def report():
    loaded = sorted(m for m in sys.modules
                    if m == "tensorflow" or m.startswith("tensorflow.python"))
    print("TENSORFLOW-MODULES:" + ",".join(loaded), flush=True)
atexit.register(report)
"""
BLOCK_TENSORFLOW = """
import importlib.abc, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTensorFlow())
"""
RUN_CLI = """
import runpy
sys.argv = ["serving"] + sys.argv[1:]
runpy.run_module("serving", run_name="__main__")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(prelude: str, *args):
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, "-c", prelude + RUN_CLI, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(process, url, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not start")


def stop(process):
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_onnx_server_never_imports_tensorflow(exports):
    rest, grpc_port = free_port(), free_port()
    process = serve(REPORT, "--backend=onnx", f"--port={grpc_port}", f"--rest_api_port={rest}",
                    "--enable_metrics", exports.root)
    try:
        wait_ready(process, f"http://127.0.0.1:{rest}/v1/models/{MODEL}")
        x = example_inputs()["serving_default"]["x"]
        expected = exports.nets[2].reference("serving_default", x=x)["logits"]
        response = requests.post(f"http://127.0.0.1:{rest}/v1/models/{MODEL}:predict",
                                 json={"inputs": x.tolist()}, timeout=30)
        np.testing.assert_allclose(response.json()["outputs"]["logits"], expected, rtol=1e-4,
                                   atol=1e-5)
        import grpc

        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
            out = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                request, timeout=30)
            np.testing.assert_allclose(tf.make_ndarray(out.outputs["logits"]), expected,
                                       rtol=1e-4, atol=1e-5)
            status = get_model_status_pb2.GetModelStatusRequest()
            status.model_spec.name = MODEL
            versions = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                status, timeout=30)
            assert [v.version for v in versions.model_version_status] == [2, 1]
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert "TENSORFLOW-MODULES:\n" in out, out  # neither tensorflow nor tensorflow.python


def test_without_tensorflow_installed_rest_still_serves(exports):
    rest = free_port()
    refused = subprocess.run(
        [sys.executable, "-c", BLOCK_TENSORFLOW + RUN_CLI, "--backend=onnx", exports.root],
        env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "the gRPC API needs the protos of tensorflow-serving-api" in refused.stderr
    process = serve(BLOCK_TENSORFLOW, "--backend=onnx", "--port=0", f"--rest_api_port={rest}",
                    exports.root)
    try:
        wait_ready(process, f"http://127.0.0.1:{rest}/v1/models/{MODEL}")
        inputs = example_inputs()["adapt"]
        response = requests.post(
            f"http://127.0.0.1:{rest}/v1/models/{MODEL}/labels/stable:predict",
            json={"signature_name": "adapt", "inputs": {k: v.tolist() for k, v in inputs.items()}},
            timeout=30)
        expected = exports.nets[1].reference("adapt", **inputs)["logits"]
        np.testing.assert_allclose(response.json()["outputs"]["logits"], expected, rtol=1e-4,
                                   atol=1e-5)
    finally:
        code, _, err = stop(process)
    assert code == 0, err
    assert "skipping warm-up" in err


RUN_KERAS_META = """
from keras_meta.cli import main
sys.exit(main(["serve"] + sys.argv[1:]))
"""


def test_keras_meta_serve_with_onnx_never_imports_tensorflow(exports):
    """`keras-meta serve` too: the keras_meta package and its CLI load TensorFlow lazily."""
    rest = free_port()
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(
        [sys.executable, "-c", REPORT + RUN_KERAS_META, "--backend=onnx", "--port=0",
         f"--rest_api_port={rest}", exports.root],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(process, f"http://127.0.0.1:{rest}/v1/models/{MODEL}")
        x = example_inputs()["serving_default"]["x"]
        response = requests.post(f"http://127.0.0.1:{rest}/v1/models/{MODEL}:predict",
                                 json={"instances": x.tolist()}, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert "TENSORFLOW-MODULES:\n" in out, out
