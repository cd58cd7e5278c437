"""`MetaLearner`: the Keras model every meta-learner is.

A meta-learner wraps an ordinary Keras model (the *learner*) and trains its initial weights, and
any meta-parameters of its own, so that adapting to a new task from a support set gives good
predictions on that task's query set. It is a `keras.Model`: ``compile``, ``fit``,
``evaluate``, ``predict``, callbacks, ``steps_per_execution`` and ``jit_compile`` work as usual.

Data is Keras' ``(x, y)`` pair with ``x = {"support_x", "support_y", "query_x"}`` and
``y = query_y``, each with a leading task axis (see `keras_meta.tasks.Episode`).

Subclasses define the per-task computation: ``adapt_task`` (support set -> task state, e.g.
fast weights or prototypes) and ``predict_task`` (task state, query inputs -> predictions). The
base class maps it over the tasks of a meta-batch inside one compiled graph and provides
``train_step``, ``test_step``, ``call`` and ``adapt``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_meta._validation import check_int
from keras_meta.core import fused_steps
from keras_meta.tasks.episode import unpack_inputs

BN_POLICIES = ("transductive", "running")
TASK_BATCHING = ("auto", "map", "vectorize")


class MetaLearner(keras.Model):
    """Base class of meta-learners.

    Args:
        model: a built Keras model mapping a batch of inputs to predictions.
        loss: the task loss (name, function or `keras.losses.Loss`); may instead be given to
            ``compile``. For classification use logits with
            ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
        inner_steps: adaptation steps during meta-training.
        eval_inner_steps: adaptation steps at test and prediction time (default
            ``inner_steps``).
        bn_policy: ``"transductive"`` uses the statistics of the current batch (support or
            query) everywhere, as the MAML paper; ``"running"`` uses running statistics at test,
            updated during meta-training.
        task_batching: how the tasks of a meta-batch are processed together: ``"vectorize"``
            (every op batched over tasks, like JAX's ``vmap``), ``"map"`` (`tf.map_fn` with
            parallel iterations) or ``"auto"`` (vectorize unless the model has convolutions,
            whose gradients TensorFlow cannot vectorise).
        task_chunk_size: if set, the meta-gradient is accumulated over chunks of this many
            tasks, one chunk after another, so that peak memory holds one chunk's activations
            and tapes instead of the whole meta-batch's (the meta-batch size must be a multiple).
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        loss=None,
        inner_steps: int = 1,
        eval_inner_steps: int | None = None,
        bn_policy: str = "transductive",
        task_batching: str = "auto",
        task_chunk_size: int | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if not isinstance(model, keras.Model):
            raise ValueError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
        if not model.built:
            raise ValueError(
                f"`model` ({model.name}) must be built. Give it a `keras.Input` or call it once "
                "on a batch of data."
            )
        inner_steps = check_int("inner_steps", inner_steps, 0)
        eval_inner_steps = check_int("eval_inner_steps", eval_inner_steps, 0, allow_none=True)
        if bn_policy not in BN_POLICIES:
            raise ValueError(f"`bn_policy` must be one of {BN_POLICIES}. Received: {bn_policy!r}")
        if task_batching not in TASK_BATCHING:
            raise ValueError(
                f"`task_batching` must be one of {TASK_BATCHING}. Received: {task_batching!r}"
            )
        self.task_chunk_size = check_int("task_chunk_size", task_chunk_size, 1, allow_none=True)
        self.model = model
        self.inner_steps = inner_steps
        self.eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        self.bn_policy = bn_policy
        self.task_batching = task_batching
        self._task_loss_identifier = loss
        self._task_loss = keras.losses.get(loss) if loss is not None else None

    # ----------------------------------------------------------------- configuration
    def fit(self, *args, shuffle=False, **kwargs):
        """As `keras.Model.fit`; episode datasets are already random, so no shuffling."""
        return super().fit(*args, shuffle=shuffle, **kwargs)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """As `keras.Model.compile`; ``loss`` is the task loss used inside and outside."""
        if loss is not None:
            self._task_loss_identifier = loss
            self._task_loss = keras.losses.get(loss)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def make_train_function(self, force=False):
        """Keras' train function; with XLA, ``steps_per_execution`` steps per XLA program."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        fused = fused_steps.fused_function(self, self.train_step, self.train_function)
        self.train_function = fused or self.train_function
        return self.train_function

    def make_test_function(self, force=False):
        """As `make_train_function`, for ``evaluate``."""
        if self.test_function is not None and not force:
            return self.test_function
        super().make_test_function(force=True)
        fused = fused_steps.fused_function(self, self.test_step, self.test_function)
        self.test_function = fused or self.test_function
        return self.test_function

    def task_loss(self, y_true, y_pred) -> tf.Tensor:
        """Mean loss over the examples of one task."""
        if self._task_loss is None:
            raise ValueError(
                f"{type(self).__name__} has no task loss. Pass `loss=` to the constructor or to "
                "`compile`, e.g. loss='mse' or "
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True)."
            )
        loss = self._task_loss
        # A `keras.losses.Loss` divides its reduced value by the number of replicas of a
        # `tf.distribute` strategy, which would shrink every inner step; per-example values
        # are what a task's mean needs (the outer loss is shared out by `replica_share`).
        value = (loss.call(y_true, y_pred) if isinstance(loss, keras.losses.Loss)
                 else loss(y_true, y_pred))
        return tf.reduce_mean(tf.cast(value, self.loss_dtype))

    @property
    def loss_dtype(self) -> str:
        """float64 for float64 models, else float32 (also under mixed precision)."""
        return "float64" if self.output_dtype == "float64" else "float32"

    @property
    def output_dtype(self) -> str:
        """The dtype of the wrapped model's predictions."""
        outputs = getattr(self.model, "outputs", None)
        if outputs:
            return keras.backend.standardize_dtype(outputs[0].dtype)
        return self.model.compute_dtype

    def protocol(self) -> dict:
        """What a reported result must state about how this learner adapts."""
        return {
            "learner": type(self).__name__,
            "inner_steps_train": self.inner_steps,
            "inner_steps_test": self.eval_inner_steps,
            "bn_policy": self.bn_policy,
        }

    def get_config(self):
        return {
            "model": keras.saving.serialize_keras_object(self.model),
            "loss": keras.saving.serialize_keras_object(self._task_loss_identifier),
            "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps,
            "bn_policy": self.bn_policy,
            "task_batching": self.task_batching,
            "task_chunk_size": self.task_chunk_size,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        if config.get("loss") is not None:
            config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)

    # ----------------------------------------------------------------- per task (subclasses)
    def adapt_task(self, support_x, support_y, steps: int, training: bool):
        """Adapt to one task's support set; returns a task state (a nest of tensors)."""
        raise NotImplementedError

    def predict_task(self, state, query_x, training: bool):
        """Predictions for one task's query inputs from its task state."""
        raise NotImplementedError

    def query_loss_task(self, state, query_x, query_y, training: bool):
        """``(loss, predictions)`` on one task's query set: the outer (meta) loss."""
        predictions = self.predict_task(state, query_x, training=training)
        return self.task_loss(query_y, predictions), predictions

    def adaptation_trajectory(self, support_x, support_y, query_x, steps: int):
        """Query predictions after 0, 1, ..., ``steps`` adaptation steps, stacked on axis 0.

        Learners without steps (metric learners) return one entry, whatever ``steps`` is.
        """
        state = self.adapt_task(support_x, support_y, steps, training=False)
        return self.predict_task(state, query_x, training=False)[None]

    def model_training(self, training: bool) -> bool:
        """The ``training`` flag the wrapped model is called with under the batch-norm policy."""
        return True if self.bn_policy == "transductive" else training

    # ----------------------------------------------------------------- over tasks
    def map_tasks(self, fn, elems, output_signature):
        """Apply ``fn`` to each task of a meta-batch inside the graph."""
        if self.resolved_task_batching == "vectorize":
            return _vectorized_map(fn, elems)
        tasks = elems[0].shape[0]
        return tf.map_fn(
            lambda e: fn(*e),
            elems,
            fn_output_signature=output_signature,
            parallel_iterations=tasks or 10,
        )

    @property
    def resolved_task_batching(self) -> str:
        """``task_batching`` with ``"auto"`` resolved for this model.

        Vectorising batches every op over tasks (like JAX's ``vmap``): several times faster
        for dense models. TensorFlow has no batched rule for convolution gradients, so
        models with convolutions are mapped task by task.
        """
        if self.task_batching != "auto":
            return self.task_batching
        convolutional = any(
            "Conv" in cls.__name__
            for layer in self.model._flatten_layers()
            for cls in type(layer).__mro__
            if cls.__module__.startswith("keras")
        )
        return "map" if convolutional else "vectorize"

    def _prediction_signature(self):
        return tf.TensorSpec(None, self.output_dtype)

    def call(self, inputs, training=False, steps: int | None = None):
        """Adapt on each task's support set and predict its query set: ``[tasks, Q, ...]``."""
        support_x, support_y, query_x = unpack_inputs(inputs)
        if steps is None:
            steps = self.inner_steps if training else self.eval_inner_steps

        def one_task(sx, sy, qx):
            state = self.adapt_task(sx, sy, steps, training=training)
            return self.predict_task(state, qx, training=training)

        return self.map_tasks(
            one_task, (support_x, support_y, query_x), self._prediction_signature()
        )

    def query_losses(self, inputs, query_y, training: bool):
        """Per-task query loss and predictions, with the gradient path to meta-parameters."""
        support_x, support_y, query_x = unpack_inputs(inputs)
        steps = self.inner_steps if training else self.eval_inner_steps

        def one_task(sx, sy, qx, qy):
            state = self.adapt_task(sx, sy, steps, training=training)
            return self.query_loss_task(state, qx, qy, training=training)

        return self.map_tasks(
            one_task,
            (support_x, support_y, query_x, query_y),
            (tf.TensorSpec([], self.loss_dtype), self._prediction_signature()),
        )

    # ----------------------------------------------------------------- Keras hooks
    def meta_gradients(self, inputs, query_y):
        """``(gradients, mean loss, predictions)`` of the meta-loss of one meta-batch."""
        variables = self.trainable_variables
        tasks = query_y.shape[0]
        chunk = self.task_chunk_size
        if chunk is None or tasks is None or chunk >= tasks:
            with tf.GradientTape() as tape:
                losses, predictions = self.query_losses(inputs, query_y, training=True)
                loss = tf.reduce_mean(losses)
                share = self._scale_loss(replica_share(loss))
            return tape.gradient(share, variables), loss, predictions
        if tasks % chunk:
            raise ValueError(f"The meta-batch size ({tasks}) must be a multiple of "
                             f"`task_chunk_size` ({chunk}).")
        inputs = dict(zip(("support_x", "support_y", "query_x"), unpack_inputs(inputs)))
        traced = {}  # the static shape of a chunk's predictions, known once the body is traced

        def body(i, grads, losses, predictions):
            part = {k: v[i * chunk:(i + 1) * chunk] for k, v in inputs.items()}
            with tf.GradientTape() as tape:
                chunk_losses, chunk_pred = self.query_losses(
                    part, query_y[i * chunk:(i + 1) * chunk], training=True)
                loss = self._scale_loss(replica_share(tf.reduce_sum(chunk_losses) / tasks))
            traced["predictions"] = chunk_pred.shape
            new = tape.gradient(loss, variables)
            grads = [g if n is None else g + n for g, n in zip(grads, new)]
            return (i + 1, grads, losses.write(i, chunk_losses),
                    predictions.write(i, chunk_pred))

        zeros = [tf.zeros_like(v) for v in variables]
        losses = tf.TensorArray(self.loss_dtype, size=tasks // chunk)
        predictions = tf.TensorArray(self.output_dtype, size=tasks // chunk,
                                     infer_shape=False)
        _, grads, losses, predictions = tf.while_loop(
            lambda i, *_: i < tasks // chunk, body, (0, zeros, losses, predictions),
            parallel_iterations=1)
        predictions = predictions.concat()
        # Metrics need the rank, which the concatenation loses.
        predictions.set_shape(tf.TensorShape([tasks]).concatenate(traced["predictions"][1:]))
        return grads, tf.reduce_mean(losses.concat()), predictions

    def _scale_loss(self, loss):
        # A LossScaleOptimizer (compile wraps the optimizer in one under "mixed_float16") or a
        # `loss_scale_factor` divides the gradients it applies by the scale, so they must be
        # gradients of the scaled loss.
        optimizer = getattr(self, "optimizer", None)  # absent before `compile`
        return loss if optimizer is None else optimizer.scale_loss(loss)

    def train_step(self, data):
        inputs, query_y = data[0], data[1]
        grads, loss, predictions = self.meta_gradients(inputs, query_y)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None]
        )
        self.update_running_statistics(inputs)
        return self._update_metrics(inputs, query_y, predictions, loss)

    def update_running_statistics(self, inputs):
        """Under ``bn_policy="running"``, update batch-norm statistics from this meta-batch.

        The meta-model (not each adapted copy) sees all query inputs of the meta-batch in
        training mode, which moves the running statistics the way ordinary training does.
        """
        if self.bn_policy != "running" or not self.model.non_trainable_variables:
            return
        query_x = unpack_inputs(inputs)[2]
        self.model(_merge_task_axis(query_x), training=True)

    def test_step(self, data):
        inputs, query_y = data[0], data[1]
        losses, predictions = self.query_losses(inputs, query_y, training=False)
        return self._update_metrics(inputs, query_y, predictions, tf.reduce_mean(losses))

    def predict_step(self, data):
        inputs = data[0] if isinstance(data, (tuple, list)) and len(data) in (1, 2) else data
        return self(inputs, training=False)

    def _update_metrics(self, inputs, query_y, predictions, loss):
        if self._loss_tracker is not None:
            self._loss_tracker.update_state(loss)
        flat_y = _merge_task_axis(query_y)
        flat_pred = _merge_task_axis(predictions)
        return self.compute_metrics(inputs, flat_y, flat_pred)

    # ----------------------------------------------------------------- adapted models
    def adapt(self, support_x, support_y, steps: int | None = None) -> keras.Model:
        """Adapt to one task and return an ordinary Keras model with the adapted weights.

        Args:
            support_x: ``[S, *x_shape]`` support inputs of one task.
            support_y: ``[S, ...]`` support targets.
            steps: adaptation steps (default ``eval_inner_steps``).

        Returns:
            A new `keras.Model` (a clone of the learner's model) holding the adapted weights,
            usable for ``predict``, saving and export.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement `adapt`.")


def replica_share(x: tf.Tensor) -> tf.Tensor:
    """`x` divided by the number of replicas of the current `tf.distribute` strategy.

    The optimizer sums gradients over replicas, so each replica differentiates its share of
    the mean over the global meta-batch (a no-op without a multi-replica strategy).
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return x if replicas == 1 else x / replicas


def _vectorized_map(fn, elems):
    """``fn`` vectorised over the leading axis of ``elems`` (TensorFlow's pfor).

    Inside a graph, pfor runs directly in it: `tf.vectorized_map` would wrap it in a nested
    `tf.function` under XLA, which recompiles on every call when differentiated.
    """
    if tf.executing_eagerly() or _pfor_impl is None:
        return tf.vectorized_map(lambda e: fn(*e), elems, fallback_to_while_loop=True)
    tasks = elems[0].shape[0]
    if tasks is None:
        tasks = tf.shape(elems[0])[0]
    return _pfor_impl(lambda i: fn(*(tf.gather(e, i) for e in elems)), tasks,
                      fallback_to_while_loop=True, parallel_iterations=None)


try:  # a private TensorFlow function; without it, fall back to tf.vectorized_map
    from tensorflow.python.ops.parallel_for.control_flow_ops import _pfor_impl
except ImportError:  # pragma: no cover
    _pfor_impl = None


def _merge_task_axis(t):
    shape = tf.shape(t)
    return tf.reshape(t, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
