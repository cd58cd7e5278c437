"""Layers for meta-learning models."""

from keras_meta.layers.batch_normalization import BatchNormalization, use_exact_batch_norm
from keras_meta.layers.prototype_head import PrototypeHead

__all__ = ["BatchNormalization", "PrototypeHead", "use_exact_batch_norm"]
