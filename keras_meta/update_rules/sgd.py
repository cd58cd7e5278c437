"""Plain gradient descent with a fixed step size (MAML's inner loop)."""

from __future__ import annotations

from keras_meta.update_rules.base import UpdateRule


class SGD(UpdateRule):
    """``params <- params - learning_rate * grads``.

    Args:
        learning_rate: the fixed inner step size (MAML: 0.01 for sinusoids, 0.4 for 5-way
            Omniglot).
    """

    def __init__(self, learning_rate: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if not learning_rate > 0:
            raise ValueError(
                f"`learning_rate` must be positive. Received: learning_rate={learning_rate!r}"
            )
        self.learning_rate = float(learning_rate)

    def update(self, grads, state, params, step=0):
        return [-self.learning_rate * g for g in grads], state

    def get_config(self):
        return {**super().get_config(), "learning_rate": self.learning_rate}
