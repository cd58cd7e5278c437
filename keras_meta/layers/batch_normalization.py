"""Batch normalization with exact second derivatives."""

from __future__ import annotations

import logging

import keras
from keras import ops

log = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="keras_meta")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose batch variance is exactly differentiable twice.

    Keras 3's TensorFlow backend computes batch moments with `tf.nn.moments`, which stops the
    gradient through the mean inside the variance. First derivatives are unaffected, but a
    second-derivative term is lost, so second-order MAML through stock batch norm follows a
    wrong meta-gradient. This layer computes ``mean((x - mean)**2)`` directly; it is otherwise
    identical (same arguments, weights and config) and costs no measurable speed.
    """

    def _moments(self, inputs, mask):
        if mask is not None or self.synchronized:
            return super()._moments(inputs, mask)
        x = inputs
        if x.dtype in ("float16", "bfloat16"):
            x = ops.cast(x, "float32")
        mean = ops.mean(x, axis=self._reduction_axes, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=self._reduction_axes)
        mean = ops.squeeze(mean, axis=self._reduction_axes)
        return ops.cast(mean, inputs.dtype), ops.cast(variance, inputs.dtype)


def use_exact_batch_norm(model: keras.Model) -> int:
    """Make every stock `BatchNormalization` layer of ``model`` exact under second derivatives.

    Switches the class of each ``keras.layers.BatchNormalization`` instance (not subclasses) to
    `keras_meta.layers.BatchNormalization`, keeping its weights and configuration. Returns the
    number of layers changed.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=True):
        if type(layer) is keras.layers.BatchNormalization:
            layer.__class__ = BatchNormalization
            changed += 1
    if changed:
        log.info("Using exact second-order batch norm in %d layer(s) of %s", changed, model.name)
    return changed
