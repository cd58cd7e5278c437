"""Metric and closed-form learners: embed every example, fit a head to the support set."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_meta.core.functional import FunctionalModel
from keras_meta.learners.base import MetaLearner, _merge_task_axis
from keras_meta.learners.maml import clone_keras_model
from keras_meta.tasks.episode import unpack_inputs, validate_episode


class MetricLearner(MetaLearner):
    """Base of learners that adapt by fitting a head on support embeddings, without gradients.

    Subclasses implement ``fit_head(support_embeddings, support_y, ways)`` and
    ``head_logits(head, query_embeddings)``, both batched over any leading axes. Because
    adaptation has no gradient steps, a whole meta-batch is embedded in one batched call
    (support and query together, as the reference implementations do).

    Args:
        model: a built embedding model (inputs -> features; flattened).
        loss: defaults to sparse categorical cross-entropy on the logits.
        bn_policy: defaults to ``"running"`` (running statistics at test, as ProtoNets);
            ``"transductive"`` uses the current batch's statistics at test too.
    """

    def __init__(self, model: keras.Model, *, loss=None, bn_policy: str = "running", **kwargs):
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        kwargs.pop("inner_steps", None)
        kwargs.pop("eval_inner_steps", None)
        super().__init__(model, loss=loss, inner_steps=0, eval_inner_steps=0,
                         bn_policy=bn_policy, **kwargs)
        self.functional = FunctionalModel(model)

    def get_config(self):
        config = super().get_config()
        config.pop("inner_steps")
        config.pop("eval_inner_steps")
        return config

    # Heads (subclasses).
    def fit_head(self, embeddings, labels, ways):
        raise NotImplementedError

    def head_logits(self, head, embeddings):
        raise NotImplementedError

    def head_layer(self, head) -> keras.layers.Layer:
        """A Keras layer computing ``head_logits`` with this head's values baked in."""
        raise NotImplementedError

    # Shared machinery.
    def embed(self, x, training: bool):
        """``([N, D] embeddings in the loss dtype, regularization)``; moves BN statistics when
        training."""
        fm = self.functional
        out, non_trainable, regularization = fm(
            fm.trainable_values(), fm.non_trainable_values(), x, self.model_training(training))
        if training and self.bn_policy == "running":
            for variable, value in zip(self.model.non_trainable_variables, non_trainable):
                variable.assign(value)
        # Heads (distances, ridge solves) run in the loss dtype: float32 under mixed precision,
        # where float16 squared distances can overflow and `MatrixSolve` has no half kernel.
        return tf.cast(tf.reshape(out, [tf.shape(out)[0], -1]), self.loss_dtype), regularization

    def _logits(self, inputs, training):
        sx, sy, qx = unpack_inputs(inputs)
        tasks, support, queries = tf.shape(sx)[0], tf.shape(sx)[1], tf.shape(qx)[1]
        emb, regularization = self.embed(
            tf.concat([_merge_task_axis(sx), _merge_task_axis(qx)], axis=0), training)
        emb_s = tf.reshape(emb[: tasks * support], [tasks, support, -1])
        emb_q = tf.reshape(emb[tasks * support:], [tasks, queries, -1])
        head = self.fit_head(emb_s, sy, tf.reduce_max(sy) + 1)
        return self.head_logits(head, emb_q), regularization

    def call(self, inputs, training=False, steps=None):
        return self._logits(inputs, training)[0]

    def query_losses(self, inputs, query_y, training):
        logits, regularization = self._logits(inputs, training)
        losses = tf.map_fn(lambda a: self.task_loss(a[0], a[1]), (query_y, logits),
                           fn_output_signature=self.loss_dtype)
        return losses + tf.cast(regularization, self.loss_dtype), logits

    def update_running_statistics(self, inputs):
        pass  # `embed` already moved them in the training forward pass

    def adapt_task(self, support_x, support_y, steps, training):
        emb, _ = self.embed(support_x, training)
        return self.fit_head(emb, support_y, tf.reduce_max(support_y) + 1)

    def predict_task(self, state, query_x, training):
        emb, _ = self.embed(query_x, training)
        return self.head_logits(state, emb)

    def adapt(self, support_x, support_y, steps=None) -> keras.Model:
        """A Keras model ``embedding -> head`` fitted to this support set."""
        episode = validate_episode((support_x, support_y, support_x, support_y), batched=False)
        sx = tf.convert_to_tensor(episode.support_x, self.output_dtype)
        head = self.adapt_task(sx, tf.convert_to_tensor(episode.support_y), 0, False)
        embedding = clone_keras_model(self.model, sx)
        embedding.set_weights(self.model.get_weights())
        inputs = keras.Input(tuple(sx.shape[1:]))
        features = keras.layers.Flatten()(embedding(inputs))
        return keras.Model(inputs, self.head_layer(head)(features),
                           name=f"{self.model.name}_adapted")
