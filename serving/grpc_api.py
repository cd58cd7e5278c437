"""TF Serving's gRPC API on grpcio, with the official stubs of `tensorflow-serving-api`.

`tensorflow.serving.PredictionService` (Predict, GetModelMetadata, Classify, Regress,
MultiInference) and `tensorflow.serving.ModelService` (GetModelStatus, HandleReloadConfigRequest),
answering with TF Serving's status codes and messages (messages over 1024 characters are cut as
TF Serving cuts them).
"""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc

from serving import _protos, service, tensor_proto
from serving.errors import Code, ServingError, grpc_message, invalid_argument
from serving.metrics import Metrics
from serving.models import ModelManager, configs_from_proto

log = logging.getLogger("serving")
_pb = _protos.load()  # raises ProtosUnavailable where tensorflow-serving-api is missing


def _spec(model_spec) -> service.ModelSpec:
    choice = model_spec.WhichOneof("version_choice")
    return service.ModelSpec(
        name=model_spec.name,
        version=model_spec.version.value if choice == "version" else None,
        label=model_spec.version_label if choice == "version_label" else None,
        signature_name=model_spec.signature_name)


def _signature_def(pb, signature):
    """A `SignatureDef` proto from a `serving.signatures.Signature`."""
    out = pb.meta_graph_pb2.SignatureDef(method_name=signature.method_name)
    for field, tensors in (("inputs", signature.inputs), ("outputs", signature.outputs)):
        for alias, spec in tensors.items():
            info = getattr(out, field)[alias]
            info.name = spec.name
            info.dtype = spec.dtype.enum
            if spec.shape is None:
                info.tensor_shape.unknown_rank = True
            else:
                for size in spec.shape:
                    info.tensor_shape.dim.add(size=size)
    return out


