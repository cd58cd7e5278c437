"""Versions on disk: discovery, policies, labels, hot swaps, broken folders, config reloads."""

import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import model_management_pb2, predict_pb2

from serving import ModelConfig, read_config_file
from serving.models import AVAILABLE, END, UNLOADING, ModelManager

from .conftest import example_inputs, start_server

X = example_inputs(seed=5)["serving_default"]["x"]


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def states(server, model="m"):
    response = requests.get(f"{server.rest}/v1/models/{model}", timeout=30)
    if response.status_code != 200:
        return {}
    return {int(s["version"]): (s["state"], s["status"]["error_code"], s["status"]["error_message"])
            for s in response.json()["model_version_status"]}


def rest_logits(server, model="m", route=""):
    response = requests.post(f"{server.rest}/v1/models/{model}{route}:predict",
                             json={"inputs": X.tolist()}, timeout=30)
    assert response.status_code == 200, response.text
    return np.array(response.json()["outputs"]["logits"], np.float32)


def grpc_logits(server, model="m"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(X))
    return tf.make_ndarray(server.stubs()[0].Predict(request, timeout=30).outputs["logits"])


def reference(exports, version):
    return exports.nets[version].reference("serving_default", x=X)["logits"]


def which_version(exports, logits, tolerance=1e-4):
    for version in (1, 2):
        if np.allclose(logits, reference(exports, version), atol=tolerance):
            return version
    raise AssertionError(f"outputs match no version: {logits}")


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    return str(path)


