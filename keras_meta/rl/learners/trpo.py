"""Trust-region policy optimisation pieces: conjugate gradient and the constrained step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import tensorflow as tf


def flatten(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Concatenates tensors into one vector."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(vector: tf.Tensor, like: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """Splits a vector into tensors shaped like `like` (the inverse of `flatten`)."""
    parts = tf.split(vector, [t.shape.num_elements() for t in like])
    return [tf.reshape(p, t.shape) for p, t in zip(parts, like)]


def conjugate_gradient(matvec: Callable[[tf.Tensor], tf.Tensor], b: tf.Tensor,
                       iterations: int = 10, residual_tol: float = 1e-10) -> tf.Tensor:
    """Approximately solves ``A x = b`` for symmetric positive-definite ``A`` given ``A v``.

    Args:
        matvec: ``v -> A v`` on vectors.
        b: the right-hand side vector.
        iterations: int >= 1, at most this many iterations (a `tf.while_loop`).
        residual_tol: stop once the squared residual norm is below it.

    Returns:
        ``x``, the same shape as `b`.
    """
    x = tf.zeros_like(b)
    r = b
    p = b
    rr = tf.reduce_sum(r * r)

    def body(i, x, r, p, rr):
        ap = matvec(p)
        alpha = rr / (tf.reduce_sum(p * ap) + 1e-12)
        x = x + alpha * p
        r = r - alpha * ap
        new_rr = tf.reduce_sum(r * r)
        p = r + (new_rr / (rr + 1e-20)) * p
        return i + 1, x, r, p, new_rr

    _, x, _, _, _ = tf.while_loop(
        lambda i, x, r, p, rr: tf.logical_and(i < iterations, rr > residual_tol), body,
        (tf.constant(0), x, r, p, rr), maximum_iterations=iterations)
    return x


class TrustRegionStep(NamedTuple):
    """The outcome of `trust_region_step`.

    Attributes:
        params: the accepted parameters (the initial ones if no step was accepted).
        loss: the loss at the accepted parameters.
        kl: the KL divergence at the accepted parameters.
        accepted: bool scalar, whether a step was accepted.
    """

    params: list[tf.Tensor]
    loss: tf.Tensor
    kl: tf.Tensor
    accepted: tf.Tensor


def trust_region_step(loss_and_kl: Callable[[list[tf.Tensor]], tuple[tf.Tensor, tf.Tensor]],
                      params: Sequence[tf.Tensor], *, max_kl: float = 0.01,
                      cg_iterations: int = 10, cg_damping: float = 1e-5,
                      line_search_steps: int = 15, line_search_decay: float = 0.5,
                      fisher_kl: Callable[[list[tf.Tensor]], tf.Tensor] | None = None
                      ) -> TrustRegionStep:
    """One TRPO step: natural gradient by conjugate gradient, then a backtracking search.

    Minimises ``loss(params)`` subject to ``kl(params) <= max_kl``, where ``kl`` is the
    divergence from the behaviour policy (0, with zero gradient, at `params`). The
    Fisher-vector products are Hessian-vector products of ``kl`` by double
    differentiation, so ``loss_and_kl`` may itself differentiate (MAML's inner loop).

    Args:
        loss_and_kl: ``params -> (loss, kl)``, differentiable in `params`.
        params: the current parameters (tensors).
        max_kl: float > 0, the trust-region size.
        cg_iterations: int >= 1.
        cg_damping: float >= 0, added to the Fisher matrix's diagonal.
        line_search_steps: int >= 1, step fractions tried: ``decay^0, decay^1, ...``.
        line_search_decay: float in (0, 1).
        fisher_kl: ``params -> kl`` for the Fisher-vector products only (e.g. the KL on a
            subsample of the data, which is where TRPO spends its time); by default the
            ``kl`` of `loss_and_kl`.

    Returns:
        A `TrustRegionStep`.

    References:
        Schulman, Levine, Moritz, Jordan, Abbeel. Trust Region Policy Optimization.
        ICML 2015.
    """
    params = [tf.convert_to_tensor(p) for p in params]
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss0, _ = loss_and_kl(params)
    grads = tape.gradient(loss0, params)
    grads = [tf.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
    g = flatten(grads)

    def fisher_vector_product(v):
        with tf.GradientTape() as outer:
            outer.watch(params)
            with tf.GradientTape() as inner:
                inner.watch(params)
                kl = loss_and_kl(params)[1] if fisher_kl is None else fisher_kl(params)
            kl_grads = inner.gradient(kl, params)
            kl_grads = [tf.zeros_like(p) if k is None else k for k, p in zip(kl_grads, params)]
            gv = tf.reduce_sum(flatten(kl_grads) * tf.stop_gradient(v))
        hv = outer.gradient(gv, params)
        hv = [tf.zeros_like(p) if h is None else h for h, p in zip(hv, params)]
        return flatten(hv) + cg_damping * v

    direction = conjugate_gradient(fisher_vector_product, -g, cg_iterations)
    # d^T A d = d^T (-g): conjugate gradient's residual is orthogonal to the Krylov space its
    # iterate lies in, even when it stops short. This saves one more Fisher-vector product, a
    # double differentiation through `loss_and_kl` (MAML's whole inner loop) that dominates the
    # tracing and the running time of a step.
    curvature = -tf.reduce_sum(direction * g)
    scale = tf.sqrt(2.0 * max_kl / tf.maximum(curvature, 1e-12))
    full_step = unflatten(scale * direction, params)

    def candidate(j):
        fraction = tf.pow(tf.constant(line_search_decay, params[0].dtype),
                          tf.cast(j, params[0].dtype))
        return [p + fraction * s for p, s in zip(params, full_step)]

    def body(j, done, best, loss, kl):
        trial = candidate(j)
        trial_loss, trial_kl = loss_and_kl(trial)
        ok = tf.logical_and(trial_loss < loss0, trial_kl <= max_kl)
        ok = tf.logical_and(ok, tf.logical_and(tf.math.is_finite(trial_loss),
                                               tf.math.is_finite(trial_kl)))
        best = [tf.where(ok, t, b) for t, b in zip(trial, best)]
        return (j + 1, ok, best, tf.where(ok, trial_loss, loss), tf.where(ok, trial_kl, kl))

    _, accepted, best, loss, kl = tf.while_loop(
        lambda j, done, *_: tf.logical_and(j < line_search_steps, tf.logical_not(done)), body,
        (tf.constant(0), tf.constant(False), params, loss0, tf.zeros_like(loss0)),
        maximum_iterations=line_search_steps)
    return TrustRegionStep(best, loss, kl, accepted)
