"""Clients for TF Serving's API (this server or `tensorflow_model_server`), and few-shot calls.

`RestClient` and `GrpcClient` send numpy arrays and return numpy arrays; `FewShotClient` builds
the few-shot workflow on either:

    from serving.client import FewShotClient, RestClient
    client = FewShotClient(RestClient("http://127.0.0.1:8501"), "omniglot")
    client.enrol(support_x, support_y)         # embeds the support set once (`embed`)
    labels = client.classify(query_x).labels   # nearest class prototype, per query
    out = client.adapt_and_predict(support_x, support_y, query_x)   # the `adapt` signature

Nothing here needs TensorFlow: the REST client needs `requests`, the gRPC client `grpcio` and
the protos of `tensorflow-serving-api`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping

import numpy as np


class ServingCallError(Exception):
    """A request the server refused: TF Serving's status (`code`, e.g. "INVALID_ARGUMENT" for
    gRPC, the HTTP status for REST) and its message."""

    def __init__(self, code, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    dtype: str  # "DT_FLOAT"
    shape: tuple[int, ...] | None  # -1: any size; None: unknown rank


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]


def _tensor_info_from_json(info: dict) -> TensorInfo:
    shape = info.get("tensor_shape", {})
    dims = None if shape.get("unknown_rank") else tuple(
        int(d.get("size", -1)) for d in shape.get("dim", []))
    return TensorInfo(info.get("dtype", "DT_INVALID"), dims)


_NUMPY_TYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32,
                "DT_INT64": np.int64, "DT_BOOL": np.bool_}


def _json_value(array: np.ndarray):
    if array.dtype.kind in "OSU":
        return np.vectorize(
            lambda v: {"b64": base64.b64encode(v if isinstance(v, bytes) else str(v).encode())
                       .decode()}, otypes=[object])(array).tolist()
    return array.tolist()


class RestClient:
    """TF Serving's REST API (`/v1/models/...`)."""

    def __init__(self, url: str = "http://127.0.0.1:8501", timeout: float = 60.0,
                 session=None):
        import requests

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self._metadata: dict[tuple, dict[str, SignatureInfo]] = {}

    def _path(self, model: str, version: int | None, label: str | None) -> str:
        path = f"{self.url}/v1/models/{model}"
        if version is not None:
            path += f"/versions/{version}"
        elif label is not None:
            path += f"/labels/{label}"
        return path

    def _call(self, method: str, url: str, body=None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        response = self.session.request(method, url, data=data, timeout=self.timeout,
                                        headers={"Content-Type": "application/json"})
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text}
        if response.status_code != 200:
            raise ServingCallError(response.status_code, payload.get("error", response.text))
        return payload

    def status(self, model: str, version: int | None = None, label: str | None = None) -> list:
        """`model_version_status` entries: dicts with `version`, `state`, `status`."""
        return self._call("GET", self._path(model, version, label))["model_version_status"]

    def metadata(self, model: str, version: int | None = None,
                 label: str | None = None) -> dict[str, SignatureInfo]:
        """The model's signatures (cached per model, version and label)."""
        key = (model, version, label)
        if key not in self._metadata:
            payload = self._call("GET", self._path(model, version, label) + "/metadata")
            defs = payload["metadata"]["signature_def"]["signature_def"]
            self._metadata[key] = {
                name: SignatureInfo(
                    {k: _tensor_info_from_json(v) for k, v in d.get("inputs", {}).items()},
                    {k: _tensor_info_from_json(v) for k, v in d.get("outputs", {}).items()})
                for name, d in defs.items()}
        return self._metadata[key]

    def predict(self, model: str, inputs: Mapping[str, np.ndarray] | np.ndarray,
                signature_name: str = "serving_default", version: int | None = None,
                label: str | None = None, row_format: bool = False) -> dict[str, np.ndarray]:
        """Runs a signature; `inputs` by name (or one array). Columnar unless `row_format`."""
        if isinstance(inputs, Mapping):
            values = {k: _json_value(np.asarray(v)) for k, v in inputs.items()}
        else:
            values = _json_value(np.asarray(inputs))
        if row_format:
            if isinstance(values, dict):
                count = len(next(iter(values.values())))
                instances = [{k: v[i] for k, v in values.items()} for i in range(count)]
            else:
                instances = values
            body = {"signature_name": signature_name, "instances": instances}
        else:
            body = {"signature_name": signature_name, "inputs": values}
        payload = self._call("POST", self._path(model, version, label) + ":predict", body)
        result = payload["predictions"] if row_format else payload["outputs"]
        outputs = self.metadata(model, version, label)[signature_name].outputs

        def array(name, value):
            return np.asarray(value, dtype=_NUMPY_TYPES.get(outputs[name].dtype))

        if len(outputs) == 1:
            name = next(iter(outputs))
            return {name: array(name, result)}
        if row_format:
            return {k: array(k, [row[k] for row in result]) for k in outputs}
        return {k: array(k, v) for k, v in result.items()}


