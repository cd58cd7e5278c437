"""Prototypical Networks: classify by distance to the mean embedding of each class."""

from __future__ import annotations

import tensorflow as tf

from keras_meta.layers.prototype_head import PrototypeHead
from keras_meta.learners.metric import MetricLearner


class ProtoNet(MetricLearner):
    """Prototypical Networks with squared Euclidean distance.

    Each class's prototype is the mean embedding of its support examples; query logits are
    negative squared distances to the prototypes.

    Args:
        model: a built embedding model.
        **kwargs: `MetricLearner` arguments (``loss``, ``bn_policy``).

    References:
        Snell, Swersky, Zemel. Prototypical Networks for Few-shot Learning. NeurIPS 2017.
    """

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        self.built = True

    @staticmethod
    def prototypes(embeddings, labels, ways):
        """``[..., ways, D]`` class means of ``[..., S, D]`` embeddings."""
        onehot = tf.one_hot(labels, ways, dtype=embeddings.dtype)
        sums = tf.matmul(onehot, embeddings, transpose_a=True)
        return sums / tf.maximum(tf.reduce_sum(onehot, axis=-2)[..., None], 1.0)

    def fit_head(self, embeddings, labels, ways):
        return self.prototypes(embeddings, labels, ways)

    def head_logits(self, head, embeddings):
        return -(tf.reduce_sum(tf.square(embeddings), -1, keepdims=True)
                 - 2.0 * tf.matmul(embeddings, head, transpose_b=True)
                 + tf.expand_dims(tf.reduce_sum(tf.square(head), -1), -2))

    def head_layer(self, head):
        return PrototypeHead(head, name="prototypes")