@pytest.mark.parametrize("backend", ["onnx", "tf"])
def test_new_version_is_served_while_requests_in_flight_all_succeed(exports, base, backend):
    exports.copy_version(1, base)
    server = start_server([ModelConfig("m", base)], backend=backend, poll_seconds=0.1)
    try:
        assert states(server) == {1: ("AVAILABLE", "OK", "")}
        seen, errors, stop = [], [], threading.Event()

        def hammer(call):
            while not stop.is_set():
                try:
                    seen.append(which_version(exports, call(server)))
                except Exception as e:  # collected and asserted below
                    errors.append(e)

        threads = [threading.Thread(target=hammer, args=(f,))
                   for f in (rest_logits, rest_logits, grpc_logits, grpc_logits)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        exports.copy_version(2, base)
        wait_for(lambda: states(server).get(1, ("",))[0] == "END", what="the swap")
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert errors == []
        assert states(server) == {2: ("AVAILABLE", "OK", ""), 1: ("END", "OK", "")}
        assert seen.count(1) > 0 and seen.count(2) > 0
        assert which_version(exports, rest_logits(server)) == 2
        assert which_version(exports, grpc_logits(server)) == 2
    finally:
        server.close()


@pytest.mark.parametrize("backend, breakage, code, message", [
    ("onnx", {"onnx/signatures.json": b"{"}, "DATA_LOSS", "Could not parse"),
    ("tf", {"saved_model.pb": b"\xff" * 16}, "DATA_LOSS", "Could not parse SavedModel"),
    ("onnx", {"onnx/adapt.onnx": b"not onnx"}, "DATA_LOSS", "signature adapt: cannot load"),
    ("onnx", {"assets.extra/tf_serving_warmup_requests": b"\x01" * 20}, "DATA_LOSS",
     "corrupted record at 0. Please verify your warmup data is in TFRecord format."),
])
def test_broken_version_folder_keeps_the_previous_version_serving(exports, base, backend,
                                                                  breakage, code, message):
    exports.copy_version(1, base)
    server = start_server([ModelConfig("m", base)], backend=backend, poll_seconds=0.1)
    try:
        # A broken or half-written folder (prepared aside, so the poller sees it broken).
        broken, draft = os.path.join(base, "2"), os.path.join(base, ".draft-2")
        shutil.copytree(exports.version_dir(2), draft)
        for name, content in breakage.items():
            with open(os.path.join(draft, name), "wb") as f:
                f.write(content)
        os.rename(draft, broken)
        wait_for(lambda: states(server).get(2, ("",))[0] == "END", what="the failed load")
        state, error_code, error_message = states(server)[2]
        assert error_code == code and message in error_message
        assert states(server)[1] == ("AVAILABLE", "OK", "")
        assert which_version(exports, rest_logits(server)) == 1
        assert which_version(exports, grpc_logits(server)) == 1
        # Finishing the folder retries the load.
        shutil.copytree(exports.version_dir(2), broken, dirs_exist_ok=True)
        wait_for(lambda: states(server).get(2, ("",))[0] == "AVAILABLE", what="the retry")
        wait_for(lambda: states(server).get(1, ("",))[0] == "END", what="the unload")
        assert which_version(exports, rest_logits(server)) == 2
    finally:
        server.close()


def test_other_folders_are_never_served_and_policies_apply(exports, base):
    exports.copy_version(1, base)
    exports.copy_version(2, base)
    os.makedirs(os.path.join(base, ".incomplete-3-abc"))
    os.makedirs(os.path.join(base, "notes"))
    config = os.path.join(os.path.dirname(base), "models.config")
    with open(config, "w") as f:
        f.write('model_config_list { config { name: "m" base_path: "m" '
                'model_version_policy { specific { versions: 1 } } '
                'version_labels { key: "canary" value: 2 } } '
                'config { name: "n" base_path: "m" '
                'model_version_policy { latest { num_versions: 2 } } } }')
    server = start_server(read_config_file(config), backend="onnx")
    try:
        assert states(server) == {1: ("AVAILABLE", "OK", "")}
        assert set(states(server, "n")) == {1, 2}
        response = requests.post(f"{server.rest}/v1/models/m/labels/canary:predict",
                                 json={"inputs": X.tolist()}, timeout=30)
        assert response.status_code == 404
        assert response.json() == {"error": "Servable not found for request: Specific(m, 2)"}
        assert which_version(exports, rest_logits(server, "n")) == 2
    finally:
        server.close()


def test_removed_versions_are_unloaded_and_a_missing_base_path_changes_nothing(exports, base):
    exports.copy_version(1, base)
    exports.copy_version(2, base)
    server = start_server([ModelConfig("m", base)], backend="onnx", poll_seconds=0.1)
    try:
        assert states(server) == {2: ("AVAILABLE", "OK", "")}
        shutil.rmtree(os.path.join(base, "2"))  # latest policy: version 1 is aspired again
        wait_for(lambda: states(server).get(2, ("",))[0] == "END", what="the fallback")
        assert states(server)[1] == ("AVAILABLE", "OK", "")
        os.rename(base, base + "-moved")  # TF Serving keeps serving when the base path goes
        time.sleep(0.3)
        assert which_version(exports, rest_logits(server)) == 1
    finally:
        server.close()


def test_in_flight_requests_hold_the_old_version(exports, base):
    exports.copy_version(1, base)
    manager = ModelManager([ModelConfig("m", base)], lambda config: "onnx", poll_seconds=0)
    manager.start()
    try:
        with manager.handle("m") as held:
            exports.copy_version(2, base)
            manager.poll()
            assert manager.available_versions("m") == [2]
            assert manager.version_states("m")[1].state == UNLOADING
            out = held.model.run("serving_default", {"x": X}, ["logits"])["logits"]
            assert which_version(exports, out) == 1
        wait_for(lambda: manager.version_states("m")[1].state == END, what="the unload")
        assert manager.version_states("m")[2].state == AVAILABLE
    finally:
        manager.stop()


def test_config_reloads_add_and_remove_models(exports, base, tmp_path):
    exports.copy_version(1, base)
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "m" base_path: "m" } }')
    server = start_server(read_config_file(str(config)), backend="onnx",
                          model_config_file=str(config), model_config_file_poll_seconds=0.1)
    try:
        time.sleep(0.05)
        config.write_text('model_config_list { config { name: "m" base_path: "m" } '
                          'config { name: "k" base_path: "m" } }')
        os.utime(config, ns=(time.time_ns() + 10**9,) * 2)
        wait_for(lambda: states(server, "k").get(1, ("",))[0] == "AVAILABLE",
                 what="the file reload")
        # gRPC's ModelService.HandleReloadConfigRequest: only "k" stays.
        request = model_management_pb2.ReloadConfigRequest()
        entry = request.config.model_config_list.config.add()
        entry.name, entry.base_path = "k", base
        server.stubs()[1].HandleReloadConfigRequest(request, timeout=30)
        assert states(server, "m")[1][0] in ("UNLOADING", "END")
        assert which_version(exports, rest_logits(server, "k")) == 1
        bad = model_management_pb2.ReloadConfigRequest()
        bad.config.model_config_list.config.add(name="k", base_path=base)
        bad.config.model_config_list.config.add(name="k", base_path=base)
        with pytest.raises(grpc.RpcError) as info:
            server.stubs()[1].HandleReloadConfigRequest(bad, timeout=30)
        assert info.value.details() == "Illegal to list model k multiple times in config list"
    finally:
        server.close()


def test_a_broken_newest_version_at_start_up_falls_back_to_the_previous_one(exports, base):
    exports.copy_version(1, base)
    draft = os.path.join(base, ".draft")
    shutil.copytree(exports.version_dir(2), draft)
    with open(os.path.join(draft, "onnx", "signatures.json"), "w") as f:
        f.write("{")
    os.rename(draft, os.path.join(base, "2"))
    server = start_server([ModelConfig("m", base)], backend="onnx", poll_seconds=0.1)
    try:
        assert states(server)[2][:2] == ("END", "DATA_LOSS")
        assert states(server)[1] == ("AVAILABLE", "OK", "")
        assert which_version(exports, rest_logits(server)) == 1
        # Only the broken folder left: the loaded version keeps serving (as in TF Serving).
        shutil.rmtree(os.path.join(base, "1"))
        time.sleep(0.5)
        assert states(server)[1] == ("AVAILABLE", "OK", "")
        assert which_version(exports, rest_logits(server)) == 1
    finally:
        server.close()