class _Calls:
    """Shared plumbing: abort with TF Serving's status, record metrics."""

    def __init__(self, manager: ModelManager, metrics: Metrics | None, tensor_content: bool):
        self.manager = manager
        self.metrics = metrics
        self.tensor_content = tensor_content

    def call(self, context, api: str, model_name: str, fn, signature: str = "",
             tfs_latency: bool = False, tfs_count: bool = False):
        started = time.perf_counter()
        code = Code.OK
        try:
            return fn()
        except ServingError as e:
            code = e.code
            context.abort(grpc.StatusCode[e.code.name], grpc_message(e.message))
        except Exception as e:  # a bug must not take the server down
            log.exception("error in gRPC %s", api)
            code = Code.INTERNAL
            context.abort(grpc.StatusCode.INTERNAL, grpc_message(f"{type(e).__name__}: {e}"))
        finally:
            if self.metrics is not None:
                self.metrics.record_request(
                    model=model_name, signature=signature, api=api, entrypoint="GRPC",
                    code=code, seconds=time.perf_counter() - started,
                    tfs_api=api if tfs_latency else None, tfs_count=tfs_count)

    def record_runtime(self, model: str, runtime: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.record_runtime(model, "Predict", runtime, seconds)


class PredictionService(_pb.prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService`."""

    def __init__(self, calls: _Calls):
        self._calls = calls
        self._pb = _pb

    def Predict(self, request, context):  # noqa: N802  (gRPC method names)
        def run():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            spec = _spec(request.model_spec)
            manager = self._calls.manager
            with manager.handle(spec.name, spec.version, spec.label) as loaded:
                key, outputs = service.run_predict(
                    loaded.model, spec.name, spec.signature_name, dict(request.inputs),
                    output_filter=list(request.output_filter), decode=tensor_proto.to_numpy,
                    record_runtime=self._calls.record_runtime)
                version = loaded.version
            response = self._pb.predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = key
            for alias, array in outputs.items():
                response.outputs[alias].CopyFrom(
                    tensor_proto.from_numpy(array, as_content=self._calls.tensor_content))
            return response

        return self._calls.call(context, "Predict", request.model_spec.name, run,
                                signature=request.model_spec.signature_name or "serving_default",
                                tfs_latency=True, tfs_count=True)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def run():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            service.check_metadata_fields(list(request.metadata_field))
            spec = _spec(request.model_spec)
            with self._calls.manager.handle(spec.name, spec.version, spec.label) as loaded:
                signatures = dict(loaded.signatures)
                name, version = loaded.name, loaded.version
            pb = self._pb
            signature_map = pb.get_model_metadata_pb2.SignatureDefMap()
            for key, signature in signatures.items():
                signature_map.signature_def[key].CopyFrom(_signature_def(pb, signature))
            response = pb.get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = name
            response.model_spec.version.value = version
            response.metadata["signature_def"].Pack(signature_map)
            return response

        return self._calls.call(context, "GetModelMetadata", request.model_spec.name, run)

    def _classify_or_regress(self, request, context, method: str, api: str):
        def run():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            spec = _spec(request.model_spec)
            with self._calls.manager.handle(spec.name, spec.version, spec.label) as loaded:
                service.classify_or_regress(loaded.model, method, spec.signature_name)

        return self._calls.call(context, api, request.model_spec.name, run,
                                signature=request.model_spec.signature_name or "serving_default",
                                tfs_latency=True, tfs_count=True)

    def Classify(self, request, context):  # noqa: N802
        return self._classify_or_regress(request, context, "classify", "Classify")

    def Regress(self, request, context):  # noqa: N802
        return self._classify_or_regress(request, context, "regress", "Regress")

    def MultiInference(self, request, context):  # noqa: N802
        tasks = [(t.model_spec.name, t.model_spec.signature_name, t.method_name)
                 for t in request.tasks]
        first = request.tasks[0].model_spec if (
            request.tasks and request.tasks[0].HasField("model_spec")) else None

        def run():
            spec = _spec(first) if first is not None else service.ModelSpec("")
            kind = request.input.WhichOneof("kind")
            examples = (request.input.example_list.examples if kind == "example_list" else
                        request.input.example_list_with_context.examples if kind else [])
            with self._calls.manager.handle(spec.name, spec.version, spec.label) as loaded:
                service.multi_inference(loaded.model, tasks, len(examples))

        return self._calls.call(context, "MultiInference", first.name if first else "", run)


class ModelService(_pb.model_service_pb2_grpc.ModelServiceServicer):
    """`tensorflow.serving.ModelService`."""

    def __init__(self, calls: _Calls):
        self._calls = calls
        self._pb = _pb

    def GetModelStatus(self, request, context):  # noqa: N802
        def run():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            spec = _spec(request.model_spec)
            states = service.model_status(self._calls.manager, spec.name, spec.version)
            pb = self._pb.get_model_status_pb2
            response = pb.GetModelStatusResponse()
            for s in states:
                entry = response.model_version_status.add()
                entry.version = s.version
                entry.state = pb.ModelVersionStatus.State.Value(s.state)
                entry.status.error_code = int(s.error_code)
                entry.status.error_message = s.error_message
            return response

        return self._calls.call(context, "GetModelStatus", request.model_spec.name, run)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        def run():
            models = configs_from_proto(request.config)
            self._calls.manager.reload_config(models)
            return self._pb.model_management_pb2.ReloadConfigResponse()

        return self._calls.call(context, "HandleReloadConfigRequest", "", run)


def create_server(manager: ModelManager, metrics: Metrics | None = None, max_threads: int = 16,
                  max_message_bytes: int = 64 << 20, tensor_content: bool = False):
    """A grpcio server with both services added (not started, no port bound)."""
    calls = _Calls(manager, metrics, tensor_content)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="serving-grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", -1),
                 ("grpc.so_reuseport", 0)])
    _pb.prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(calls), server)
    _pb.model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(calls), server)
    return server


__all__ = ["ModelService", "PredictionService", "create_server"]
