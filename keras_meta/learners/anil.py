"""ANIL: Almost No Inner Loop — adapt only the head."""

from __future__ import annotations

from keras_meta.core.functional import last_layer_with_weights
from keras_meta.learners.maml import MAML


class ANIL(MAML):
    """MAML that adapts only the head in the inner loop; the body is meta-learned only.

    Args:
        model: a built Keras model.
        adapt_layers: layers adapted in the inner loop; default the last layer with weights.
        **kwargs: `MAML` arguments.

    References:
        Raghu, Raghu, Bengio, Vinyals. Rapid Learning or Feature Reuse? Towards Understanding
        the Effectiveness of MAML. ICLR 2020.
    """

    def __init__(self, model, *, adapt_layers=None, **kwargs):
        if adapt_layers is None:
            adapt_layers = [last_layer_with_weights(model)]
        super().__init__(model, adapt_layers=adapt_layers, **kwargs)
