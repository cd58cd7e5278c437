"""Model-Agnostic Meta-Learning (MAML) and its first-order approximation."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from keras_meta import update_rules
from keras_meta.core.functional import FunctionalModel
from keras_meta.layers.batch_normalization import use_exact_batch_norm
from keras_meta.learners.base import MetaLearner
from keras_meta.tasks.episode import validate_episode


class MAML(MetaLearner):
    """MAML: meta-learn initial weights from which a few gradient steps fit a new task.

    The inner loop runs ``update_rule`` on functional fast weights inside `tf.GradientTape`;
    the outer loss is the query loss after adaptation, differentiated through the inner loop
    (second order) unless ``first_order=True``. Changing the rule gives Meta-SGD, restricting
    ``adapt_layers`` gives ANIL, and ``inner_steps=0`` gives the "pretrained on all tasks"
    baseline of the MAML paper (fine-tuned at test with ``eval_inner_steps``).

    Args:
        model: a built Keras model.
        update_rule: an `UpdateRule`, or a float for plain SGD with that step size.
        first_order: drop second-derivative terms (FOMAML).
        adapt_layers: layers (or names) adapted in the inner loop; default all.
        **kwargs: `MetaLearner` arguments (``loss``, ``inner_steps``, ``eval_inner_steps``,
            ``bn_policy``, ``task_batching``).

    Example:

    >>> import keras, keras_meta
    >>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(40, "relu"),
    ...                         keras.layers.Dense(1)])
    >>> maml = keras_meta.learners.MAML(net, update_rule=0.01, loss="mse")
    >>> maml.compile(keras.optimizers.Adam(1e-3))
    >>> tasks = keras_meta.tasks.Sinusoid(shots=10)
    >>> history = maml.fit(tasks.dataset("train", 25), steps_per_epoch=5, verbose=0)
    >>> len(history.history["loss"])
    1

    References:
        Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks. ICML 2017.
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        update_rule: update_rules.UpdateRule | float | dict = 0.01,
        first_order: bool = False,
        adapt_layers: Sequence | None = None,
        **kwargs,
    ):
        super().__init__(model, **kwargs)
        self.first_order = bool(first_order)
        self.adapt_layers = None if adapt_layers is None else [
            layer if isinstance(layer, str) else layer.name for layer in adapt_layers
        ]
        if not self.first_order:
            use_exact_batch_norm(model)
        self.functional = FunctionalModel(model, self.adapt_layers)
        self.update_rule = update_rules.get(update_rule)
        self.update_rule.build([tuple(v.shape) for v in self.functional.adapted_variables])
        self.built = True

    def inner_loop(self, params, non_trainable, support_x, support_y, steps, training,
                   query_x=None, step_batches=None):
        """Adapt ``params`` on the support set; with ``query_x``, also record predictions.

        ``step_batches``, if given, is ``(xs, ys)`` with a leading axis of ``steps``: step ``i``
        then fits ``xs[i], ys[i]`` instead of the whole support set (mini-batch inner loops).
        Returns ``(params, non_trainable, trajectory)``, ``trajectory`` being the query
        predictions before and after each step when ``query_x`` is given.
        """
        fm = self.functional
        model_training = self.model_training(training)
        adapted = fm.select(params)
        state = self.update_rule.init(adapted)
        trajectory = []
        for step in range(steps):
            if query_x is not None:
                trajectory.append(fm(fm.merge(params, adapted), non_trainable, query_x,
                                     model_training)[0])
            x, y = (support_x, support_y) if step_batches is None else (
                step_batches[0][step], step_batches[1][step])
            with tf.GradientTape() as tape:
                tape.watch(adapted)
                predictions, _, regularization = fm(
                    fm.merge(params, adapted), non_trainable, x, model_training
                )
                loss = self.task_loss(y, predictions) + regularization
            grads = tape.gradient(loss, adapted)
            grads = [tf.zeros_like(a) if g is None else g for g, a in zip(grads, adapted)]
            if self.first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            adapted, state = self.update_rule.apply(grads, state, adapted, step)
        params = fm.merge(params, adapted)
        if query_x is not None:
            trajectory.append(fm(params, non_trainable, query_x, model_training)[0])
        return params, non_trainable, trajectory

    def adapt_task(self, support_x, support_y, steps, training):
        params, non_trainable, _ = self.inner_loop(
            self.functional.trainable_values(), self.functional.non_trainable_values(),
            support_x, support_y, steps, training,
        )
        return params, non_trainable

    def predict_task(self, state, query_x, training):
        params, non_trainable = state
        return self.functional(params, non_trainable, query_x, self.model_training(training))[0]

    def query_loss_task(self, state, query_x, query_y, training):
        # Weight and activity regularizers of the adapted model count in the meta-loss too.
        params, non_trainable = state
        predictions, _, regularization = self.functional(
            params, non_trainable, query_x, self.model_training(training))
        return self.task_loss(query_y, predictions) + regularization, predictions

    def adaptation_trajectory(self, support_x, support_y, query_x, steps):
        _, _, trajectory = self.inner_loop(
            self.functional.trainable_values(), self.functional.non_trainable_values(),
            support_x, support_y, steps, training=False, query_x=query_x,
        )
        return tf.stack(trajectory)

    def protocol(self):
        return {**super().protocol(), "first_order": self.first_order,
                "adapt_layers": self.adapt_layers or "all",
                "update_rule": type(self.update_rule).__name__}

    def get_config(self):
        return {**super().get_config(), "first_order": self.first_order,
                "adapt_layers": self.adapt_layers,
                "update_rule": {"name": _rule_name(self.update_rule),
                                **_rule_args(self.update_rule)}}

    def adapt(self, support_x, support_y, steps=None):
        steps = self.eval_inner_steps if steps is None else steps
        episode = validate_episode(
            (support_x, support_y, support_x, support_y), batched=False
        )
        sx = tf.convert_to_tensor(episode.support_x, self.output_dtype)
        sy = tf.convert_to_tensor(episode.support_y)
        params, non_trainable = _compiled(self, steps)(sx, sy)
        clone = clone_keras_model(self.model, sx)
        for variable, value in zip(clone.trainable_variables, params):
            variable.assign(value)
        for variable, value in zip(clone.non_trainable_variables, non_trainable):
            variable.assign(value)
        if self.bn_policy == "transductive":
            _set_batch_norm_statistics(clone, sx)
        return clone


