"""Reptile: move the initialisation toward weights adapted to each task."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_meta._validation import check_int
from keras_meta.learners.base import replica_share
from keras_meta.learners.maml import MAML
from keras_meta.tasks.episode import unpack_inputs


class Reptile(MAML):
    """Reptile: the meta-gradient is ``initial weights - adapted weights``, averaged over tasks.

    Each task adapts with ``inner_steps`` of the update rule on its support set; the compiled
    optimizer then applies the difference as a gradient (plain SGD with learning rate ``eps``
    is the paper's interpolation ``theta += eps * (phi - theta)``). No second derivatives are
    needed. The query set only feeds the reported loss and metrics.

    With ``inner_batch_size``, each training inner step fits a different mini-batch of the
    support set (a fresh random order per task, cycled), as the paper does: its analysis and
    experiments show that the meta-learning term comes from the gradients of *different*
    mini-batches, and its Omniglot runs train on 10 shots in batches of 10 before testing
    1-shot. Adaptation at test time (and ``adapt``) uses the whole support set every step.

    Args:
        model: a built Keras model.
        update_rule: inner rule (a float is SGD with that step size).
        inner_steps: inner steps per task during meta-training (Nichol et al. use 5-10).
        inner_batch_size: support examples per training inner step; default all of them.
        seed: seed of the mini-batch orders; default one drawn from NumPy's global generator
            (so `keras.utils.set_random_seed` fixes it). `get_config` records it, so a
            resumed or reloaded learner draws the same orders.
        **kwargs: `MAML` arguments.

    References:
        Nichol, Achiam, Schulman. On First-Order Meta-Learning Algorithms. 2018.
    """

    def __init__(self, model, *, inner_steps: int = 5, inner_batch_size: int | None = None,
                 seed: int | None = None, **kwargs):
        kwargs["first_order"] = True
        super().__init__(model, inner_steps=inner_steps, **kwargs)
        if self.update_rule.trainable_weights:
            raise ValueError("Reptile gives no gradient to a learned update rule; use a fixed "
                             f"rule such as SGD. Received: {type(self.update_rule).__name__}")
        self.inner_batch_size = check_int("inner_batch_size", inner_batch_size, 1, allow_none=True)
        seed = check_int("seed", seed, 0, allow_none=True)
        self.seed = int(np.random.randint(2**31 - 1)) if seed is None else seed

    def get_config(self):
        config = super().get_config()
        config.pop("first_order")
        return {**config, "inner_batch_size": self.inner_batch_size, "seed": self.seed}

    def protocol(self):
        return {**super().protocol(), "inner_batch_size": self.inner_batch_size or "all"}

    def _step_orders(self, support_y):
        """``[tasks, inner_steps, batch]`` support indices of each training inner step."""
        tasks, shots = support_y.shape[0], support_y.shape[1]
        batch = self.inner_batch_size
        if shots is not None and batch > shots:
            raise ValueError(f"`inner_batch_size` ({batch}) exceeds the support set of each "
                             f"task ({shots} examples).")
        tasks = tf.shape(support_y)[0] if tasks is None else tasks
        shots = tf.shape(support_y)[1] if shots is None else shots
        # Stateless and keyed by the step counter, so that a resumed run repeats the orders.
        seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int32),
                         tf.constant(self.seed, tf.int32)])
        order = tf.argsort(tf.random.stateless_uniform([tasks, shots], seed), axis=1)
        positions = (tf.range(self.inner_steps)[:, None] * batch + tf.range(batch)) % shots
        return tf.gather(order, positions, axis=1)

    def train_step(self, data):
        inputs, query_y = data[0], data[1]
        support_x, support_y, query_x = unpack_inputs(inputs)
        initial = self.functional.trainable_values()

        batched = self.inner_batch_size is not None and self.inner_steps > 0
        orders = (self._step_orders(support_y) if batched
                  else tf.zeros([tf.shape(support_y)[0], 0, 0], tf.int32))

        def one_task(sx, sy, qx, qy, order):
            batches = (tf.gather(sx, order), tf.gather(sy, order)) if batched else None
            params, non_trainable, _ = self.inner_loop(
                initial, self.functional.non_trainable_values(), sx, sy, self.inner_steps,
                training=True, step_batches=batches)
            loss, predictions = self.query_loss_task((params, non_trainable), qx, qy, True)
            return params, loss, predictions

        params_signature = [tf.TensorSpec(p.shape, p.dtype) for p in initial]
        adapted, losses, predictions = self.map_tasks(
            one_task, (support_x, support_y, query_x, query_y, orders),
            (params_signature, tf.TensorSpec([], self.loss_dtype), self._prediction_signature()),
        )
        grads = [self._scale_loss(replica_share(p0 - tf.reduce_mean(p, axis=0)))
                 for p0, p in zip(initial, adapted)]
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        self.update_running_statistics(inputs)
        return self._update_metrics(inputs, query_y, predictions, tf.reduce_mean(losses))
