"""The interface of inner-loop update rules."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf


class UpdateRule(keras.layers.Layer):
    """An inner-loop update rule: a pair of pure functions, as in Optax.

    ``init(params) -> state`` and ``update(grads, state, params, step) -> (updates, state)``
    take and return lists of tensors and never assign variables, so the inner loop traces into
    `tf.function`/XLA and stays differentiable for second-order meta-gradients. A rule may own
    meta-parameters (for example learned step sizes): it creates them in
    ``build(param_shapes)``, and the learner trains them in the outer loop.
    """

    def build(self, param_shapes: Sequence[tuple]):
        self.built = True

    def init(self, params: Sequence[tf.Tensor]) -> tuple:
        return ()

    def update(self, grads, state, params, step: int):
        raise NotImplementedError

    def apply(self, grads, state, params, step: int = 0):
        """``params + updates`` and the new state."""
        updates, state = self.update(grads, state, params, step)
        return [p + u for p, u in zip(params, updates)], state

    def call(self, *args, **kwargs):  # pragma: no cover - rules are not called as layers
        raise TypeError(f"{type(self).__name__} is used through `init`/`update`, not called.")
