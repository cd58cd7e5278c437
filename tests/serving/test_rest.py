"""TF Serving's REST API: routes, status codes and error bodies, on both backends."""

import gzip
import json

import numpy as np
import pytest
import requests

from .conftest import MODEL, QUERIES, SUPPORT, example_inputs

X = [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0]]


def call(server, method, path, body=None, headers=None):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    response = requests.request(method, server.rest + path, data=data, headers=headers,
                                timeout=30)
    return response.status_code, response


def error_of(response):
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


# (method, path, body, HTTP status, TF Serving's error message)
ROUTE_ERRORS = [
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
    ("POST", "/v1/foo", b"", 400, "Malformed request: POST /v1/foo"),
    ("GET", "/v1/models/debug/model_name", None, 400,
     "Malformed request: GET /v1/models/debug/model_name"),
    ("POST", "/v1/models", b"", 400, "Malformed request: POST /v1/models"),
    ("GET", f"/v1/models/{MODEL}:predict", None, 400,
     f"Malformed request: GET /v1/models/{MODEL}:predict"),
    ("PUT", f"/v1/models/{MODEL}:predict", b"{}", 400,
     f"Malformed request: PUT /v1/models/{MODEL}:predict"),
    ("POST", f"/v1/models/{MODEL}/metadata", b"", 400,
     f"Malformed request: POST /v1/models/{MODEL}/metadata"),
    ("POST", f"/v1/models/{MODEL}/versions/1/labels/stable:predict", b"", 400,
     f"Malformed request: POST /v1/models/{MODEL}/versions/1/labels/stable:predict"),
    ("POST", f"/v1/models/{MODEL}/versions/HELLO:predict", b"", 400,
     f"Malformed request: POST /v1/models/{MODEL}/versions/HELLO:predict"),
    ("POST", f"/v1/models/{MODEL}:PREDICT", b"", 400,  # the pattern ignores case, the verb not
     f"Malformed request: POST /v1/models/{MODEL}:PREDICT"),
    ("POST", f"/v1/models/{MODEL}/versions/18446744073709551615:predict", b"", 400,
     "Failed to convert version: 18446744073709551615 to numeric."),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
    ("GET", f"/v1/models/{MODEL}/versions/7", None, 404, f"Could not find version 7 of model "
     f"{MODEL}"),
    ("GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)"),
    ("GET", f"/v1/models/{MODEL}/labels/nope/metadata", None, 400,
     "Unrecognized servable version label: nope"),
    ("POST", "/v1/models/nope:predict", {"instances": X}, 404,
     "Servable not found for request: Latest(nope)"),
    ("POST", f"/v1/models/{MODEL}/versions/7:predict", {"instances": X}, 404,
     f"Servable not found for request: Specific({MODEL}, 7)"),
    ("POST", f"/v1/models/{MODEL}/labels/nope:predict", {"instances": X}, 400,
     "Unrecognized servable version label: nope"),
    ("POST", f"/v1/models/{MODEL}:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("POST", f"/v1/models/{MODEL}:predict", b"instances = [1, 2]", 400,
     "JSON Parse error: Invalid value. at offset: 0"),
    ("POST", f"/v1/models/{MODEL}:predict", b'{"instances": [1, 2]', 400,
     "JSON Parse error: Missing a comma or '}' after an object member. at offset: 20"),
    ("POST", "/v1/models/nope:predict", b"{", 400,  # the body is parsed before the lookup
     "JSON Parse error: Missing a name for object member. at offset: 1"),
    ("POST", f"/v1/models/{MODEL}:predict", {"signature_name": "nope", "instances": X}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", f"/v1/models/{MODEL}:predict", {"signature_name": 100}, 400,
     "JSON Value: {\n    \"signature_name\": 100\n} not formatted correctly. 'signature_name' "
     "key must be a string value."),
    ("POST", f"/v1/models/{MODEL}:predict", {"instances": X, "inputs": X}, 400,
     "JSON Value: {\n    \"instances\": [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0]],\n    "
     "\"inputs\": [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0]]\n} Not formatted correctly "
     "expecting only one of 'inputs' or 'instances' keys to exist "),
    ("POST", f"/v1/models/{MODEL}:predict", {"signature_name": "embed"}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("POST", f"/v1/models/{MODEL}:predict", {"instances": [["x", "y"]]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
     "\"x\" Type: String is not of expected type: float"),
    ("POST", f"/v1/models/{MODEL}:predict", {"instances": [[1, 2, 3]]}, 400,
     "input tensor alias x: shape [1,3] is not compatible with the signature's shape [-1,4]"),
    ("POST", f"/v1/models/{MODEL}:predict",
     {"signature_name": "adapt", "inputs": {"support_x": X, "support_y": [0, 0.5],
                                             "query_x": X}}, 400,
     "JSON Value: 0.5 Type: Number is not of expected type: int32"),
    ("POST", f"/v1/models/{MODEL}:predict",
     {"signature_name": "adapt", "inputs": {"support_x": X, "support_y": [0, float("nan")],
                                             "query_x": X}}, 400,
     "JSON Value:  Type: Number is not of expected type: int32"),
    ("POST", f"/v1/models/{MODEL}:predict",
     {"signature_name": "adapt", "instances": [{"support_x": X[0], "support_y": 0}]}, 400,
     "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"support_x\": "
     "[0.1, 0.2, 0.3, 0.4],\n    \"support_y\": 0\n} keys must be equal to: "
     "query_x,support_x,support_y"),
    ("POST", f"/v1/models/{MODEL}:predict",
     {"signature_name": "__saved_model_init_op", "instances": X}, 400,
     "Failed to get input map for signature: __saved_model_init_op"),
    ("POST", f"/v1/models/{MODEL}:regress", {"examples": [{"x": 1.0}]}, 400,
     "Expected one output Tensor."),
    ("POST", f"/v1/models/{MODEL}:classify", {"signature_name": "adapt",
                                              "examples": [{"x": 1.0}]}, 400,
     "Expected one input Tensor."),
    ("POST", f"/v1/models/{MODEL}:classify", {"signature_name": "nope",
                                              "examples": [{"x": 1.0}]}, 400,
     "No signature was found with the name: nope"),
    ("POST", f"/v1/models/{MODEL}:classify", {"examples": []}, 400,
     "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"),
    ("POST", f"/v1/models/{MODEL}:regress", {}, 400,
     "JSON Value: {} When method is classify, key 'examples' is expected and was not found"),
]


@pytest.mark.parametrize("method, path, body, status, message", ROUTE_ERRORS,
                         ids=[f"{r[0]} {r[1]} {r[3]}" for r in ROUTE_ERRORS])
def test_errors_have_tf_servings_status_and_body(server, method, path, body, status, message):
    got, response = call(server, method, path, body)
    assert (got, error_of(response)) == (status, message)
    assert response.text.startswith('{\n    "error": ')  # RapidJSON's layout


def test_classify_without_classification_signature(server):
    status, response = call(server, "POST", f"/v1/models/{MODEL}:classify",
                            {"examples": [{"x": [1.0, 2.0]}]})
    message = error_of(response)
    assert status == 400
    assert message.startswith("No classification inputs found in SignatureDef: inputs {\n"
                              '  key: "x"\n')
    assert 'method_name: "tensorflow/serving/predict"' in message
    status, response = call(server, "POST", f"/v1/models/{MODEL}:regress",
                            {"signature_name": "embed", "examples": [{"x": [1.0]}]})
    assert status == 400
    assert error_of(response).startswith("No regression inputs found in SignatureDef: ")


def test_outside_v1_is_a_plain_404(server):
    status, response = call(server, "GET", "/index.html")
    assert status == 404 and b"Not Found" in response.content


def test_status_lists_versions_highest_first(server):
    status, response = call(server, "GET", f"/v1/models/{MODEL}")
    assert status == 200
    ok = {"error_code": "OK", "error_message": ""}
    assert response.json() == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": ok},
        {"version": "1", "state": "AVAILABLE", "status": ok}]}
    assert response.text.startswith('{\n "model_version_status": [\n  {\n   "version": "2"')
    assert call(server, "GET", "/v1/models/latest")[1].json()["model_version_status"] == [
        {"version": "2", "state": "AVAILABLE", "status": ok}]
    specific = call(server, "GET", f"/v1/models/{MODEL}/versions/1")[1].json()
    assert [s["version"] for s in specific["model_version_status"]] == ["1"]
    # A label does not narrow the status down, as in TF Serving.
    by_label = call(server, "GET", f"/v1/models/{MODEL}/labels/stable")[1].json()
    assert len(by_label["model_version_status"]) == 2
    # RE2's (?i) makes the route case-insensitive; the "metadata" check is not.
    assert call(server, "GET", f"/V1/MODELS/{MODEL}/METADATA")[1].json() == response.json()


