"""Export keras-meta learners and adapted models to TF Serving (SavedModel), ONNX and LiteRT.

>>> from export import EpisodeShape, export_learner
>>> result = export_learner(learner, "exports", "omniglot-protonet",
...                         shape=EpisodeShape((28, 28, 1), support_size=5, query_size=15,
...                                            ways=5),
...                         formats="savedmodel,onnx,litert")  # doctest: +SKIP

See docs/export-format.md for the layout and signatures.
"""

from export.exporter import FORMATS, ExportResult, export_learner, export_model
from export.layout import next_version, versions, write_models_config
from export.parity import ExportCheckError, ParityReport, relative_error
from export.signatures import EpisodeShape, Signature, learner_signatures, model_signatures

__all__ = [
    "FORMATS", "EpisodeShape", "ExportCheckError", "ExportResult", "ParityReport", "Signature",
    "export_learner", "export_model", "learner_signatures", "model_signatures", "next_version",
    "relative_error", "versions", "write_models_config",
]
