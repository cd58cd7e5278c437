"""Export keras-meta learners and adapted models to TF Serving (SavedModel), ONNX and LiteRT.

>>> from export import export_learner
>>> result = export_learner(learner, "exports", "omniglot-protonet",
...                         spec=tasks.spec,  # the EpisodeSpec of the training tasks
...                         formats="savedmodel,onnx,litert")  # doctest: +SKIP

See docs/export-format.md for the layout and signatures.
"""

import importlib

# Names resolve lazily, so that `keras-meta --help` (which imports `export.cli`) stays fast and
# does not start TensorFlow.
_EXPORTS = {
    "FORMATS": "export.exporter", "ExportResult": "export.exporter",
    "export_learner": "export.exporter", "export_model": "export.exporter",
    "export_signatures": "export.exporter", "export_policy": "export.rl",
    "policy_signatures": "export.rl", "export_run": "export.runs",
    "next_version": "export.layout", "versions": "export.layout",
    "write_models_config": "export.layout",
    "ExportCheckError": "export.parity", "ParityReport": "export.parity",
    "relative_error": "export.parity",
    "Signature": "export.signatures", "learner_signatures": "export.signatures",
    "model_signatures": "export.signatures",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
