"""Returns, generalized advantage estimation and the linear feature baseline (time-major)."""

from __future__ import annotations

import tensorflow as tf


def discounted_returns(rewards: tf.Tensor, discounts: tf.Tensor) -> tf.Tensor:
    """Reward-to-go ``G_t = r_t + d_t G_{t+1}`` with ``G_T = 0``.

    Args:
        rewards: float ``[T, ...]``.
        discounts: float ``[T, ...]``, ``d_t`` multiplies the return after step ``t``
            (``gamma``, or 0 where the episode ends at ``t``).

    Returns:
        float ``[T, ...]``.
    """
    return tf.scan(lambda g, x: x[0] + x[1] * g, (rewards, discounts),
                   initializer=tf.zeros_like(rewards[0]), reverse=True)


def generalized_advantages(rewards: tf.Tensor, values: tf.Tensor, discounts: tf.Tensor,
                           lambda_: float, bootstrap_value: tf.Tensor | None = None
                           ) -> tuple[tf.Tensor, tf.Tensor]:
    """Generalized advantage estimation (GAE).

    ``delta_t = r_t + d_t V_{t+1} - V_t``, ``A_t = delta_t + d_t lambda A_{t+1}``; the value
    after the last step is `bootstrap_value` (0 by default: the trial ends).

    Args:
        rewards: float ``[T, B]``.
        values: float ``[T, B]``, ``V_t`` of the state the action at ``t`` was taken in.
        discounts: float ``[T, B]``, ``gamma`` (0 where an episode ends after step ``t``).
        lambda_: float in [0, 1].
        bootstrap_value: optional float ``[B]``.

    Returns:
        ``(advantages, value_targets)``, both ``[T, B]``, ``value_targets = A + V``.

    References:
        Schulman, Moritz, Levine, Jordan, Abbeel. High-Dimensional Continuous Control Using
        Generalized Advantage Estimation. ICLR 2016.
    """
    if bootstrap_value is None:
        bootstrap_value = tf.zeros_like(values[0])
    next_values = tf.concat([values[1:], bootstrap_value[None]], axis=0)
    deltas = rewards + discounts * next_values - values
    advantages = tf.scan(lambda a, x: x[0] + x[1] * lambda_ * a, (deltas, discounts),
                         initializer=tf.zeros_like(deltas[0]), reverse=True)
    return advantages, advantages + values


def masked_mean(x: tf.Tensor, mask: tf.Tensor | None = None, axis=None) -> tf.Tensor:
    """Mean of `x` over the entries where `mask` is 1 (all entries when `mask` is None)."""
    if mask is None:
        return tf.reduce_mean(x, axis=axis)
    mask = tf.cast(mask, x.dtype)
    return tf.reduce_sum(x * mask, axis=axis) / tf.maximum(tf.reduce_sum(mask, axis=axis), 1.0)


def normalize(x: tf.Tensor, mask: tf.Tensor | None = None, axis=None,
              epsilon: float = 1e-8) -> tf.Tensor:
    """``(x - mean) / (std + epsilon)`` over the masked entries (reduced over `axis`)."""
    mean = masked_mean(x, mask, axis)
    if axis is not None:
        mean = tf.expand_dims(mean, axis) if isinstance(axis, int) else tf.reshape(
            mean, _kept_shape(x, axis))
    centred = x - mean
    var = masked_mean(centred * centred, mask, axis)
    if axis is not None:
        var = tf.expand_dims(var, axis) if isinstance(axis, int) else tf.reshape(
            var, _kept_shape(x, axis))
    return centred / (tf.sqrt(var) + epsilon)


def _kept_shape(x: tf.Tensor, axis) -> tf.Tensor:
    axes = {a % len(x.shape) for a in axis}
    return tf.stack([1 if i in axes else tf.shape(x)[i] for i in range(len(x.shape))])


def linear_feature_baseline(observations: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor,
                            reg_coeff: float = 1e-5, time_scale: float = 100.0,
                            time_steps: tf.Tensor | None = None) -> tf.Tensor:
    """The linear feature baseline of rllab (used by MAML-RL), fitted per task.

    Features of step ``t``: ``[o, o^2, a, a^2, a^3, 1]`` with ``o`` the observation clipped
    to [-10, 10] and ``a = t / time_scale``; the weights are the ridge-regression fit of
    the returns of each task's trajectories (masked steps excluded), in float64.

    Args:
        observations: float ``[T, M, K, d]``: ``M`` tasks, ``K`` trajectories each.
        returns: float ``[T, M, K]``, the regression targets.
        mask: float ``[T, M, K]``, 1 on the steps to fit.
        reg_coeff: float > 0, the ridge coefficient.
        time_scale: float, steps per unit of the time features.
        time_steps: optional int ``[T]``, the step index of each time (e.g. the step
            within an inner episode); ``range(T)`` by default.

    Returns:
        float ``[T, M, K]`` baseline values (dtype of `returns`).

    References:
        Duan, Chen, Houthooft, Schulman, Abbeel. Benchmarking Deep Reinforcement Learning
        for Continuous Control. ICML 2016 (rllab's ``LinearFeatureBaseline``).
    """
    o = tf.clip_by_value(tf.cast(observations, tf.float64), -10.0, 10.0)
    shape = tf.shape(returns, out_type=tf.int32)
    if time_steps is None:
        time_steps = tf.range(shape[0])
    t = tf.cast(time_steps, tf.float64) / time_scale
    a = tf.broadcast_to(t[:, None, None, None], tf.concat([shape, [1]], 0))
    features = tf.concat([o, o * o, a, a * a, a * a * a, tf.ones_like(a)], axis=-1)
    m = tf.cast(mask, tf.float64)[..., None]
    x = tf.transpose(features * m, [1, 0, 2, 3])  # [M, T, K, f]
    x = tf.reshape(x, tf.stack([shape[1], -1, tf.shape(features)[-1]]))
    y = tf.reshape(tf.transpose(tf.cast(returns, tf.float64)[..., None] * m, [1, 0, 2, 3]),
                   tf.stack([shape[1], -1, 1]))
    num_features = features.shape[-1]
    gram = tf.matmul(x, x, transpose_a=True) + reg_coeff * tf.eye(num_features, dtype=tf.float64)
    weights = tf.linalg.solve(gram, tf.matmul(x, y, transpose_a=True))  # [M, f, 1]
    baseline = tf.einsum("tmkf,mf->tmk", features, weights[..., 0])
    return tf.cast(baseline, returns.dtype)
