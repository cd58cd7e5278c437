"""Returns, GAE, the linear baseline, PPO's objective, TRPO's step and the distributions."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_meta.rl.learners import distributions, ppo, returns, trpo

RNG = np.random.default_rng(0)


def test_gae_matches_a_reference_loop():
    t, b, gamma, lam = 7, 3, 0.9, 0.8
    rewards, values = RNG.normal(size=(t, b)), RNG.normal(size=(t, b))
    discounts = np.full((t, b), gamma)
    discounts[3, 1] = 0.0  # an episode ends after step 3 in row 1
    discounts[-1] = 0.0
    expected = np.zeros((t, b))
    running = np.zeros(b)
    for i in reversed(range(t)):
        next_value = values[i + 1] if i + 1 < t else 0.0
        delta = rewards[i] + discounts[i] * next_value - values[i]
        running = delta + discounts[i] * lam * running
        expected[i] = running
    adv, targets = returns.generalized_advantages(rewards, values, discounts, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(targets.numpy(), expected + values, rtol=1e-12)
    # lambda = 1 with zero values: the discounted returns.
    adv1, _ = returns.generalized_advantages(rewards, np.zeros((t, b)), discounts, 1.0)
    np.testing.assert_allclose(adv1.numpy(),
                               returns.discounted_returns(rewards, discounts).numpy(), rtol=1e-12)
    assert returns.discounted_returns(rewards, discounts).numpy()[3, 1] == rewards[3, 1]


def test_normalize_uses_only_masked_entries_per_group():
    x = RNG.normal(size=(5, 2, 4)) * 3 + 1
    mask = (RNG.random((5, 2, 4)) < 0.7).astype(np.float64)
    out = returns.normalize(x, mask, axis=(0, 2)).numpy()
    for m in range(2):
        valid = out[:, m][mask[:, m] == 1]
        assert abs(valid.mean()) < 1e-9 and abs(valid.std() - 1) < 1e-6


def test_linear_feature_baseline_is_the_per_task_least_squares_fit():
    t, m, k = 6, 2, 3
    obs = RNG.normal(size=(t, m, k, 2))
    targets = RNG.normal(size=(t, m, k))
    mask = np.ones((t, m, k))
    mask[4:, 1, 0] = 0.0
    out = returns.linear_feature_baseline(obs, targets, mask, reg_coeff=1e-10,
                                         time_scale=5.0).numpy()
    a = (np.arange(t) / 5.0)[:, None, None, None] * np.ones((t, m, k, 1))
    feats = np.concatenate([obs, obs ** 2, a, a ** 2, a ** 3, np.ones_like(a)], -1)
    for task in range(m):
        f, y, w = feats[:, task].reshape(-1, 8), targets[:, task].reshape(-1), mask[:, task]
        coef = np.linalg.lstsq(f[w.reshape(-1) == 1], y[w.reshape(-1) == 1], rcond=None)[0]
        np.testing.assert_allclose(out[:, task].reshape(-1), f @ coef, atol=1e-4)


def test_clipped_surrogate_by_hand():
    new = np.log(np.array([1.5, 0.5, 1.1, 0.7]))
    adv = np.array([1.0, 1.0, -1.0, -2.0])
    mask = np.array([1.0, 1.0, 1.0, 0.0])
    terms = ppo.clipped_surrogate(new, np.zeros(4), adv, 0.2, mask)
    # min(r A, clip(r) A): 1.2, 0.5, -1.1 (the last is masked out)
    np.testing.assert_allclose(terms.loss.numpy(), -(1.2 + 0.5 - 1.1) / 3)
    np.testing.assert_allclose(terms.clip_fraction.numpy(), 2 / 3)
    np.testing.assert_allclose(terms.approx_kl.numpy(), -new[:3].mean())


def test_conjugate_gradient_solves_a_positive_definite_system():
    a = RNG.normal(size=(6, 6))
    a = a @ a.T + np.eye(6)
    b = RNG.normal(size=6)
    x = trpo.conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b),
                                iterations=20)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-6)


def test_trust_region_step_respects_the_kl_bound_and_improves():
    dist = distributions.Categorical(4)
    old = tf.constant([[0.3, -0.2, 0.1, 0.0]], tf.float64)
    advantages = tf.constant([1.0, -1.0, 0.5, -0.5], tf.float64)

    def loss_and_kl(params):  # maximise the expected advantage under the new policy
        probs = tf.nn.softmax(params[0])
        return -tf.reduce_sum(probs * advantages), tf.reduce_mean(dist.kl(old, params[0]))

    step = trpo.trust_region_step(loss_and_kl, [old], max_kl=0.01, cg_damping=1e-8)
    loss0 = float(loss_and_kl([old])[0])
    assert bool(step.accepted) and float(step.loss) < loss0
    assert float(step.kl) <= 0.01 and float(step.kl) > 0.002  # uses the trust region


def test_trust_region_step_sizes_its_step_by_the_fisher_kl():
    """A quadratic problem: with `fisher_kl` four times the KL, the natural-gradient step is
    scaled to half the length, and the line search still checks the real KL."""
    g = tf.constant([1.0, -2.0], tf.float64)
    fisher = tf.constant([[2.0, 0.5], [0.5, 1.0]], tf.float64)
    start = [tf.zeros([2], tf.float64)]

    def loss_and_kl(params):
        x = params[0]
        return tf.reduce_sum(g * x), 0.5 * tf.reduce_sum(x * tf.linalg.matvec(fisher, x))

    full = trpo.trust_region_step(loss_and_kl, start, max_kl=0.01, cg_damping=0.0)
    quarter = trpo.trust_region_step(loss_and_kl, start, max_kl=0.01, cg_damping=0.0,
                                     fisher_kl=lambda params: 4.0 * loss_and_kl(params)[1])
    assert bool(full.accepted) and bool(quarter.accepted)
    np.testing.assert_allclose(float(full.kl), 0.01, rtol=1e-6)  # the exact quadratic
    np.testing.assert_allclose(quarter.params[0].numpy(), 0.5 * full.params[0].numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(float(quarter.kl), 0.0025, rtol=1e-6)


def test_an_unconverged_solve_still_steps_to_the_trust_region_boundary():
    """The step is scaled by d^T F d taken as -g^T d, which holds for conjugate gradient's
    iterate even when it stops short of the solution (fewer iterations than parameters)."""
    a = RNG.normal(size=(6, 6))
    fisher = tf.constant(a @ a.T + np.eye(6))
    g = tf.constant(RNG.normal(size=6))

    def loss_and_kl(params):
        x = params[0]
        return tf.reduce_sum(g * x), 0.5 * tf.reduce_sum(x * tf.linalg.matvec(fisher, x))

    step = trpo.trust_region_step(loss_and_kl, [tf.zeros([6], tf.float64)], max_kl=0.01,
                                  cg_iterations=2, cg_damping=0.0)
    natural = np.linalg.solve(fisher.numpy(), -g.numpy())
    assert bool(step.accepted)
    assert abs(np.dot(step.params[0].numpy(), natural)) < 0.999 * np.linalg.norm(
        step.params[0].numpy()) * np.linalg.norm(natural)  # not the converged direction
    np.testing.assert_allclose(float(step.kl), 0.01, rtol=1e-6)


@pytest.mark.parametrize("dist,params,action", [
    (distributions.Categorical(3), [[0.2, -1.0, 0.5]], [2]),
    (distributions.DiagonalGaussian(2), [[0.5, -0.3, math.log(0.7), math.log(1.3)]], [[0.1, 0.2]]),
], ids=["categorical", "gaussian"])
def test_distributions(dist, params, action):
    params = np.array(params)
    other = params * 0.5 + np.linspace(0.1, 0.4, params.shape[-1])
    if dist.discrete:
        p = np.exp(params[0]) / np.exp(params[0]).sum()
        q = np.exp(other[0]) / np.exp(other[0]).sum()
        expected_log_prob = np.log(p[action[0]])
        expected_kl = np.sum(p * np.log(p / q))
        expected_entropy = -np.sum(p * np.log(p))
    else:
        mean, std = params[0, :2], np.exp(params[0, 2:])
        mean_q, std_q = other[0, :2], np.exp(other[0, 2:])
        expected_log_prob = np.sum(-0.5 * ((np.array(action[0]) - mean) / std) ** 2
                                   - np.log(std) - 0.5 * np.log(2 * np.pi))
        expected_kl = np.sum(np.log(std_q / std) + (std ** 2 + (mean - mean_q) ** 2)
                             / (2 * std_q ** 2) - 0.5)
        expected_entropy = np.sum(0.5 * np.log(2 * np.pi * np.e * std ** 2))
    np.testing.assert_allclose(dist.log_prob(params, np.array(action)).numpy(),
                               [expected_log_prob], rtol=1e-9)
    np.testing.assert_allclose(dist.kl(params, other).numpy(), [expected_kl], rtol=1e-9)
    np.testing.assert_allclose(dist.entropy(params).numpy(), [expected_entropy], rtol=1e-9)
    many = np.repeat(params, 20000, 0).astype(np.float32)
    samples = dist.sample(tf.constant(many), tf.constant([3, 4])).numpy()
    host = dist.sample_numpy(many, np.random.default_rng(0))
    for draw in (samples, host):  # both samplers follow the distribution
        log_probs = dist.log_prob(many, draw).numpy()
        entropy = float(dist.entropy(many[:1]).numpy()[0])
        assert abs(-log_probs.mean() - entropy) < 0.03  # E[-log p] is the entropy
    assert distributions.get(dist.get_config()).get_config() == dist.get_config()
