"""Learned per-parameter step sizes (Meta-SGD)."""

from __future__ import annotations

import keras

from keras_meta.update_rules.base import UpdateRule


class LearnedStepSizes(UpdateRule):
    """``params <- params - alpha * grads`` with ``alpha`` a learned tensor per parameter.

    ``alpha`` has the shape of each adapted parameter and is a meta-parameter: the outer loop
    trains it with the initial weights.

    Args:
        initial_learning_rate: initial value of every step size, or ``(low, high)`` to draw
            them uniformly (Li et al. draw from U[0.005, 0.1]).

    References:
        Li, Zhou, Chen, Li. Meta-SGD: Learning to Learn Quickly for Few-Shot Learning. 2017.
    """

    def __init__(self, initial_learning_rate: float | tuple[float, float] = 0.01, **kwargs):
        super().__init__(**kwargs)
        if isinstance(initial_learning_rate, (tuple, list)):
            low, high = map(float, initial_learning_rate)
            if not 0 <= low < high:
                raise ValueError("`initial_learning_rate` as a range must be (low, high) with "
                                 f"0 <= low < high. Received: {initial_learning_rate!r}")
            self.initial_learning_rate = (low, high)
        else:
            if not float(initial_learning_rate) > 0:
                raise ValueError("`initial_learning_rate` must be positive. "
                                 f"Received: initial_learning_rate={initial_learning_rate!r}")
            self.initial_learning_rate = float(initial_learning_rate)

    def build(self, param_shapes):
        if isinstance(self.initial_learning_rate, tuple):
            init = keras.initializers.RandomUniform(*self.initial_learning_rate)
        else:
            init = keras.initializers.Constant(self.initial_learning_rate)
        self.step_sizes = [
            self.add_weight(shape=tuple(shape), initializer=init, name=f"step_size_{i}")
            for i, shape in enumerate(param_shapes)
        ]
        self.built = True

    def update(self, grads, state, params, step=0):
        if len(grads) != len(self.step_sizes):
            raise ValueError(f"{type(self).__name__} was built for {len(self.step_sizes)} "
                             f"parameters but received {len(grads)} gradients.")
        return [-alpha * g for alpha, g in zip(self.step_sizes, grads)], state

    def get_config(self):
        return {**super().get_config(), "initial_learning_rate": self.initial_learning_rate}
