"""Prometheus metrics on TF Serving's path, and the limits that protect the server."""

import json

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from serving import read_config_file

from .conftest import MODEL, start_server

X = [[0.1, 0.2, 0.3, 0.4]]


def test_metrics_count_requests_by_model_signature_and_code(onnx_server):
    rest = onnx_server.rest
    requests.post(f"{rest}/v1/models/{MODEL}:predict", json={"instances": X}, timeout=30)
    requests.post(f"{rest}/v1/models/{MODEL}:predict",
                  json={"signature_name": "embed", "inputs": X}, timeout=30)
    requests.post(f"{rest}/v1/models/nope:predict", json={"instances": X}, timeout=30)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(X, np.float32)))
    onnx_server.stubs()[0].Predict(request, timeout=30)
    page = requests.get(f"{rest}/monitoring/prometheus/metrics", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    text = page.text
    # TF Serving's own metrics, as its exporter prints them.
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert f':tensorflow:serving:request_count{{model_name="{MODEL}",status="OK"}}' in text
    assert ':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"} ' in text
    assert (f':tensorflow:serving:request_latency_bucket{{model_name="{MODEL}",API="predict",'
            'entrypoint="REST",le="10"}') in text
    assert f'model_name="{MODEL}",API="Predict",entrypoint="GRPC",le="+Inf"' in text
    assert f':tensorflow:serving:runtime_latency_count{{model_name="{MODEL}",API="Predict",' \
           'runtime="ONNX"}' in text
    assert ":tensorflow:serving:model_warmup_records_read{model_path=" in text
    # keras-meta's, by signature.
    for signature in ("serving_default", "embed"):
        assert (f'keras_meta_serving_requests_total{{api="predict",code="OK",entrypoint="REST",'
                f'model="{MODEL}",signature="{signature}"}}') in text
    assert ('keras_meta_serving_request_latency_seconds_count{api="Predict",code="OK",'
            f'entrypoint="GRPC",model="{MODEL}",signature="serving_default"}}') in text


@pytest.fixture(scope="module")
def small_server(exports):
    running = start_server(read_config_file(f"{exports.root}/models.config"), backend="onnx",
                           max_body_bytes=2000, metrics_path=None, tensor_content=True)
    yield running
    running.close()


def test_oversized_bodies_get_resource_exhausted_and_the_server_keeps_serving(small_server):
    url = f"{small_server.rest}/v1/models/{MODEL}:predict"
    big = json.dumps({"instances": X * 200}).encode()
    response = requests.post(url, data=big, timeout=30)
    assert response.status_code == 429
    assert response.json() == {"error": f"Request body of {len(big)} bytes is larger than the "
                                        "limit of 2000 bytes (--max_body_bytes)"}

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(100):
            yield b" " * 100

    response = requests.post(url, data=chunks(), timeout=30)
    assert response.status_code == 429 and "larger than the limit" in response.json()["error"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((200, 4), np.float32)))
    with pytest.raises(grpc.RpcError) as info:
        small_server.stubs()[0].Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert requests.post(url, json={"instances": X}, timeout=30).status_code == 200
    assert requests.get(f"{small_server.rest}/monitoring/prometheus/metrics",
                        timeout=30).status_code == 404  # metrics are off on this server


def test_tensor_content_responses(small_server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(X, np.float32)))
    response = small_server.stubs()[0].Predict(request, timeout=30)
    logits = response.outputs["logits"]
    assert logits.tensor_content and not logits.float_val
    assert tf.make_ndarray(logits).shape == (1, 3)


def test_rest_listener_is_tcp_so_responses_are_not_delayed(onnx_server):
    import socket

    # With protocol 0, asyncio leaves Nagle on for accepted connections: ~40 ms per response.
    assert onnx_server.server._rest_socket.proto == socket.IPPROTO_TCP
