"""Layers for meta-learning models."""

from keras_meta.layers.batch_normalization import BatchNormalization, use_exact_batch_norm

__all__ = ["BatchNormalization", "use_exact_batch_norm"]
