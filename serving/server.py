"""The model server: one `ModelManager`, TF Serving's REST API (uvicorn) and gRPC API (grpcio).

    from serving import ModelServer, ServerOptions, discover
    with ModelServer(ServerOptions(models=discover("exports"))) as server:
        print(server.rest_port, server.grpc_port)

Both APIs share the loaded models. `start()` returns once the initial versions are loaded and
both ports accept connections; ports given as 0 are picked by the OS (`rest_port`/`grpc_port`
tell which), ports given as None are not opened.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time

from serving import backends, service, tensor_proto, warmup
from serving.errors import Code, ServingError
from serving.metrics import Metrics
from serving.models import LoadedVersion, ModelConfig, ModelManager, read_config_file

log = logging.getLogger("serving")


@dataclasses.dataclass
class ServerOptions:
    """Everything `ModelServer` needs; the CLI (`serving.cli`) documents each option."""

    models: list[ModelConfig]
    host: str = "127.0.0.1"
    grpc_port: int | None = 8500
    rest_port: int | None = 8501
    backend: str | None = None  # for every model; None: the config's platform, else tensorflow
    model_backends: dict[str, str] = dataclasses.field(default_factory=dict)
    poll_seconds: float = 1.0
    model_config_file: str | None = None
    model_config_file_poll_seconds: float = 0.0
    max_body_bytes: int = 64 << 20
    metrics_path: str | None = None  # None: no metrics page
    enable_cors: bool = False
    enable_warmup: bool = True
    tensor_content: bool = False
    grpc_max_threads: int = dataclasses.field(default_factory=lambda: 4 * (os.cpu_count() or 1))
    rest_num_threads: int = 0
    onnx_variant: str | None = None
    onnx_threads: int = 0


class ModelServer:
    def __init__(self, options: ServerOptions):
        self.options = options
        self.metrics = Metrics() if options.metrics_path else None
        for config in options.models:
            backends.canonical_name(self.backend_for(config))  # fail early on a bad name
        self.manager = ModelManager(
            options.models, self.backend_for, poll_seconds=options.poll_seconds,
            warmup=self._warm_up if options.enable_warmup else None,
            backend_options={"onnx": {"variant": options.onnx_variant,
                                      "threads": options.onnx_threads}})
        self._grpc = None
        self._uvicorn = None
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._stop_requested = threading.Event()
        self.grpc_port: int | None = None
        self.rest_port: int | None = None

    def backend_for(self, config: ModelConfig) -> str:
        """Per-model override, else the server-wide `--backend`, else the config's platform."""
        name = (self.options.model_backends.get(config.name) or self.options.backend
                or config.platform or "tensorflow")
        return backends.canonical_name(name)

    # -- warm-up -------------------------------------------------------------------------------
    def _warm_up(self, loaded: LoadedVersion) -> None:
        def replay(entry):
            kind = entry.WhichOneof("log_type")
            if kind == "predict_log":
                request = entry.predict_log.request
                service.run_predict(loaded.model, loaded.name, request.model_spec.signature_name,
                                    dict(request.inputs), list(request.output_filter),
                                    decode=tensor_proto.to_numpy)
            elif kind in ("classify_log", "regress_log"):
                request = getattr(entry, kind).request
                service.classify_or_regress(loaded.model, kind.split("_")[0],
                                            request.model_spec.signature_name)
            elif kind == "multi_inference_log":
                request = entry.multi_inference_log.request
                tasks = [(t.model_spec.name, t.model_spec.signature_name, t.method_name)
                         for t in request.tasks]
                service.multi_inference(loaded.model, tasks, 1)
            elif kind is not None:
                number = entry.DESCRIPTOR.fields_by_name[kind].number
                raise ServingError(Code.UNIMPLEMENTED,
                                   f"Unsupported log_type for warmup: {number}")

        try:
            records = warmup.run(loaded.path, replay)
        except ServingError as e:
            if self.metrics is not None:
                self.metrics.record_warmup(loaded.path, e.to_string(), 0)
            raise
        if records and self.metrics is not None:
            self.metrics.record_warmup(loaded.path, "OK", records)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> ModelServer:
        started = time.monotonic()
        self.manager.start()
        try:
            if self.options.grpc_port is not None:
                self._start_grpc()
            if self.options.rest_port is not None:
                self._start_rest()
        except BaseException:
            self.stop()
            raise
        if self.options.model_config_file and self.options.model_config_file_poll_seconds > 0:
            self._spawn(self._poll_config_file, "serving-config-poll")
        log.info("server ready in %.2f s", time.monotonic() - started)
        return self

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _start_grpc(self) -> None:
        from serving import grpc_api

        self._grpc = grpc_api.create_server(
            self.manager, self.metrics, max_threads=self.options.grpc_max_threads,
            max_message_bytes=self.options.max_body_bytes,
            tensor_content=self.options.tensor_content)
        address = _join_host_port(self.options.host, self.options.grpc_port)
        port = self._grpc.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen for gRPC on {address}")
        self._grpc.start()
        self.grpc_port = port
        log.info("Running gRPC ModelServer at %s ...", _join_host_port(self.options.host, port))

    def _start_rest(self) -> None:
        import uvicorn

        from serving.rest_api import RestApi, RestOptions

        rest = RestApi(self.manager, self.metrics, RestOptions(
            max_body_bytes=self.options.max_body_bytes, enable_cors=self.options.enable_cors,
            num_threads=self.options.rest_num_threads, metrics_path=self.options.metrics_path))
        family = socket.AF_INET6 if ":" in self.options.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
        # listening socket says TCP (with proto 0, Nagle + delayed ACK add ~40 ms per response).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.options.host, self.options.rest_port))
        sock.listen(1024)
        sock.setblocking(False)
        self.rest_port = sock.getsockname()[1]
        self._rest_socket = sock
        config = uvicorn.Config(rest.app, log_config=None, access_log=False, lifespan="off",
                                http="h11", ws="none", timeout_graceful_shutdown=5)
        self._uvicorn = uvicorn.Server(config)
        self._spawn(lambda: self._uvicorn.run(sockets=[sock]), "serving-rest")
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._threads[-1].is_alive():
                raise OSError("the REST server did not start")
            time.sleep(0.01)
        log.info("Exporting HTTP/REST API at %s ...",
                 _join_host_port(self.options.host, self.rest_port))

    def _poll_config_file(self) -> None:
        path = self.options.model_config_file
        last = _mtime(path)
        while not self._stopped.wait(self.options.model_config_file_poll_seconds):
            current = _mtime(path)
            if current == last:
                continue
            last = current
            try:
                models = read_config_file(path)
                for config in models:
                    backends.canonical_name(self.backend_for(config))
            except ValueError as e:
                log.error("not reloading %s: %s", path, e)
                continue
            self.manager.reload_config(models)

    def request_stop(self) -> None:
        """Makes `wait()` return (safe in a signal handler)."""
        self._stop_requested.set()

    def stop(self, grace: float = 2.0) -> None:
        """Stops accepting requests, lets requests in flight finish, unloads the models."""
        self._stop_requested.set()
        self._stopped.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        for thread in self._threads:
            thread.join(timeout=10)
        self.manager.stop()

    def wait(self) -> None:
        """Blocks until `request_stop()` or `stop()` (from another thread or a signal)."""
        self._stop_requested.wait()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
