"""A classification head that scores inputs by distance to class prototypes."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_meta")
class PrototypeHead(keras.layers.Layer):
    """Logits ``-||x - p_c||^2`` for each stored prototype ``p_c`` (Prototypical Networks).

    Args:
        prototypes: initial ``[classes, features]`` prototypes (stored as non-trainable weights,
            so an adapted model saves and exports them).
    """

    def __init__(self, prototypes=None, classes: int | None = None, features: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if prototypes is not None:
            classes, features = (int(d) for d in ops.shape(prototypes))
        if not classes or not features:
            raise ValueError("Give `prototypes` or both `classes` and `features`. Received: "
                             f"classes={classes}, features={features}")
        self.classes, self.features = classes, features
        self.prototypes = self.add_weight(shape=(classes, features), initializer="zeros",
                                          trainable=False, name="prototypes")
        if prototypes is not None:
            self.prototypes.assign(prototypes)

    def call(self, x):
        return -squared_distances(x, self.prototypes)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "features": self.features}


def squared_distances(x, prototypes):
    """``[N, C]`` squared Euclidean distances between ``[N, D]`` rows and ``[C, D]`` centres."""
    return (ops.sum(ops.square(x), axis=-1, keepdims=True)
            - 2.0 * ops.matmul(x, ops.transpose(prototypes))
            + ops.sum(ops.square(prototypes), axis=-1)[None, :])
