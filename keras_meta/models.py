"""Model builders for the usual meta-learning backbones."""

from __future__ import annotations

from collections.abc import Sequence

import keras


def mlp(input_shape: Sequence[int] = (1,), hidden: Sequence[int] = (40, 40), outputs: int = 1,
        activation: str = "relu", kernel_regularizer=None, kernel_initializer="glorot_uniform",
        name: str = "mlp") -> keras.Model:
    """A fully connected network (MAML's sinusoid model is ``mlp((1,), (40, 40), 1)``).

    ``kernel_initializer`` accepts Keras names or ``{"truncated_normal": stddev}`` (the MAML
    reference code initialises its sinusoid network with a truncated normal of std 0.01).
    """
    if isinstance(kernel_initializer, dict) and "truncated_normal" in kernel_initializer:
        kernel_initializer = keras.initializers.TruncatedNormal(
            stddev=float(kernel_initializer["truncated_normal"]))
    if outputs < 1 or any(h < 1 for h in hidden):
        raise ValueError(f"`hidden` and `outputs` must be positive. Received: hidden={hidden}, "
                         f"outputs={outputs}")
    layers = [keras.Input(tuple(input_shape))]
    layers += [keras.layers.Dense(h, activation=activation, kernel_initializer=kernel_initializer,
                                  kernel_regularizer=kernel_regularizer) for h in hidden]
    layers.append(keras.layers.Dense(outputs, kernel_initializer=kernel_initializer,
                                     kernel_regularizer=kernel_regularizer))
    return keras.Sequential(layers, name=name)


def conv4(input_shape: Sequence[int] = (28, 28, 1), ways: int = 5, filters: int = 64,
          blocks: int = 4, name: str = "conv4") -> keras.Model:
    """The Conv-4 backbone: ``blocks`` x [3x3 conv, batch norm, ReLU, 2x2 max-pool], then a
    linear head with ``ways`` logits (``ways=0`` gives the embedding network alone)."""
    from keras_meta.layers import BatchNormalization

    inputs = keras.Input(tuple(input_shape))
    x = inputs
    for i in range(blocks):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        # momentum 0.9 is PyTorch's default (0.1 there), which the reference implementations use
        x = BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if ways:
        x = keras.layers.Dense(ways, name="head")(x)
    return keras.Model(inputs, x, name=name)


BUILDERS = {"mlp": mlp, "conv4": conv4}


def build(config: dict) -> keras.Model:
    """A model from ``{"name": ..., **builder arguments}``."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in BUILDERS:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(BUILDERS)}.")
    return BUILDERS[name](**config)
