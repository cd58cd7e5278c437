"""Plain gradient descent with a fixed step size (MAML's inner loop)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import tensorflow as tf

from keras_meta.update_rules.base import UpdateRule


class SGD(UpdateRule):
    """``params <- params - learning_rate * grads``.

    Args:
        learning_rate: the fixed inner step size (MAML: 0.01 for sinusoids, 0.4 for 5-way
            Omniglot), or one step size per inner step, the last repeated for later steps
            (the MAML paper's RL evaluation: ``[0.1, 0.05]``, 0.1 for the first step and
            0.05 after).
    """

    def __init__(self, learning_rate: float | Sequence[float] = 0.01, **kwargs):
        super().__init__(**kwargs)
        rates = learning_rate if isinstance(learning_rate, (list, tuple)) else [learning_rate]
        if not rates or not all(isinstance(r, numbers.Real) and not isinstance(r, bool)
                                and math.isfinite(r) and r > 0 for r in rates):
            raise ValueError("`learning_rate` must be a positive number or a non-empty list of "
                             f"them. Received: learning_rate={learning_rate!r}")
        self.learning_rate = (float(rates[0]) if not isinstance(learning_rate, (list, tuple))
                              else tuple(float(r) for r in rates))

    def step_size(self, step: int | tf.Tensor) -> float | tf.Tensor:
        """The step size of inner step `step` (0-based)."""
        if isinstance(self.learning_rate, float):
            return self.learning_rate
        last = len(self.learning_rate) - 1
        if isinstance(step, int):
            return self.learning_rate[min(step, last)]
        return tf.gather(tf.constant(self.learning_rate), tf.minimum(step, last))

    def update(self, grads, state, params, step=0):
        rate = self.step_size(step)
        return [-tf.cast(rate, g.dtype) * g if isinstance(rate, tf.Tensor) else -rate * g
                for g in grads], state

    def get_config(self):
        rate = self.learning_rate
        return {**super().get_config(),
                "learning_rate": list(rate) if isinstance(rate, tuple) else rate}
