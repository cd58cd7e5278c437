"""Model backends: what loads one exported version folder and runs its signatures.

A backend module has `load(path, **options) -> Model`. A `Model` lists its `signatures`
(name -> `serving.signatures.Signature`) and runs one of them on numpy inputs. Backends are
imported only when a model asks for them, so a server whose models all use ONNX Runtime never
imports TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from serving.signatures import Signature

BACKENDS = {"tensorflow": "serving.backends.tensorflow", "onnx": "serving.backends.onnx"}
ALIASES = {"tf": "tensorflow", "tensorflow": "tensorflow", "onnx": "onnx",
           "onnxruntime": "onnx"}


class Model(Protocol):
    """One loaded model version."""

    #: The backend's name, reported as the `runtime` label of the runtime latency metric.
    runtime: str
    signatures: Mapping[str, Signature]

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray],
            output_names: Sequence[str]) -> dict[str, np.ndarray]:
        """Runs a signature on checked inputs; returns the requested outputs by alias."""

    def close(self) -> None:
        """Frees the model's resources; called once no request uses it any more."""


def canonical_name(name: str) -> str:
    """`tensorflow` or `onnx` for any accepted spelling; raises ValueError otherwise."""
    try:
        return ALIASES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; expected one of: tf, tensorflow, "
                         "onnx") from None


def load(backend: str, path: str, **options) -> Model:
    """Loads the version folder `path` with a backend (raises `ServingError` on failure)."""
    module = importlib.import_module(BACKENDS[canonical_name(backend)])
    return module.load(path, **options)
