"""`keras-meta serve` (also `python -m serving`): TF Serving's API over keras-meta exports.

Flags follow `tensorflow_model_server`'s names where it has one, so a command line or a
`models.config` written for TF Serving works here too. `add_arguments` fills a parser;
`run(args)` starts the server and blocks until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

DESCRIPTION = """\
Serve keras-meta exports with TF Serving's REST and gRPC APIs: a client written for
tensorflow_model_server works unchanged. Runs the SavedModel with TensorFlow, or the ONNX files
with ONNX Runtime (without importing TensorFlow)."""
EXAMPLES = """examples:
  keras-meta serve exports/                      # every <model>/<version>/ under exports/
  keras-meta serve --model_name=omniglot --model_base_path=exports/omniglot --backend=onnx
  keras-meta serve --model_config_file=exports/models.config --enable_metrics
  curl -d '{"instances": [[0.1, 0.2, 0.3, 0.4]]}' localhost:8501/v1/models/omniglot:predict
"""


def _bool(value: str) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _bool_flag(parser, name: str, default: bool, help: str) -> None:  # noqa: A002
    parser.add_argument(name, nargs="?", const=True, default=default, type=_bool,
                        metavar="true|false", help=help)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the server's options to `parser` (TF Serving's flag names where one exists)."""
    models = parser.add_argument_group("models")
    models.add_argument(
        "base_paths", nargs="*", metavar="BASE_PATH",
        help="export folder(s) to serve: a folder with a models.config (its models), a model "
        "folder holding <version>/ subfolders (one model, named after the folder), or a folder "
        "of such model folders (one model each)")
    models.add_argument(
        "--model_config_file", metavar="FILE",
        help="a text ModelServerConfig listing the models to serve, as for TF Serving: name, "
        "base_path, model_version_policy (latest/all/specific) and version_labels per model; "
        "relative base paths are read from the file's folder. When given, BASE_PATH, "
        "--model_name and --model_base_path are ignored")
    models.add_argument(
        "--model_config_file_poll_wait_seconds", type=float, default=0.0, metavar="SECONDS",
        help="re-read --model_config_file this often and serve the models it then lists "
        "(default 0: read once)")
    models.add_argument("--model_name", default="default",
                        help="name of the model given by --model_base_path (default: default)")
    models.add_argument(
        "--model_base_path", metavar="PATH",
        help="folder holding the numbered version folders of one model, e.g. exports/omniglot "
        "with exports/omniglot/1/; served under --model_name")
    models.add_argument(
        "--backend", action="append", default=[], metavar="BACKEND|MODEL=BACKEND",
        help="what runs the models: tf (the SavedModel, with TensorFlow) or onnx (the onnx/ "
        "folder, with ONNX Runtime; never imports TensorFlow). Repeat MODEL=BACKEND to choose "
        "per model, e.g. --backend=tf --backend=omniglot=onnx. Default: a model's "
        "model_platform from the config file if it names one, else tf")
    models.add_argument(
        "--file_system_poll_wait_seconds", type=float, default=1.0, metavar="SECONDS",
        help="how often to look for new or removed version folders (default 1); 0 looks only "
        "at start-up. A new version is loaded (and warmed up) before it serves; requests in "
        "flight finish on the version they started with")
    models.add_argument(
        "--onnx_variant", metavar="SUFFIX",
        help="serve <signature>.<SUFFIX>.onnx where the export has it, e.g. int8-static for "
        "the statically quantized files of `keras-meta export --quantize static` (ONNX backend)")
    models.add_argument("--onnx_threads", type=int, default=0, metavar="N",
                        help="intra-op threads per ONNX Runtime session (default 0: ONNX "
                        "Runtime's choice)")
    _bool_flag(models, "--enable_model_warmup", True,
               "replay <version>/assets.extra/tf_serving_warmup_requests when loading a version "
               "(default true; a failing request fails the load)")

    network = parser.add_argument_group("network")
    network.add_argument("--host", default="127.0.0.1",
                         help="address to listen on for both APIs (default 127.0.0.1: this "
                         "machine only; 0.0.0.0 for every interface, as TF Serving does)")
    network.add_argument("--port", type=int, default=8500,
                         help="gRPC port (tensorflow.serving.PredictionService and "
                         "ModelService; default 8500, 0 disables gRPC)")
    network.add_argument("--rest_api_port", type=int, default=8501,
                         help="REST port (/v1/models/...; default 8501, 0 disables REST)")
    network.add_argument(
        "--max_body_bytes", type=int, default=64 << 20, metavar="BYTES",
        help="largest request accepted, REST body (after gzip decoding) or gRPC message "
        "(default 67108864 = 64 MiB); larger ones get RESOURCE_EXHAUSTED (HTTP 429)")
    network.add_argument("--grpc_max_threads", type=int, default=4 * (os.cpu_count() or 1),
                         metavar="N", help="threads handling gRPC calls (default 4 per CPU)")
    network.add_argument("--rest_api_num_threads", type=int, default=0, metavar="N",
                         help="threads handling REST requests (default 0: 40)")
    _bool_flag(network, "--rest_api_enable_cors_support", False,
               "add CORS headers to REST responses and answer preflight requests")
    _bool_flag(network, "--enable_serialization_as_tensor_content", False,
               "send gRPC predict outputs in TensorProto.tensor_content (compact bytes) "
               "instead of the typed value fields")

    monitoring = parser.add_argument_group("monitoring")
    monitoring.add_argument(
        "--enable_metrics", action="store_true",
        help="serve Prometheus metrics (TF Serving's request count and latency metrics, and "
        "keras-meta's by model, signature and status code) on the REST port at --metrics_path")
    monitoring.add_argument(
        "--metrics_path", "--monitoring_path", default="/monitoring/prometheus/metrics",
        metavar="PATH", help="path of the metrics page (default /monitoring/prometheus/metrics, "
        "TF Serving's)")
    monitoring.add_argument(
        "--monitoring_config_file", metavar="FILE",
        help="a text MonitoringConfig as for TF Serving, e.g. 'prometheus_config { enable: "
        "true, path: \"/metrics\" }'; overrides --enable_metrics and --metrics_path")
    monitoring.add_argument("--log_level", default="INFO",
                            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                            help="server log level (default INFO)")


