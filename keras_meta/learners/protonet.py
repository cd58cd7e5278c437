"""Prototypical Networks: classify by distance to the mean embedding of each class."""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_meta.core.functional import FunctionalModel
from keras_meta.layers.prototype_head import PrototypeHead, squared_distances
from keras_meta.learners.base import MetaLearner, _merge_task_axis
from keras_meta.learners.maml import clone_keras_model
from keras_meta.tasks.episode import unpack_inputs, validate_episode


class ProtoNet(MetaLearner):
    """Prototypical Networks with squared Euclidean distance.

    ``model`` embeds inputs; each class's prototype is the mean embedding of its support
    examples, and query logits are negative squared distances to the prototypes. Adaptation
    needs no gradient steps, so the whole meta-batch is embedded in one batched call.

    Args:
        model: a built embedding model (inputs -> ``[N, features]``; its output is flattened).
        loss: defaults to sparse categorical cross-entropy on the logits.
        bn_policy: defaults to ``"running"`` (the ProtoNet protocol: running statistics at test);
            ``"transductive"`` uses each batch's statistics at test too.
        **kwargs: `MetaLearner` arguments.

    References:
        Snell, Swersky, Zemel. Prototypical Networks for Few-shot Learning. NeurIPS 2017.
    """

    def __init__(self, model: keras.Model, *, loss=None, bn_policy: str = "running", **kwargs):
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        kwargs.pop("inner_steps", None)
        kwargs.pop("eval_inner_steps", None)
        super().__init__(model, loss=loss, inner_steps=0, eval_inner_steps=0,
                         bn_policy=bn_policy, **kwargs)
        self.functional = FunctionalModel(model)
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.pop("inner_steps")
        config.pop("eval_inner_steps")
        return config

    def embed(self, x, training: bool):
        fm = self.functional
        out, non_trainable, regularization = fm(
            fm.trainable_values(), fm.non_trainable_values(), x, self.model_training(training))
        if training and self.bn_policy == "running":
            for variable, value in zip(self.model.non_trainable_variables, non_trainable):
                variable.assign(value)
        return tf.reshape(out, [tf.shape(out)[0], -1]), regularization

    @staticmethod
    def prototypes(embeddings, labels, ways):
        """``[..., ways, D]`` class means of ``[..., S, D]`` embeddings."""
        onehot = tf.one_hot(labels, ways, dtype=embeddings.dtype)
        sums = tf.einsum("...sw,...sd->...wd", onehot, embeddings)
        return sums / tf.maximum(tf.reduce_sum(onehot, axis=-2)[..., None], 1.0)

    def _logits(self, inputs, training):
        sx, sy, qx = unpack_inputs(inputs)
        tasks, support, queries = tf.shape(sx)[0], tf.shape(sx)[1], tf.shape(qx)[1]
        # Support and query of every task go through the network in one batch, as in ProtoNets.
        emb, regularization = self.embed(
            tf.concat([_merge_task_axis(sx), _merge_task_axis(qx)], axis=0), training)
        emb_s = tf.reshape(emb[: tasks * support], [tasks, support, -1])
        emb_q = tf.reshape(emb[tasks * support:], [tasks, queries, -1])
        ways = tf.reduce_max(sy) + 1
        protos = self.prototypes(emb_s, sy, ways)
        logits = -(tf.reduce_sum(tf.square(emb_q), -1, keepdims=True)
                   - 2.0 * tf.einsum("bqd,bwd->bqw", emb_q, protos)
                   + tf.reduce_sum(tf.square(protos), -1)[:, None, :])
        return logits, regularization

    def call(self, inputs, training=False, steps=None):
        return self._logits(inputs, training)[0]

    def query_losses(self, inputs, query_y, training):
        logits, regularization = self._logits(inputs, training)
        losses = tf.map_fn(lambda a: self.task_loss(a[0], a[1]), (query_y, logits),
                           fn_output_signature=self.loss_dtype)
        return losses + tf.cast(regularization, self.loss_dtype), logits

    def update_running_statistics(self, inputs):
        pass  # `embed` already moved them with the training forward pass

    # Per task (evaluation, adapted models, export).
    def adapt_task(self, support_x, support_y, steps, training):
        emb, _ = self.embed(support_x, training)
        return self.prototypes(emb, support_y, tf.reduce_max(support_y) + 1)

    def predict_task(self, state, query_x, training):
        emb, _ = self.embed(query_x, training)
        return -squared_distances(emb, state)

    def adapt(self, support_x, support_y, steps=None) -> keras.Model:
        """A Keras model ``embedding -> PrototypeHead`` holding this support set's prototypes."""
        episode = validate_episode((support_x, support_y, support_x, support_y), batched=False)
        sx = tf.convert_to_tensor(episode.support_x, self.output_dtype)
        prototypes = self.adapt_task(sx, tf.convert_to_tensor(episode.support_y), 0, False)
        embedding = clone_keras_model(self.model, sx)
        embedding.set_weights(self.model.get_weights())
        inputs = keras.Input(tuple(sx.shape[1:]))
        features = keras.layers.Flatten()(embedding(inputs))
        logits = PrototypeHead(prototypes, name="prototypes")(features)
        return keras.Model(inputs, logits, name=f"{self.model.name}_adapted")
