"""keras-meta: meta-learning ("learning to learn") for TensorFlow and Keras 3."""

from keras_meta import (
           _env,  # noqa: F401  (quiet TensorFlow before it is imported)
           core,
           datasets,
           layers,
           learners,
           models,
           tasks,
           update_rules,
)
from keras_meta.cross_validation import CrossValidationResult, cross_validate
from keras_meta.evaluation import EvaluationResult, evaluate

__version__ = "0.1.0"

__all__ = ["CrossValidationResult", "EvaluationResult", "__version__", "core", "cross_validate",
           "datasets", "evaluate", "layers", "learners", "models", "tasks", "update_rules"]
