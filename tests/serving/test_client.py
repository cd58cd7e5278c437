"""The few-shot client over REST and gRPC, against the in-memory model."""

import numpy as np
import pytest

from serving.client import FewShotClient, GrpcClient, RestClient, ServingCallError

from .conftest import DIM, MODEL, QUERIES, example_inputs


@pytest.fixture(params=["rest", "grpc"])
def transport(request, server):
    if request.param == "rest":
        yield RestClient(server.rest)
    else:
        client = GrpcClient(server.grpc)
        yield client
        client.close()


def test_enrol_then_classify_uses_prototypes_of_embeddings(transport, exports):
    net = exports.nets[2]
    support = example_inputs()["adapt"]
    queries = np.random.default_rng(7).normal(size=(9, DIM)).astype(np.float32)
    client = FewShotClient(transport, MODEL).enrol(support["support_x"], support["support_y"] + 10)
    result = client.classify(queries)
    embed = net.reference("embed", x=support["support_x"])["embedding"]
    prototypes = np.stack([embed[support["support_y"] == c].mean(0) for c in range(3)])
    q = net.reference("embed", x=queries)["embedding"]
    expected = -((q[:, None] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(result.logits, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(result.labels, np.argmax(expected, 1) + 10)
    # The adapt signature computes the same prototypes server-side.
    adapted = client.adapt_and_predict(support["support_x"], support["support_y"], queries)
    np.testing.assert_allclose(adapted["logits"], expected, rtol=1e-4, atol=1e-4)


def test_adapt_and_predict_handles_any_query_count(transport, exports):
    support = example_inputs()["adapt"]
    for count in (QUERIES, 3, 2 * QUERIES + 1):
        queries = np.random.default_rng(count).normal(size=(count, DIM)).astype(np.float32)
        out = FewShotClient(transport, MODEL, version=1).adapt_and_predict(
            support["support_x"], support["support_y"], queries)
        expected = exports.nets[1].reference("adapt", **{**support, "query_x": queries})
        for name in ("logits", "probabilities"):
            np.testing.assert_allclose(out[name], expected[name], rtol=1e-4, atol=1e-5)


def test_classify_falls_back_to_adapt_without_embed(transport, monkeypatch):
    client = FewShotClient(transport, MODEL, label="canary")
    signatures = {k: v for k, v in client.signatures().items() if k != "embed"}
    monkeypatch.setattr(client, "signatures", lambda: signatures)
    support = example_inputs()["adapt"]
    client.enrol(support["support_x"], support["support_y"])
    result = client.classify(support["support_x"][:QUERIES])
    assert client.prototypes is None and result.logits.shape == (QUERIES, 3)


def test_predict_status_and_errors(transport):
    client = FewShotClient(transport, MODEL)
    out = client.predict(example_inputs()["serving_default"]["x"])
    assert out["logits"].shape == (5, 3) and out["logits"].dtype == np.float32
    assert transport.status(MODEL, version=1) == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}}]
    with pytest.raises(ServingCallError) as info:
        transport.predict("nope", {"x": np.zeros((1, DIM), np.float32)})
    assert info.value.code in (404, "NOT_FOUND")
    assert info.value.message == "Servable not found for request: Latest(nope)"


def test_rest_row_format(server):
    client = RestClient(server.rest)
    x = example_inputs()["serving_default"]["x"]
    row = client.predict(MODEL, {"x": x}, row_format=True)
    columnar = client.predict(MODEL, {"x": x})
    np.testing.assert_array_equal(row["logits"], columnar["logits"])
