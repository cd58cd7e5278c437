"""Meta-SGD: MAML with learned per-parameter step sizes."""

from __future__ import annotations

from keras_meta.learners.maml import MAML
from keras_meta.update_rules import LearnedStepSizes


class MetaSGD(MAML):
    """MAML whose inner step sizes are meta-learned, one per parameter.

    Args:
        model: a built Keras model.
        initial_learning_rate: initial step size, or a ``(low, high)`` range to draw from.
        **kwargs: `MAML` arguments.

    References:
        Li, Zhou, Chen, Li. Meta-SGD: Learning to Learn Quickly for Few-Shot Learning. 2017.
    """

    def __init__(self, model, *, initial_learning_rate=0.01, update_rule=None, **kwargs):
        if update_rule is None:
            update_rule = LearnedStepSizes(initial_learning_rate)
        super().__init__(model, update_rule=update_rule, **kwargs)