def test_metadata_has_tf_servings_layout(server, exports):
    status, response = call(server, "GET", f"/v1/models/{MODEL}/labels/stable/metadata")
    assert status == 200
    assert response.text.startswith('{\n"model_spec":{\n "name": "fewshot",\n')
    body = response.json()
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {"serving_default", "embed", "adapt", "__saved_model_init_op"}
    x = defs["serving_default"]["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT" and x["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "4", "name": ""}], "unknown_rank": False}
    assert defs["adapt"]["inputs"]["support_y"]["dtype"] == "DT_INT32"
    assert defs["adapt"]["method_name"] == "tensorflow/serving/predict"
    assert set(defs["serving_default"]["outputs"]) == {"logits", "probabilities"}


def test_row_and_columnar_formats(server, exports):
    x = example_inputs()["serving_default"]["x"]
    status, row = call(server, "POST", f"/v1/models/{MODEL}:predict",
                       {"instances": x.tolist()})
    assert status == 200 and set(row.json()) == {"predictions"}
    assert [set(p) for p in row.json()["predictions"]] == [{"logits", "probabilities"}] * len(x)
    status, columnar = call(server, "POST", f"/v1/models/{MODEL}:predict", {"inputs": x.tolist()})
    assert status == 200 and set(columnar.json()["outputs"]) == {"logits", "probabilities"}
    np.testing.assert_array_equal(
        np.array([p["logits"] for p in row.json()["predictions"]], np.float32),
        np.array(columnar.json()["outputs"]["logits"], np.float32))
    # One output: its name is left out.
    status, embed = call(server, "POST", f"/v1/models/{MODEL}:predict",
                         {"signature_name": "embed", "inputs": {"x": x.tolist()}})
    assert status == 200 and np.array(embed.json()["outputs"]).shape == (len(x), 8)


def test_nan_and_infinity_tokens_pass_through(server):
    body = b'{"inputs": [[NaN, 1, 2, 3], [Infinity, -Infinity, 0, 1]]}'
    status, response = call(server, "POST", f"/v1/models/{MODEL}:predict", body)
    assert status == 200
    assert "NaN" in response.text and np.isnan(response.json()["outputs"]["logits"]).any()


def test_gzip_bodies_are_accepted(server):
    body = gzip.compress(json.dumps({"instances": X}).encode())
    status, response = call(server, "POST", f"/v1/models/{MODEL}:predict", body,
                            headers={"Content-Encoding": "gzip"})
    assert status == 200 and len(response.json()["predictions"]) == 2


def test_adapt_in_columnar_format(server):
    inputs = example_inputs()["adapt"]
    status, response = call(server, "POST", f"/v1/models/{MODEL}:predict",
                            {"signature_name": "adapt",
                             "inputs": {k: v.tolist() for k, v in inputs.items()}})
    assert status == 200
    assert np.array(response.json()["outputs"]["logits"]).shape == (QUERIES, 3)
    assert SUPPORT != QUERIES  # so the row format could not express this request


def test_cors_preflight_without_origin_is_refused(server):
    status, _ = call(server, "OPTIONS", f"/v1/models/{MODEL}:predict")
    assert status == 400
    status, _ = call(server, "OPTIONS", f"/v1/models/{MODEL}:predict",
                     headers={"Origin": "https://example.com"})
    assert status == 200


def test_metadata_is_protobufs_json_of_the_signature_defs(tf_server, exports):
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(exports.version_dir(2) + "/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    expected = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in saved_model.meta_graphs[0].signature_def.items():
        expected.signature_def[name].CopyFrom(signature)
    _, response = call(tf_server, "GET", f"/v1/models/{MODEL}/metadata")
    assert response.json()["metadata"]["signature_def"] == json_format.MessageToDict(
        expected, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
