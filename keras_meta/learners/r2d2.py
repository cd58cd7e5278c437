"""R2-D2: a differentiable closed-form ridge-regression head on meta-learned embeddings."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_meta.learners.metric import MetricLearner


class RidgeHead(MetricLearner):
    """Ridge regression to one-hot targets, solved in closed form per task (R2-D2).

    With support embeddings ``X`` (``S x D``, plus a bias column) and one-hot targets ``Y``,
    the head is ``W = X^T (X X^T + lambda I)^{-1} Y`` (Woodbury form, an ``S x S`` solve) when
    ``S <= D``, as in few-shot episodes, else ``(X^T X + lambda I)^{-1} X^T Y``. Query logits
    are ``scale * X_q W + offset``. ``lambda``, ``scale`` and ``offset`` are meta-learned.

    Args:
        model: a built embedding model.
        l2: initial ridge penalty ``lambda``.
        scale: initial logit scale (R2-D2 learns it; the targets are 0/1, so logits need it).
        **kwargs: `MetricLearner` arguments.

    References:
        Bertinetto, Henriques, Torr, Vedaldi. Meta-learning with differentiable closed-form
        solvers. ICLR 2019.
    """

    def __init__(self, model, *, l2: float = 1.0, scale: float = 10.0, **kwargs):
        super().__init__(model, **kwargs)
        if not l2 > 0:
            raise ValueError(f"`l2` must be positive. Received: l2={l2!r}")
        self.initial_l2, self.initial_scale = float(l2), float(scale)
        self.log_l2 = self.add_weight(shape=(), name="log_l2",
                                      initializer=keras.initializers.Constant(tf.math.log(l2)))
        self.scale = self.add_weight(shape=(), name="scale",
                                     initializer=keras.initializers.Constant(scale))
        self.offset = self.add_weight(shape=(), name="offset", initializer="zeros")
        self.built = True

    def get_config(self):
        return {**super().get_config(), "l2": self.initial_l2, "scale": self.initial_scale}

    def fit_head(self, embeddings, labels, ways):
        x = _with_bias(embeddings)
        y = tf.one_hot(labels, ways, dtype=x.dtype)
        lam = tf.exp(tf.cast(self.log_l2, x.dtype))
        support, features = x.shape[-2], x.shape[-1]
        if support is not None and features is not None and support > features:
            gram = tf.matmul(x, x, transpose_a=True)
            eye = tf.eye(features, dtype=x.dtype)
            return tf.linalg.solve(gram + lam * eye, tf.matmul(x, y, transpose_a=True))
        gram = tf.matmul(x, x, transpose_b=True)
        eye = tf.eye(tf.shape(x)[-2], dtype=x.dtype)
        return tf.matmul(x, tf.linalg.solve(gram + lam * eye, y), transpose_a=True)

    def head_logits(self, head, embeddings):
        scale = tf.cast(self.scale, head.dtype)
        return scale * tf.matmul(_with_bias(embeddings), head) + tf.cast(self.offset, head.dtype)

    def head_layer(self, head):
        scale, offset = float(self.scale.numpy()), float(self.offset.numpy())
        kernel, bias = head[:-1] * scale, head[-1] * scale + offset
        layer = keras.layers.Dense(int(head.shape[-1]), name="ridge_head")
        layer.build((None, int(kernel.shape[0])))
        layer.set_weights([kernel.numpy(), bias.numpy()])
        return layer


def _with_bias(x):
    return tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)
