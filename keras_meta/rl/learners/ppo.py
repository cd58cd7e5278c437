"""The clipped surrogate objective of proximal policy optimization (PPO)."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from keras_meta.rl.learners.returns import masked_mean


class SurrogateTerms(NamedTuple):
    """The PPO policy loss and its diagnostics.

    Attributes:
        loss: scalar, minus the clipped surrogate objective.
        clip_fraction: scalar, fraction of (masked) steps whose ratio was clipped.
        approx_kl: scalar, ``mean(old_log_prob - log_prob)``, an estimate of
            ``KL(old || new)``.
    """

    loss: tf.Tensor
    clip_fraction: tf.Tensor
    approx_kl: tf.Tensor


def clipped_surrogate(log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor,
                      clip_ratio: float, mask: tf.Tensor | None = None,
                      axis=None) -> SurrogateTerms:
    """Minus PPO's clipped surrogate ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)``.

    Args:
        log_probs: float, log-probabilities of the actions under the policy being trained.
        old_log_probs: float, the same under the behaviour policy (no gradient).
        advantages: float, the advantage estimates (no gradient).
        clip_ratio: float > 0, ``eps``.
        mask: optional float, 1 where a step counts.
        axis: axes to average over (all by default); the terms keep the other axes.

    Returns:
        `SurrogateTerms`.

    References:
        Schulman, Wolski, Dhariwal, Radford, Klimov. Proximal Policy Optimization
        Algorithms. 2017.
    """
    log_ratio = log_probs - tf.stop_gradient(old_log_probs)
    ratio = tf.exp(log_ratio)
    advantages = tf.stop_gradient(advantages)
    clipped = tf.clip_by_value(ratio, 1.0 - clip_ratio, 1.0 + clip_ratio)
    objective = tf.minimum(ratio * advantages, clipped * advantages)
    was_clipped = tf.cast(tf.abs(ratio - 1.0) > clip_ratio, objective.dtype)
    return SurrogateTerms(-masked_mean(objective, mask, axis),
                          masked_mean(was_clipped, mask, axis),
                          masked_mean(-log_ratio, mask, axis))
