"""keras-meta: meta-learning ("learning to learn") for TensorFlow and Keras 3.

Subpackages and functions load on first use, so that commands which do not need TensorFlow
(``keras-meta --help``, ``keras-meta serve --backend=onnx``) never import it.
"""

import importlib

from keras_meta import _env  # noqa: F401  (quiets TensorFlow's import, whenever it happens)

__version__ = "0.1.0"

_SUBPACKAGES = ("core", "datasets", "layers", "learners", "models", "tasks", "update_rules")
_FUNCTIONS = {
    "CrossValidationResult": "keras_meta.cross_validation",
    "cross_validate": "keras_meta.cross_validation",
    "EvaluationResult": "keras_meta.evaluation",
    "evaluate": "keras_meta.evaluation",
}

__all__ = sorted(["__version__", *_SUBPACKAGES, *_FUNCTIONS])


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keras_meta.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'keras_meta' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
