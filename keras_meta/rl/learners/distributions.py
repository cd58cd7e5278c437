"""Action distributions of the RL learners, as pure functions of a parameter tensor.

A policy outputs one flat float tensor of *distribution parameters* per row: the logits
for `Categorical`, ``concat(mean, log_std)`` for `DiagonalGaussian`. Keeping the
parameters a plain tensor makes a policy step a function
``(inputs, state) -> (params, state)`` that exports and vectorises without a
distribution object, and lets the learners store the parameters of the behaviour
policy for ratios and KL divergences.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from keras_meta._validation import check_int


class Categorical:
    """Categorical distribution over ``num_actions`` actions, parameterised by logits.

    Args:
        num_actions: int >= 2.

    Raises:
        ValueError: if `num_actions` is not an integer >= 2.
    """

    discrete = True

    def __init__(self, num_actions: int) -> None:
        self.num_actions = check_int("num_actions", num_actions, 2)
        self.param_size = self.num_actions
        self.action_dtype = tf.int32
        self.action_shape: tuple[int, ...] = ()

    def head(self, name: str = "policy_head") -> keras.layers.Layer:
        """A layer mapping features to logits."""
        return keras.layers.Dense(self.num_actions, name=name,
                                  kernel_initializer=keras.initializers.Orthogonal(0.01))

    def sample(self, params: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Draws int32 actions ``(batch,)`` with a stateless seed (Gumbel-max)."""
        u = tf.random.stateless_uniform(tf.shape(params), seed, minval=1e-12, maxval=1.0)
        return tf.argmax(params - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)

    def mode(self, params: tf.Tensor) -> tf.Tensor:
        """The most likely actions."""
        return tf.argmax(params, axis=-1, output_type=tf.int32)

    def log_prob(self, params: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """Log-probabilities of `actions` (shape ``params.shape[:-1]``)."""
        one_hot = tf.one_hot(tf.cast(actions, tf.int32), self.num_actions, dtype=params.dtype)
        return tf.reduce_sum(one_hot * tf.nn.log_softmax(params), axis=-1)

    def entropy(self, params: tf.Tensor) -> tf.Tensor:
        log_p = tf.nn.log_softmax(params)
        return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)

    def kl(self, params_p: tf.Tensor, params_q: tf.Tensor) -> tf.Tensor:
        """``KL(p || q)`` row by row."""
        log_p = tf.nn.log_softmax(params_p)
        log_q = tf.nn.log_softmax(params_q)
        return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)

    def sample_numpy(self, params: np.ndarray, rng: np.random.Generator,
                     deterministic: bool = False) -> np.ndarray:
        """Draws actions on the host with a numpy generator (evaluation agents)."""
        if deterministic:
            return np.argmax(params, axis=-1).astype(np.int32)
        return np.argmax(params + rng.gumbel(size=params.shape), axis=-1).astype(np.int32)

    def get_config(self) -> dict:
        return {"name": "categorical", "num_actions": self.num_actions}


