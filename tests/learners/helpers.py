"""Small models and data shared by the learner tests."""

import keras
import numpy as np

from keras_meta import models
from keras_meta.tasks import Sinusoid


def sinusoid_net(hidden=(40, 40), **kwargs):
    return models.mlp((1,), hidden, 1, **kwargs)


def sinusoid_batch(tasks=4, shots=5, seed=0):
    return Sinusoid(shots=shots).episodes("train", tasks, seed=seed)


def classification_net(ways=3, features=6, batch_norm=False, dtype="float32"):
    layers = [keras.Input((features,), dtype=dtype),
              keras.layers.Dense(8, activation="tanh", dtype=dtype)]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(dtype=dtype))
    layers.append(keras.layers.Dense(ways, dtype=dtype))
    return keras.Sequential(layers)


def classification_batch(tasks=3, ways=3, shots=2, queries=3, features=6, seed=0, dtype="float32"):
    """Gaussian-cluster tasks: each class has its own random mean."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(tasks, ways, features)) * 2
    sy = np.tile(np.repeat(np.arange(ways), shots), (tasks, 1)).astype("int32")
    qy = np.tile(np.repeat(np.arange(ways), queries), (tasks, 1)).astype("int32")
    sx = np.take_along_axis(means, sy[..., None], 1) + rng.normal(size=sy.shape + (features,))
    qx = np.take_along_axis(means, qy[..., None], 1) + rng.normal(size=qy.shape + (features,))
    return sx.astype(dtype), sy, qx.astype(dtype), qy
