"""TF Serving's JSON <-> tensor rules: request parsing, messages, response layout."""

import json

import numpy as np
import pytest

from serving import json_tensor as jt
from serving.errors import Code, ServingError
from serving.signatures import dtype

F, I32 = dtype("DT_FLOAT"), dtype("DT_INT32")
ONE = {"x": F}
ADAPT = {"support_x": F, "support_y": I32, "query_x": F}


def error(fn, *args):
    with pytest.raises(ServingError) as info:
        fn(*args)
    return info.value


# (request document, input dtypes, TF Serving's message)
REQUEST_ERRORS = [
    ({"instances": [1], "inputs": [1]}, ONE,
     "JSON Value: {\n    \"instances\": [1],\n    \"inputs\": [1]\n} Not formatted correctly "
     "expecting only one of 'inputs' or 'instances' keys to exist "),
    ({}, ONE, "Missing 'inputs' or 'instances' key"),
    ({"instances": []}, ONE,
     "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"),
    ({"instances": 3}, ONE,
     "JSON Value: {\n    \"instances\": 3\n} Expecting 'instances' to be an list/array"),
    ({"instances": [["a"]]}, ONE, "Failed to process element: 0 of 'instances' list. Error: "
     "INVALID_ARGUMENT: JSON Value: \"a\" Type: String is not of expected type: float"),
    ({"instances": [[1, 2], [1]]}, ONE, "Failed to process element: 1 of 'instances' list. "
     "Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
    ({"instances": [[1, 2], [[1], [2]]]}, ONE, "Failed to process element: 1 of 'instances' "
     "list. Error: INVALID_ARGUMENT: Expecting shape [2] but got: [2,1]"),
    ({"instances": [[1.0]]}, ADAPT, "instances is a plain list, but expecting list of objects as "
     "multiple input tensors required as per tensorinfo_map"),
    ({"instances": [{"support_x": [1.0], "support_y": 1}]}, ADAPT,
     "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"support_x\": "
     "[1.0],\n    \"support_y\": 1\n} keys must be equal to: query_x,support_x,support_y"),
    ({"instances": [{"x": [1.0], "y": [2.0]}]}, ONE, "Failed to process element: 0 key: y of "
     "'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named input: y"),
    ({"instances": [{"x": [1.0]}, [1.0]]}, ONE,
     "Expecting object but got list at item 1 of input list"),
    ({"instances": [[1.0], {"x": [1.0]}]}, ONE,
     "Expecting value/list but got object at item 1 of input list"),
    ({"instances": [{"support_x": [1.0], "support_y": float("nan"), "query_x": [1.0]}]}, ADAPT,
     "Failed to process element: 0 key: support_y of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON Value:  Type: Number is not of expected type: int32"),
    ({"inputs": [1.0]}, ADAPT, "inputs is a plain value/list, but expecting an object as "
     "multiple input tensors required as per tensorinfo_map"),
    ({"inputs": {"support_x": [[1.0]], "support_y": [0]}}, ADAPT,
     "Missing named input: query_x in 'inputs' object."),
    ({"inputs": {"support_x": [[1.0]], "support_y": [0.5], "query_x": [[1.0]]}}, ADAPT,
     "JSON Value: 0.5 Type: Number is not of expected type: int32"),
    ({"inputs": {"support_x": [[1.0]], "support_y": [2**31], "query_x": [[1.0]]}}, ADAPT,
     "JSON Value: 2147483648 Type: Number is not of expected type: int32"),
    ({"inputs": [[1, 2], [3]]}, ONE,
     "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ({"inputs": [[1, 2], 3]}, ONE,
     "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ({"inputs": [1, [2]]}, ONE, "Encountered list at unexpected level: 1 expected < 1"),
    ({"inputs": [True]}, ONE, "JSON Value: true Type: True is not of expected type: float"),
    ({"inputs": [None]}, ONE, "JSON Value: null Type: Null is not of expected type: float"),
    ({"inputs": [{"b64": "AAAA"}]}, ONE,
     "JSON Value: {\n    \"b64\": \"AAAA\"\n} Type: Object is not of expected type: float"),
]


@pytest.mark.parametrize("doc, specs, message", REQUEST_ERRORS)
def test_request_errors_have_tf_servings_messages(doc, specs, message):
    e = error(jt.predict_inputs, doc, specs)
    assert (e.code, e.message) == (Code.INVALID_ARGUMENT, message)


@pytest.mark.parametrize("body, message", [
    (b"", "JSON Parse error: The document is empty"),
    (b" ", "JSON Parse error: The document is empty. at offset: 1"),
    (b"instances = [1, 2]", "JSON Parse error: Invalid value. at offset: 0"),
    (b"[1]", "JSON Value: [1] Is not object"),
])
def test_parse_body_errors(body, message):
    assert error(jt.parse_body, body).message == message


def test_signature_name_must_be_a_string():
    doc = jt.parse_body(b'{"signature_name": 100}')
    assert error(jt.signature_name, doc).message == (
        "JSON Value: {\n    \"signature_name\": 100\n} not formatted correctly. "
        "'signature_name' key must be a string value.")


def test_row_format_batches_instances():
    tensors, fmt = jt.predict_inputs(
        {"instances": [{"support_x": [1, 2], "support_y": 0, "query_x": [3, 4]},
                       {"support_x": [5, 6], "support_y": 1, "query_x": [7, 8]}]}, ADAPT)
    assert fmt is jt.Format.ROW
    assert tensors["support_x"].dtype == np.float32 and tensors["support_x"].shape == (2, 2)
    assert tensors["support_y"].dtype == np.int32 and tensors["support_y"].tolist() == [0, 1]


def test_columnar_format_allows_different_first_dimensions():
    tensors, fmt = jt.predict_inputs(
        {"inputs": {"support_x": [[1.0]] * 6, "support_y": [0] * 6, "query_x": [[2.0]] * 4,
                    "ignored": 1}}, ADAPT)
    assert fmt is jt.Format.COLUMNAR
    assert {k: v.shape for k, v in tensors.items()} == {
        "support_x": (6, 1), "support_y": (6,), "query_x": (4, 1)}


def test_values_convert_like_tf_serving():
    assert jt.tensor_from_json([NAN := float("nan"), 1e300], F).tolist()[1] == float("inf")
    assert np.isnan(jt.tensor_from_json([NAN], F)[0])
    assert jt.tensor_from_json([300], dtype("DT_UINT8")).tolist() == [44]  # a C cast
    assert jt.tensor_from_json([{"b64": "aGVsbG8"}, "x"], dtype("DT_STRING")).tolist() == [
        b"hello", b"x"]
    assert jt.tensor_from_json(5, dtype("DT_INT64")).shape == ()
    assert error(jt.tensor_from_json, [{"b64": "!!"}], dtype("DT_STRING")).message == (
        "Unable to base64 decode")
    e = error(jt.tensor_from_json, [1], dtype("DT_HALF"))
    assert (e.code, e.message) == (Code.UNIMPLEMENTED, "Conversion of JSON Value: 1 to type: half")


OUTPUTS = {"logits": np.array([[1.0, 0.1], [1e6, 1e-5]], np.float32),
           "p": np.array([[0.123456789, np.nan], [np.inf, -np.inf]], np.float32)}


def test_row_response_layout_matches_tf_serving():
    assert jt.predict_response(OUTPUTS, jt.Format.ROW) == (
        '{\n    "predictions": [{\n            "logits": [1.0, 0.1],\n'
        '            "p": [0.123456791, NaN]\n        }, {\n'
        '            "logits": [1e+06, 1e-05],\n            "p": [Infinity, -Infinity]\n'
        '        }\n    ]\n}')
    single = {"e": np.array([1.5, 2], np.float32)}
    assert jt.predict_response(single, jt.Format.ROW) == (
        '{\n    "predictions": [1.5, 2.0\n    ]\n}')


def test_columnar_response_layout_matches_tf_serving():
    single = {"e": np.array([1.5, 2], np.float32)}
    assert jt.predict_response(single, jt.Format.COLUMNAR) == (
        '{\n    "outputs": [\n        1.5,\n        2.0\n    ]\n}')
    text = jt.predict_response(OUTPUTS, jt.Format.COLUMNAR)
    assert text.startswith('{\n    "outputs": {\n        "logits": [\n            [\n'
                           '                1.0,\n')


def test_responses_round_trip_float32_exactly():
    values = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    for fmt, key in ((jt.Format.ROW, "predictions"), (jt.Format.COLUMNAR, "outputs")):
        parsed = json.loads(jt.predict_response({"y": values}, fmt))[key]
        np.testing.assert_array_equal(np.array(parsed, np.float32), values)


def test_row_response_needs_a_common_batch_size():
    e = error(jt.predict_response, {"a": np.zeros((2, 3), np.float32),
                                    "b": np.zeros((3,), np.float32)}, jt.Format.ROW)
    assert e.message == "Tensor name: b has inconsistent batch size: 3 expecting: 2"
    e = error(jt.predict_response, {"a": np.float32(1.0) * np.ones(())}, jt.Format.ROW)
    assert e.message == "Tensor name: a has no shape information "


def test_bytes_outputs_are_base64_and_other_dtypes():
    body = json.loads(jt.predict_response({"raw_bytes": np.array([b"\x00\xff"], object),
                                           "n": np.array([3], np.int64),
                                           "ok": np.array([True])}, jt.Format.COLUMNAR))
    assert body["outputs"] == {"raw_bytes": [{"b64": "AP8="}], "n": [3], "ok": [True]}


@pytest.mark.parametrize("doc, message", [
    ({"signature_name": "serving_default"},
     "JSON Value: {\n    \"signature_name\": \"serving_default\"\n} When method is classify, "
     "key 'examples' is expected and was not found"),
    ({"examples": []}, "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"),
    ({"examples": [1]}, "Example must be JSON object but got JSON Number"),
    ({"examples": [{"a": [1, 2.5]}]}, "Unexpected element type in feature: a expecting type: "
     "int64"),
    ({"examples": [{"a": None}]}, "Feature: a has element with unexpected JSON type: Null"),
    ({"examples": [{"a": 2**63}]}, "Feature: a has uint64_t element. Only int64_t is supported."),
])
def test_classify_regress_request_checks(doc, message):
    assert error(jt.check_classify_regress_request, doc).message == message