def _compiled(learner, steps):
    cache = learner.__dict__.setdefault("_adapt_functions", {})
    if steps not in cache:
        cache[steps] = tf.function(
            lambda sx, sy: learner.adapt_task(sx, sy, steps, training=False)
        )
    return cache[steps]


def clone_keras_model(model: keras.Model, sample_x) -> keras.Model:
    """A fresh copy of ``model``'s architecture (Sequential, functional or subclassed), built."""
    try:
        clone = keras.models.clone_model(model)
    except Exception:  # subclassed models: rebuild from their config
        clone = type(model).from_config(model.get_config())
    if not clone.built:
        clone(sample_x[:1])
    return clone


def _set_batch_norm_statistics(model, x):
    """Set batch-norm running statistics to those of ``x`` (the support set).

    A transductive learner normalises with the statistics of the batch it sees; an adapted model
    served one example at a time needs fixed statistics, and the support set's are the ones the
    adaptation used.
    """
    layers = [layer for layer in model._flatten_layers()
              if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        model(x, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def _rule_name(rule):
    return {"SGD": "sgd", "LearnedStepSizes": "learned_step_sizes"}.get(type(rule).__name__,
                                                                       type(rule).__name__)


def _rule_args(rule):
    config = rule.get_config()
    return {k: v for k, v in config.items() if k in ("learning_rate", "initial_learning_rate")}


class FirstOrderMAML(MAML):
    """First-order MAML (FOMAML): MAML without second-derivative terms.

    The meta-gradient is the query-loss gradient at the adapted weights, which saves the memory
    and time of differentiating through the inner loop.
    """

    def __init__(self, model, **kwargs):
        kwargs.setdefault("first_order", True)
        if not kwargs["first_order"]:
            raise ValueError("FirstOrderMAML requires first_order=True; use MAML instead.")
        super().__init__(model, **kwargs)