class GrpcClient:
    """TF Serving's gRPC API through the official stubs."""

    def __init__(self, target: str = "127.0.0.1:8500", timeout: float = 60.0,
                 max_message_bytes: int = 64 << 20):
        import grpc

        from serving import _protos

        self._grpc = grpc
        self._pb = _protos.load()
        self.timeout = timeout
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)])
        self.predictions = self._pb.prediction_service_pb2_grpc.PredictionServiceStub(
            self.channel)
        self.models = self._pb.model_service_pb2_grpc.ModelServiceStub(self.channel)
        self._metadata: dict[tuple, dict[str, SignatureInfo]] = {}

    def close(self) -> None:
        self.channel.close()

    def _spec(self, spec, model, version, label, signature_name=""):
        spec.name = model
        if version is not None:
            spec.version.value = version
        elif label is not None:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as e:
            raise ServingCallError(e.code().name, e.details()) from None

    def status(self, model: str, version: int | None = None, label: str | None = None) -> list:
        """`model_version_status` entries, as dicts in the REST API's form."""
        pb = self._pb
        request = pb.get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        response = self._call(self.models.GetModelStatus, request)
        return [{"version": str(s.version),
                 "state": pb.get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
                 "status": {"error_code": pb.error_codes_pb2.Code.Name(s.status.error_code),
                            "error_message": s.status.error_message}}
                for s in response.model_version_status]

    def metadata(self, model: str, version: int | None = None,
                 label: str | None = None) -> dict[str, SignatureInfo]:
        key = (model, version, label)
        if key not in self._metadata:
            pb = self._pb
            request = pb.get_model_metadata_pb2.GetModelMetadataRequest(
                metadata_field=["signature_def"])
            self._spec(request.model_spec, model, version, label)
            response = self._call(self.predictions.GetModelMetadata, request)
            signature_map = pb.get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)

            def info(t):
                shape = None if t.tensor_shape.unknown_rank else tuple(
                    d.size for d in t.tensor_shape.dim)
                return TensorInfo(pb.types_pb2.DataType.Name(t.dtype), shape)

            self._metadata[key] = {
                name: SignatureInfo({k: info(v) for k, v in d.inputs.items()},
                                    {k: info(v) for k, v in d.outputs.items()})
                for name, d in signature_map.signature_def.items()}
        return self._metadata[key]

    def predict(self, model: str, inputs: Mapping[str, np.ndarray] | np.ndarray,
                signature_name: str = "serving_default", version: int | None = None,
                label: str | None = None, output_filter=()) -> dict[str, np.ndarray]:
        from serving import tensor_proto

        request = self._pb.predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature_name)
        if not isinstance(inputs, Mapping):
            names = list(self.metadata(model, version, label)[signature_name].inputs)
            inputs = {names[0]: inputs}
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tensor_proto.from_numpy(np.asarray(value)))
        request.output_filter.extend(output_filter)
        response = self._call(self.predictions.Predict, request)
        return {k: tensor_proto.to_numpy(v) for k, v in response.outputs.items()}


@dataclasses.dataclass(frozen=True)
class Classification:
    labels: np.ndarray  # [Q] predicted class label per query
    logits: np.ndarray  # [Q, ways] scores, higher is closer
    classes: np.ndarray  # [ways] the label of each logit column


