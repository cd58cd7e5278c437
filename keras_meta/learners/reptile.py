"""Reptile: move the initialisation toward weights adapted to each task."""

from __future__ import annotations

import tensorflow as tf

from keras_meta.learners.maml import MAML
from keras_meta.tasks.episode import unpack_inputs


class Reptile(MAML):
    """Reptile: the meta-gradient is ``initial weights - adapted weights``, averaged over tasks.

    Each task adapts with ``inner_steps`` of the update rule on its support set; the compiled
    optimizer then applies the difference as a gradient (plain SGD with learning rate ``eps``
    is the paper's interpolation ``theta += eps * (phi - theta)``). No second derivatives are
    needed. The query set only feeds the reported loss and metrics.

    Args:
        model: a built Keras model.
        update_rule: inner rule (a float is SGD with that step size).
        inner_steps: inner steps per task during meta-training (Nichol et al. use 5-10).
        **kwargs: `MAML` arguments.

    References:
        Nichol, Achiam, Schulman. On First-Order Meta-Learning Algorithms. 2018.
    """

    def __init__(self, model, *, inner_steps: int = 5, **kwargs):
        kwargs["first_order"] = True
        super().__init__(model, inner_steps=inner_steps, **kwargs)
        if self.update_rule.trainable_weights:
            raise ValueError("Reptile gives no gradient to a learned update rule; use a fixed "
                             f"rule such as SGD. Received: {type(self.update_rule).__name__}")

    def get_config(self):
        config = super().get_config()
        config.pop("first_order")
        return config

    def train_step(self, data):
        inputs, query_y = data[0], data[1]
        support_x, support_y, query_x = unpack_inputs(inputs)
        initial = self.functional.trainable_values()

        def one_task(sx, sy, qx, qy):
            params, non_trainable = self.adapt_task(sx, sy, self.inner_steps, training=True)
            loss, predictions = self.query_loss_task((params, non_trainable), qx, qy, True)
            return params, loss, predictions

        params_signature = [tf.TensorSpec(p.shape, p.dtype) for p in initial]
        adapted, losses, predictions = self.map_tasks(
            one_task, (support_x, support_y, query_x, query_y),
            (params_signature, tf.TensorSpec([], self.loss_dtype), self._prediction_signature()),
        )
        grads = [p0 - tf.reduce_mean(p, axis=0) for p0, p in zip(initial, adapted)]
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        self.update_running_statistics(inputs)
        return self._update_metrics(inputs, query_y, predictions, tf.reduce_mean(losses))