class DiagonalGaussian:
    """Gaussian with diagonal covariance; parameters ``concat(mean, log_std)``.

    Args:
        action_size: int >= 1, the dimension of an action.

    Raises:
        ValueError: if `action_size` is not a positive integer.
    """

    discrete = False

    def __init__(self, action_size: int) -> None:
        self.action_size = check_int("action_size", action_size, 1)
        self.param_size = 2 * self.action_size
        self.action_dtype = tf.float32
        self.action_shape = (self.action_size,)

    def head(self, initial_std: float = 1.0, name: str = "policy_head", *,
             mean_activation: str | None = None) -> keras.layers.Layer:
        """A layer mapping features to ``concat(mean, log_std)`` (state-independent std)."""
        return GaussianHead(self.action_size, initial_std=initial_std,
                            mean_activation=mean_activation, name=name)

    def split(self, params: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(mean, log_std)``."""
        return params[..., :self.action_size], params[..., self.action_size:]

    def sample(self, params: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        mean, log_std = self.split(params)
        return mean + tf.exp(log_std) * tf.random.stateless_normal(tf.shape(mean), seed,
                                                                    dtype=mean.dtype)

    def mode(self, params: tf.Tensor) -> tf.Tensor:
        return self.split(params)[0]

    def log_prob(self, params: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        mean, log_std = self.split(params)
        z = (tf.cast(actions, mean.dtype) - mean) * tf.exp(-log_std)
        return -tf.reduce_sum(0.5 * z * z + log_std + 0.5 * math.log(2 * math.pi), axis=-1)

    def entropy(self, params: tf.Tensor) -> tf.Tensor:
        _, log_std = self.split(params)
        return tf.reduce_sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)

    def kl(self, params_p: tf.Tensor, params_q: tf.Tensor) -> tf.Tensor:
        """``KL(p || q)`` row by row."""
        mean_p, log_std_p = self.split(params_p)
        mean_q, log_std_q = self.split(params_q)
        var_ratio = tf.exp(2.0 * (log_std_p - log_std_q))
        diff = (mean_p - mean_q) * tf.exp(-log_std_q)
        return tf.reduce_sum(0.5 * (var_ratio + diff * diff - 1.0) - (log_std_p - log_std_q),
                             axis=-1)

    def sample_numpy(self, params: np.ndarray, rng: np.random.Generator,
                     deterministic: bool = False) -> np.ndarray:
        mean, log_std = params[..., :self.action_size], params[..., self.action_size:]
        if deterministic:
            return mean.astype(np.float32)
        return (mean + np.exp(log_std) * rng.standard_normal(mean.shape)).astype(np.float32)

    def get_config(self) -> dict:
        return {"name": "diagonal_gaussian", "action_size": self.action_size}


Distribution = Categorical | DiagonalGaussian


def get(config: dict | Distribution) -> Distribution:
    """A distribution from an instance or its ``get_config()`` dict.

    Raises:
        ValueError: on an unknown name.
    """
    if isinstance(config, (Categorical, DiagonalGaussian)):
        return config
    kinds = {"categorical": Categorical, "diagonal_gaussian": DiagonalGaussian}
    config = dict(config)
    name = config.pop("name", None)
    if name not in kinds:
        raise ValueError(f"`name` of a distribution config must be one of {sorted(kinds)}. "
                         f"Received: name={name!r}")
    return kinds[name](**config)


@keras.saving.register_keras_serializable(package="keras_meta")
class GaussianHead(keras.layers.Layer):
    """``concat(Dense(action_size)(x), log_std)``: a Gaussian policy's parameters.

    The log standard deviation is a trainable vector, independent of the input (as in
    the MAML and RL^2 papers' Gaussian policies), broadcast over the batch.

    Args:
        action_size: int >= 1.
        initial_std: float > 0, the initial standard deviation.
        mean_activation: activation of the mean (None: linear, as in the papers; "tanh"
            bounds it to [-1, 1], the range of actions normalised as rllab's ``normalize``
            does, so that the mean cannot drift far past a clipped action range).
    """

    def __init__(self, action_size: int, initial_std: float = 1.0,
                 mean_activation: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not initial_std > 0:
            raise ValueError(f"`initial_std` must be positive. Received: initial_std={initial_std}")
        self.action_size = int(action_size)
        self.initial_std = float(initial_std)
        self.mean_activation = mean_activation
        self.mean = keras.layers.Dense(self.action_size, activation=mean_activation, name="mean")

    def build(self, input_shape) -> None:
        self.mean.build(input_shape)
        self.log_std = self.add_weight(
            shape=(self.action_size,), name="log_std",
            initializer=keras.initializers.Constant(math.log(self.initial_std)))
        self.built = True

    def call(self, x):
        mean = self.mean(x)
        log_std = keras.ops.broadcast_to(keras.ops.cast(self.log_std, mean.dtype),
                                         keras.ops.shape(mean))
        return keras.ops.concatenate([mean, log_std], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * self.action_size,)

    def get_config(self) -> dict:
        return {**super().get_config(), "action_size": self.action_size,
                "initial_std": self.initial_std, "mean_activation": self.mean_activation}
