"""TF Serving's protocol buffers, loaded without running TensorFlow's package initializer.

The official stubs (`tensorflow_serving.apis.*_pb2`) import TensorFlow's own message modules
(`tensorflow.core.framework.tensor_pb2`, ...). Importing any `tensorflow.*` module normally runs
`tensorflow/__init__.py`, which loads the whole TensorFlow runtime (seconds of start-up and about
a gigabyte of memory) although only a few generated `*_pb2` files are needed. When TensorFlow has
not been imported yet, `load()` registers a bare namespace module named `tensorflow` (its
`__path__` the installed package directory, nothing executed) while the generated modules import,
then removes it again. The `tensorflow.core...` modules stay loaded (they are TensorFlow's own
files), and a later `import tensorflow` in the same process runs the real initializer normally.

`model_server_config_pb2` (for `models.config`) needs no TensorFlow module at all, so
`load_config()` works on a machine where TensorFlow is not installed; gRPC and warm-up records
need the TensorFlow message modules from the `tensorflow` wheel.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
import types

_lock = threading.Lock()
_cache: dict[str, types.SimpleNamespace] = {}

API_MODULES = {
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "get_model_metadata_pb2": "tensorflow_serving.apis.get_model_metadata_pb2",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "model_pb2": "tensorflow_serving.apis.model_pb2",
    "classification_pb2": "tensorflow_serving.apis.classification_pb2",
    "regression_pb2": "tensorflow_serving.apis.regression_pb2",
    "inference_pb2": "tensorflow_serving.apis.inference_pb2",
    "model_management_pb2": "tensorflow_serving.apis.model_management_pb2",
    "prediction_log_pb2": "tensorflow_serving.apis.prediction_log_pb2",
    "prediction_service_pb2_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "model_service_pb2_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "meta_graph_pb2": "tensorflow.core.protobuf.meta_graph_pb2",
    "error_codes_pb2": "tensorflow.core.protobuf.error_codes_pb2",
    "model_server_config_pb2": "tensorflow_serving.config.model_server_config_pb2",
}


class ProtosUnavailable(ImportError):
    """The TF Serving API protos cannot be imported (tensorflow-serving-api not installed)."""


@contextlib.contextmanager
def _tensorflow_namespace():
    """While active, `tensorflow` is a bare namespace unless TensorFlow is already imported."""
    if "tensorflow" in sys.modules:
        yield
        return
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ProtosUnavailable(
            "TF Serving's API protos import TensorFlow's message modules, which come with the "
            "`tensorflow` package; it is not installed")
    stub = types.ModuleType("tensorflow")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__package__ = "tensorflow"
    sys.modules["tensorflow"] = stub
    try:
        yield
    finally:
        if sys.modules.get("tensorflow") is stub:
            del sys.modules["tensorflow"]


def load() -> types.SimpleNamespace:
    """The API modules by short name (`load().predict_pb2`, ...); raises `ProtosUnavailable`."""
    with _lock:
        if "api" not in _cache:
            try:
                with _tensorflow_namespace():
                    modules = {k: importlib.import_module(v) for k, v in API_MODULES.items()}
            except ImportError as e:
                raise ProtosUnavailable(
                    f"TF Serving's API protos are not importable ({e}); install "
                    "`tensorflow-serving-api`") from e
            _cache["api"] = types.SimpleNamespace(**modules)
        return _cache["api"]


def load_config():
    """`tensorflow_serving.config.model_server_config_pb2` (needs no TensorFlow module)."""
    try:
        return importlib.import_module("tensorflow_serving.config.model_server_config_pb2")
    except ImportError as e:
        raise ProtosUnavailable(
            "reading a models.config needs `tensorflow_serving.config` (package "
            "`tensorflow-serving-api`; `pip install --no-deps tensorflow-serving-api` is enough "
            f"for this): {e}") from e


def available() -> bool:
    try:
        load()
    except ProtosUnavailable:
        return False
    return True
