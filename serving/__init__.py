"""Serving keras-meta exports with TF Serving's REST and gRPC APIs.

A client written against `tensorflow_model_server` works unchanged against this server, which
runs an export's SavedModel with TensorFlow or its ONNX files with ONNX Runtime (without
importing TensorFlow). Start it with `keras-meta serve` or `python -m serving`; see
`serving.cli` for the options and `serving.client` for clients.
"""

from serving.errors import Code, ServingError
from serving.models import ModelConfig, discover, read_config_file
from serving.server import ModelServer, ServerOptions

__all__ = ["Code", "ModelConfig", "ModelServer", "ServerOptions", "ServingError", "discover",
           "read_config_file"]
