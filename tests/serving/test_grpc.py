"""TF Serving's gRPC API through the official `tensorflow-serving-api` stubs."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)

from .conftest import MODEL, QUERIES, SUPPORT, example_inputs


def predict_request(signature="serving_default", model=MODEL, inputs=None, **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            request.model_spec.version_label = value
    for name, value in (inputs if inputs is not None else example_inputs()[signature]).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def rpc_error(method, request):
    with pytest.raises(grpc.RpcError) as info:
        method(request, timeout=30)
    return info.value.code(), info.value.details()


def test_predict_answers_with_model_spec_and_typed_values(server):
    predictions, _ = server.stubs()
    response = predictions.Predict(predict_request(), timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == (MODEL, 2, "serving_default")
    assert set(response.outputs) == {"logits", "probabilities"}
    logits = response.outputs["logits"]
    assert logits.dtype == tf.float32.as_datatype_enum and len(logits.float_val) == 5 * 3
    assert [d.size for d in logits.tensor_shape.dim] == [5, 3]


def test_output_filter(server):
    predictions, _ = server.stubs()
    request = predict_request("adapt")
    request.output_filter.append("probabilities")
    response = predictions.Predict(request, timeout=30)
    assert list(response.outputs) == ["probabilities"]
    assert tf.make_ndarray(response.outputs["probabilities"]).shape == (QUERIES, 3)


def bad_requests():
    no_spec = predict_pb2.PredictRequest()
    no_name = predict_request(model="")
    missing = predict_request("adapt")
    del missing.inputs["support_y"]
    renamed = predict_request()
    renamed.inputs["y"].CopyFrom(renamed.inputs.pop("x"))
    extra = predict_request()
    extra.inputs["y"].CopyFrom(extra.inputs["x"])
    unknown_output = predict_request()
    unknown_output.output_filter.append("nope")
    duplicate_output = predict_request()
    duplicate_output.output_filter.extend(["logits", "logits"])
    double = predict_request(inputs={"x": np.zeros((2, 4), np.float64)})
    broken = predict_request()
    broken.inputs["x"].tensor_content = b"\x00" * 3
    wrong_shape = predict_request(inputs={"x": np.zeros((2, 5), np.float32)})
    S = grpc.StatusCode
    return [
        (no_spec, S.INVALID_ARGUMENT, "Missing ModelSpec"),
        (no_name, S.INVALID_ARGUMENT, "ModelSpec has no name specified."),
        (predict_request(model="nope"), S.NOT_FOUND, "Servable not found for request: "
                                                     "Latest(nope)"),
        (predict_request(version=7), S.NOT_FOUND,
         f"Servable not found for request: Specific({MODEL}, 7)"),
        (predict_request(label="nope"), S.INVALID_ARGUMENT,
         "Unrecognized servable version label: nope"),
        (predict_request(inputs={"x": np.zeros((1, 4), np.float32)}, signature="nope"),
         S.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
        (missing, S.INVALID_ARGUMENT,
         "input size does not match signature: 2!=3 len({query_x,support_x}) != "
         "len({query_x,support_x,support_y}). Sent extra: {}. Missing but required: "
         "{support_y}."),
        (extra, S.INVALID_ARGUMENT,
         "input size does not match signature: 2!=1 len({x,y}) != len({x}). Sent extra: {y}. "
         "Missing but required: {}."),
        (renamed, S.INVALID_ARGUMENT, "Signature input alias: x(feed name: {name}) not found "
         "in request and no default value provided. Inputs expected to be in the request {y}, "
         "or default input alias set: "),
        (unknown_output, S.INVALID_ARGUMENT, "output tensor alias not found in signature: nope "
         "Outputs expected to be in the set {logits,probabilities}."),
        (duplicate_output, S.INVALID_ARGUMENT, "duplicate output tensor alias: logits"),
        (double, S.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided"),
        (broken, S.INVALID_ARGUMENT, "tensor parsing error: x"),
        (wrong_shape, S.INVALID_ARGUMENT,
         "input tensor alias x: shape [2,5] is not compatible with the signature's shape "
         "[-1,4]"),
    ]


def test_predict_errors_have_tf_servings_codes_and_messages(server):
    predictions, _ = server.stubs()
    x_name = server.server.manager._available[MODEL][2].signatures["serving_default"].inputs[
        "x"].name
    for request, code, message in bad_requests():
        assert rpc_error(predictions.Predict, request) == (code, message.replace("{name}", x_name))
    assert predictions.Predict(predict_request(), timeout=30).outputs  # still serving


def test_metadata_equals_the_saved_models_signature_defs(tf_server, exports):
    predictions, _ = tf_server.stubs()
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = predictions.GetModelMetadata(request, timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value) == (MODEL, 2)
    served = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(served)
    saved_model = saved_model_pb2.SavedModel()
    with open(exports.version_dir(2) + "/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    assert dict(served.signature_def) == dict(saved_model.meta_graphs[0].signature_def)


def test_onnx_metadata_matches_tf_but_for_graph_names_and_static_adapt(tf_server, onnx_server):
    def signatures(server):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = MODEL
        response = server.stubs()[0].GetModelMetadata(request, timeout=30)
        result = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(result)
        return result.signature_def

    def summary(defs):
        return {name: (d.method_name,
                       {k: (v.dtype, [x.size for x in v.tensor_shape.dim]) for k, v in
                        list(d.inputs.items()) + [("out:" + k, o) for k, o in d.outputs.items()]})
                for name, d in defs.items()}

    tf_defs, onnx_defs = summary(signatures(tf_server)), summary(signatures(onnx_server))
    tf_defs["adapt"][1]["support_x"][1][0] = tf_defs["adapt"][1]["support_y"][1][0] = SUPPORT
    tf_defs["adapt"][1]["query_x"][1][0] = QUERIES
    for key in ("out:logits", "out:probabilities"):
        tf_defs["adapt"][1][key][1][0] = QUERIES
    assert onnx_defs == tf_defs


def test_metadata_errors(server):
    predictions, _ = server.stubs()
    S = grpc.StatusCode
    no_field = get_model_metadata_pb2.GetModelMetadataRequest()
    no_field.model_spec.name = MODEL
    other = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def",
                                                                           "foo"])
    other.model_spec.name = MODEL
    missing = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    missing.model_spec.name = "nope"
    for request, expected in [
        (get_model_metadata_pb2.GetModelMetadataRequest(), (S.INVALID_ARGUMENT,
                                                            "Missing ModelSpec")),
        (no_field, (S.INVALID_ARGUMENT,
                    "GetModelMetadataRequest must specify at least one metadata_field")),
        (other, (S.INVALID_ARGUMENT, "Metadata field foo is not supported")),
        (missing, (S.NOT_FOUND, "Servable not found for request: Latest(nope)")),
    ]:
        assert rpc_error(predictions.GetModelMetadata, request) == expected


def test_model_status(server):
    _, models = server.stubs()
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = models.GetModelStatus(request, timeout=30)
    assert [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
             s.status.error_code, s.status.error_message)
            for s in response.model_version_status] == [(2, "AVAILABLE", 0, ""),
                                                        (1, "AVAILABLE", 0, "")]
    request.model_spec.version.value = 9
    assert rpc_error(models.GetModelStatus, request) == (
        grpc.StatusCode.NOT_FOUND, f"Could not find version 9 of model {MODEL}")
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    assert rpc_error(models.GetModelStatus, request) == (
        grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")
    assert rpc_error(models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")


def test_classify_regress_and_multi_inference_answer_as_tf_serving(server):
    predictions, _ = server.stubs()
    S = grpc.StatusCode
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = MODEL
    classify.model_spec.signature_name = "adapt"
    assert rpc_error(predictions.Classify, classify) == (S.INVALID_ARGUMENT,
                                                         "Expected one input Tensor.")
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = MODEL
    assert rpc_error(predictions.Regress, regress) == (S.INVALID_ARGUMENT,
                                                       "Expected one output Tensor.")
    assert rpc_error(predictions.Classify, classification_pb2.ClassificationRequest()) == (
        S.INVALID_ARGUMENT, "Missing ModelSpec")
    multi = inference_pb2.MultiInferenceRequest()
    task = multi.tasks.add()
    task.model_spec.name = MODEL
    task.method_name = "tensorflow/serving/predict"
    assert rpc_error(predictions.MultiInference, multi) == (
        S.UNIMPLEMENTED, "Unsupported signature method_name: tensorflow/serving/predict")
    task.method_name = "tensorflow/serving/classify"
    other = multi.tasks.add()
    other.model_spec.name = "other"
    assert rpc_error(predictions.MultiInference, multi) == (
        S.INVALID_ARGUMENT, "No classification inputs found in SignatureDef: "
        + server.server.manager._available[MODEL][2].signatures[
            "serving_default"].debug_string())


def test_long_messages_are_cut_like_tf_serving(server):
    predictions, _ = server.stubs()
    request = predict_request(inputs={f"input_{i:04d}": np.zeros(1, np.float32)
                                      for i in range(300)})
    code, message = rpc_error(predictions.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(message) == 1024 + len("...TRUNCATED") and message.endswith("...TRUNCATED")