class FewShotClient:
    """Few-shot calls on a served keras-meta model, over `RestClient` or `GrpcClient`.

    Args:
        transport: a `RestClient` or `GrpcClient`.
        model: the model name; `version` or `label` pin a version.
        metric: how `classify` compares embeddings with prototypes: "euclidean" (squared
            distance, Prototypical Networks) or "cosine".
    """

    def __init__(self, transport, model: str, version: int | None = None,
                 label: str | None = None, metric: str = "euclidean"):
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine'. Received: metric={metric}")
        self.transport = transport
        self.model, self.version, self.label = model, version, label
        self.metric = metric
        self.classes: np.ndarray | None = None
        self.prototypes: np.ndarray | None = None
        self._support: tuple[np.ndarray, np.ndarray] | None = None

    def signatures(self) -> dict[str, SignatureInfo]:
        return self.transport.metadata(self.model, self.version, self.label)

    def _predict(self, signature: str, inputs) -> dict[str, np.ndarray]:
        return self.transport.predict(self.model, inputs, signature_name=signature,
                                      version=self.version, label=self.label)

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """`serving_default` on a batch."""
        return self._predict("serving_default", {"x": np.asarray(x)})

    def embed(self, x: np.ndarray) -> np.ndarray:
        """`embed` on a batch: [batch, d] embeddings."""
        return self._predict("embed", {"x": np.asarray(x)})["embedding"]

    def enrol(self, support_x: np.ndarray, support_y: np.ndarray) -> FewShotClient:
        """Remembers a labelled support set: class prototypes (mean embeddings) when the model
        has `embed`, else the set itself, which `classify` then adapts to on every call."""
        support_x, support_y = np.asarray(support_x), np.asarray(support_y)
        if len(support_x) != len(support_y):
            raise ValueError(f"support_x and support_y must have the same length. Received: "
                             f"{len(support_x)} and {len(support_y)}")
        self.classes = np.unique(support_y)
        if "embed" in self.signatures():
            embeddings = self.embed(support_x)
            self.prototypes = np.stack(
                [embeddings[support_y == c].mean(axis=0) for c in self.classes])
            self._support = None
        else:
            self.prototypes = None
            self._support = (support_x, support_y)
        return self

    def classify(self, query_x: np.ndarray) -> Classification:
        """Classifies queries against the enrolled support set."""
        if self.classes is None:
            raise RuntimeError("call enrol(support_x, support_y) before classify(query_x)")
        if self.prototypes is None:
            out = self.adapt_and_predict(*self._support, query_x)
            logits = out["logits"] if "logits" in out else next(iter(out.values()))
            return Classification(self.classes[np.argmax(logits, axis=1)], logits, self.classes)
        queries = self.embed(query_x)
        if self.metric == "cosine":
            q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
            p = self.prototypes / np.linalg.norm(self.prototypes, axis=1, keepdims=True)
            logits = q @ p.T
        else:
            logits = -((queries[:, None, :] - self.prototypes[None]) ** 2).sum(axis=-1)
        return Classification(self.classes[np.argmax(logits, axis=1)], logits, self.classes)

    def adapt_and_predict(self, support_x: np.ndarray, support_y: np.ndarray,
                          query_x: np.ndarray) -> dict[str, np.ndarray]:
        """The `adapt` signature (columnar). Where the served graph has a fixed query count
        (ONNX exports), queries are sent in chunks of that size, the last one padded."""
        query_x = np.asarray(query_x)
        info = self.signatures()["adapt"].inputs
        fixed = info["query_x"].shape[0] if info["query_x"].shape else -1
        dtype = np.int32 if info["support_y"].dtype == "DT_INT32" else np.float32
        support = {"support_x": np.asarray(support_x, np.float32),
                   "support_y": np.asarray(support_y, dtype)}
        if fixed is None or fixed <= 0 or len(query_x) == fixed:
            return self._predict("adapt", {**support, "query_x": query_x})
        chunks = []
        for start in range(0, len(query_x), fixed):
            chunk = query_x[start:start + fixed]
            pad = fixed - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out = self._predict("adapt", {**support, "query_x": chunk})
            chunks.append({k: v[:fixed - pad] for k, v in out.items()})
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
