"""Numerical parity with the in-memory Keras model: every signature, both backends, both APIs,
versions and labels."""

import json

import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from .conftest import MODEL, example_inputs

SIGNATURES = ["serving_default", "embed", "adapt"]
TOLERANCE = {"tf": dict(rtol=1e-5, atol=1e-6), "onnx": dict(rtol=1e-4, atol=1e-5)}
# (route suffix, gRPC model_spec fields, version whose reference applies)
VERSIONS = [("", {}, 2), ("/versions/1", {"version": 1}, 1), ("/labels/stable", {"label": "stable"},
            1), ("/labels/canary", {"label": "canary"}, 2)]


def rest_predict(server, route, signature, inputs, row):
    if row:
        body = {"signature_name": signature,
                "instances": [{k: v[i].tolist() for k, v in inputs.items()}
                              for i in range(len(next(iter(inputs.values()))))]}
    else:
        body = {"signature_name": signature, "inputs": {k: v.tolist() for k, v in inputs.items()}}
    response = requests.post(f"{server.rest}/v1/models/{MODEL}{route}:predict",
                             data=json.dumps(body), timeout=30)
    assert response.status_code == 200, response.text
    result = response.json()["predictions" if row else "outputs"]
    if not isinstance(result, dict) and not (row and isinstance(result[0], dict)):
        return {"embedding": np.array(result, np.float32)}
    if row:
        return {k: np.array([r[k] for r in result], np.float32) for k in result[0]}
    return {k: np.array(v, np.float32) for k, v in result.items()}


def grpc_predict(server, spec, signature, inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    if "version" in spec:
        request.model_spec.version.value = spec["version"]
    if "label" in spec:
        request.model_spec.version_label = spec["label"]
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    response = server.stubs()[0].Predict(request, timeout=30)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


@pytest.mark.parametrize("backend", ["tf", "onnx"])
@pytest.mark.parametrize("signature", SIGNATURES)
def test_every_signature_matches_the_keras_model(request, exports, backend, signature):
    server = request.getfixturevalue(f"{backend}_server")
    inputs = example_inputs(seed=3)[signature]
    for route, spec, version in VERSIONS:
        expected = exports.nets[version].reference(signature, **inputs)
        results = {"grpc": grpc_predict(server, spec, signature, inputs),
                   "columnar": rest_predict(server, route, signature, inputs, row=False)}
        if signature != "adapt":  # adapt's inputs differ in dim 0: columnar only
            results["row"] = rest_predict(server, route, signature, inputs, row=True)
        for api, outputs in results.items():
            assert set(outputs) == set(expected), (api, route)
            for name in expected:
                np.testing.assert_allclose(outputs[name], expected[name], **TOLERANCE[backend],
                                           err_msg=f"{backend} {api} {route} {name}")
        if version == 1:
            other = exports.nets[2].reference(signature, **inputs)
            assert not np.allclose(next(iter(other.values())), next(iter(expected.values())))


def test_rest_and_grpc_agree_bit_for_bit(server):
    inputs = example_inputs(seed=4)["serving_default"]
    via_grpc = grpc_predict(server, {}, "serving_default", inputs)
    via_rest = rest_predict(server, "", "serving_default", inputs, row=False)
    for name in via_grpc:
        np.testing.assert_array_equal(via_grpc[name], via_rest[name])
