"""The functional core shared by all learners."""

from keras_meta.core.functional import FunctionalModel, last_layer_with_weights

__all__ = ["FunctionalModel", "last_layer_with_weights"]