def _monitoring_config(path: str) -> tuple[bool, str]:
    """(enable, path) from a text `tensorflow.serving.MonitoringConfig` file."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving", syntax="proto3")
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # bool
    prometheus.field.add(name="path", number=2, type=9, label=1)  # string
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=11, label=1,
                         type_name=".tensorflow.serving.PrometheusConfig")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    config = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))()
    with open(path) as f:
        text_format.Parse(f.read(), config)
    prometheus = config.prometheus_config
    return prometheus.enable, prometheus.path or "/monitoring/prometheus/metrics"


def _backends(values: list[str]) -> tuple[str | None, dict[str, str]]:
    from serving import backends

    default, per_model = None, {}
    for value in values:
        if "=" in value:
            model, _, name = value.partition("=")
            per_model[model] = backends.canonical_name(name)
        else:
            default = backends.canonical_name(value)
    return default, per_model


def options_from_args(args: argparse.Namespace):
    """`ServerOptions` from parsed arguments; raises ValueError on inconsistent ones."""
    from serving import models as models_lib
    from serving.server import ServerOptions

    log = logging.getLogger("serving")
    if args.port and args.rest_api_port and args.port == args.rest_api_port:
        raise ValueError("--port and --rest_api_port must differ")
    if not args.port and not args.rest_api_port:
        raise ValueError("both APIs disabled: --port and --rest_api_port are 0")
    if args.model_config_file:
        if args.base_paths or args.model_base_path:
            log.warning("--model_config_file given: ignoring BASE_PATH and --model_base_path")
        models = models_lib.read_config_file(args.model_config_file)
    elif args.model_base_path:
        if args.base_paths:
            log.warning("--model_base_path given: ignoring BASE_PATH")
        models = [models_lib.ModelConfig(args.model_name,
                                         os.path.abspath(args.model_base_path))]
    elif args.base_paths:
        models = [m for path in args.base_paths for m in models_lib.discover(path)]
        names = [m.name for m in models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names found more than once: {', '.join(duplicates)}")
    else:
        raise ValueError("nothing to serve: give BASE_PATH, --model_base_path or "
                         "--model_config_file")
    enable_metrics, metrics_path = args.enable_metrics, args.metrics_path
    if args.monitoring_config_file:
        enable_metrics, metrics_path = _monitoring_config(args.monitoring_config_file)
    default_backend, model_backends = _backends(args.backend)
    return ServerOptions(
        models=models, host=args.host, grpc_port=args.port or None,
        rest_port=args.rest_api_port or None, backend=default_backend,
        model_backends=model_backends, poll_seconds=args.file_system_poll_wait_seconds,
        model_config_file=args.model_config_file,
        model_config_file_poll_seconds=args.model_config_file_poll_wait_seconds,
        max_body_bytes=args.max_body_bytes,
        metrics_path=metrics_path if enable_metrics else None,
        enable_cors=args.rest_api_enable_cors_support,
        enable_warmup=args.enable_model_warmup,
        tensor_content=args.enable_serialization_as_tensor_content,
        grpc_max_threads=args.grpc_max_threads, rest_num_threads=args.rest_api_num_threads,
        onnx_variant=args.onnx_variant, onnx_threads=args.onnx_threads)


def run(args: argparse.Namespace) -> int:
    """Starts the server and serves until SIGINT/SIGTERM; returns the exit status."""
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from serving import _protos
    from serving.server import ModelServer

    try:
        options = options_from_args(args)
        if options.grpc_port is not None and not _protos.available():
            raise ValueError("the gRPC API needs the protos of tensorflow-serving-api (and the "
                             "tensorflow package that holds their dependencies); install them "
                             "or pass --port=0 to serve REST only")
        server = ModelServer(options)
        server.start()
    except (ValueError, OSError, _protos.ProtosUnavailable) as e:
        print(f"serve: error: {e}", file=sys.stderr)
        return 2
    previous = {}

    def shutdown(signum, frame):
        logging.getLogger("serving").info("received signal %d, shutting down", signum)
        server.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, shutdown)
    try:
        server.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="keras-meta serve", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
