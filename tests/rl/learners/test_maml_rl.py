"""MAML-RL: the inner policy-gradient step, meta-gradients, the TRPO step, the evaluation
agent, and one adaptation step improving the return on held-out 2D navigation goals."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta.rl import (
    BernoulliBanditRL2,
    Navigation2DMAML,
    NavigationTasks,
    evaluate,
    sample_navigation_tasks,
)
from keras_meta.rl.learners import MAMLRL, MAMLRLAgent, mlp_policy, rollout, task_batch


def _small(**kwargs):
    config = {"hidden_units": (8,), "trajectories_per_task": 6, "update_rule": 0.5}
    return MAMLRL(Navigation2DMAML(max_steps=12), **{**config, **kwargs})


def _data(maml, tasks=2, seed=(1, 2), steps=1):
    goals = sample_navigation_tasks(tasks, split="train", seed=4)
    batch = task_batch(maml.dynamics, goals, maml.trajectories_per_task)
    _, data, _ = tf.function(maml.sample_and_adapt)(batch, tf.constant(seed), steps)
    return data


def _task(data, i):
    return tf.nest.map_structure(lambda x: x[i], data)


def test_inner_step_is_the_policy_gradient_step():
    """Linear Gaussian policy: the adapted weights equal a hand-computed PG step."""
    maml = _small(hidden_units=(), update_rule=0.3)
    inner = _task(_data(maml)[0], 0)
    theta = maml.functional.trainable_values()
    adapted = {v.path: a.numpy() for v, a in zip(maml.policy.trainable_variables,
                                                  maml.adapt_task(theta, [inner]))}
    values = {v.path: v.numpy().astype(np.float64) for v in maml.policy.trainable_variables}
    kernel, bias, log_std = (values[next(p for p in values if p.endswith(s))]
                             for s in ("mean/kernel", "mean/bias", "log_std"))
    obs = inner.observations.numpy().reshape(-1, 2).astype(np.float64)
    actions = inner.actions.numpy().reshape(-1, 2)
    adv, mask = inner.advantages.numpy().reshape(-1), inner.mask.numpy().reshape(-1)
    std = np.exp(log_std)
    z = (actions - (obs @ kernel + bias)) / std
    weight = (mask * adv / mask.sum())[:, None]  # L = -sum(m A log p) / sum(m)
    expected = {"mean/kernel": kernel + 0.3 * obs.T @ (weight * z / std),
                "mean/bias": bias + 0.3 * np.sum(weight * z / std, 0),
                "log_std": log_std + 0.3 * np.sum(weight * (z * z - 1.0), 0)}
    for suffix, value in expected.items():
        path = next(p for p in adapted if p.endswith(suffix))
        np.testing.assert_allclose(adapted[path], value, rtol=2e-4, atol=1e-6, err_msg=suffix)
    assert np.abs(adapted[path] - values[path]).max() > 1e-3  # the step is not negligible


def _meta_gradient(maml, params, inner, outer):
    params = [tf.convert_to_tensor(p) for p in params]
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = maml.outer_terms(params, inner, outer)[1]  # the KL: smooth everywhere
    return [g.numpy() for g in tape.gradient(loss, params)]


def test_first_and_second_order_meta_gradients():
    # tanh, not ReLU: the inner gradient of a ReLU net jumps where a unit switches, and
    # finite differences of the meta-objective would cross those jumps.
    env = Navigation2DMAML(max_steps=12)
    second = _small(policy=mlp_policy(env, (8,), activation="tanh"))
    first = _small(policy=mlp_policy(env, (8,), activation="tanh"), first_order=True)
    for a, b in zip(first.policy.trainable_variables, second.policy.trainable_variables):
        a.assign(b)
    data = _data(second, tasks=1)
    inner, outer = data[:-1], data[-1]
    # The outer data comes from the adapted policy: perturb it so the KL is not at its minimum.
    outer = outer._replace(params=outer.params + 0.2)
    theta = second.functional.trainable_values()
    adapted = second.adapt_task(theta, [_task(d, 0) for d in inner])
    at_adapted = _meta_gradient(first, adapted, [], outer)  # no inner step
    first_order = _meta_gradient(first, theta, inner, outer)
    second_order = _meta_gradient(second, theta, inner, outer)
    for f, a in zip(first_order, at_adapted):  # FOMAML: the gradient at the adapted weights
        np.testing.assert_allclose(f, a, rtol=1e-4, atol=1e-6)
    difference = max(np.abs(s - f).max() for s, f in zip(second_order, first_order))
    assert difference > 1e-3  # the second-order terms matter

    # The second-order gradient is the derivative of the meta-objective: finite differences.
    rng = np.random.default_rng(0)
    direction = [rng.normal(size=t.shape).astype(np.float32) for t in theta]
    eps = 1e-3

    def objective(params):
        return float(second.outer_terms(params, inner, outer)[1])

    plus = objective([t + eps * d for t, d in zip(theta, direction)])
    minus = objective([t - eps * d for t, d in zip(theta, direction)])
    analytic = sum(float(np.sum(g * d)) for g, d in zip(second_order, direction))
    np.testing.assert_allclose((plus - minus) / (2 * eps), analytic, rtol=0.01)


def test_trpo_step_stays_in_the_trust_region_and_improves_the_surrogate():
    maml = _small(outer_step="trpo", max_kl=0.02, cg_iterations=5)
    maml.compile()
    before = [v.numpy() for v in maml.policy.trainable_variables]
    logs = maml.fit(maml.dataset(3), steps_per_epoch=1, verbose=0).history
    # Normalised advantages: the surrogate is 0 at the behaviour policy.
    assert logs["outer_loss"][0] < -1e-4
    assert 0.0 < logs["kl"][0] <= 0.02 + 1e-6
    assert logs["accepted"][0] == 1.0
    # The behaviour policy is the initial Gaussian (std 1 in 2 dimensions).
    np.testing.assert_allclose(logs["entropy_before"][0], np.log(2 * np.pi * np.e), rtol=1e-5)
    assert np.isfinite(logs["entropy_after"][0])
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before,
                                                             maml.policy.trainable_variables))
    assert logs["env_steps"][0] == 2 * 3 * 6 * 12


def test_entropy_after_follows_the_inner_step_of_the_log_std():
    # The Gaussian's log-std is state-independent: the entropy on the post-update
    # trajectories is the adapted policy's: it moves with the inner step's size.
    def change(step_size):
        maml = _small(update_rule=step_size)
        maml.compile()
        logs = maml.evaluate(maml.dataset(2), steps=1, verbose=0, return_dict=True)
        return abs(logs["entropy_after"] - logs["entropy_before"])

    assert change(1e-6) < 1e-4
    assert change(0.5) > 1e-2


def test_several_inner_steps_sample_fresh_trajectories_each_step():
    maml = _small(inner_steps=2, first_order=True)
    maml.compile(keras.optimizers.Adam(1e-3))
    logs = maml.fit(maml.dataset(2), steps_per_epoch=1, verbose=0).history
    assert logs["env_steps"][0] == 3 * 2 * 6 * 12  # before, after step 1, after step 2
    assert np.isfinite(logs["outer_loss"][0]) and np.isfinite(logs["return_after"][0])
    scores = maml.evaluate_adaptation(sample_navigation_tasks(3, split="test"), steps=2)
    assert len(scores) == 3 and all(len(s.scores) == 3 for s in scores)
    again = maml.evaluate_adaptation(sample_navigation_tasks(3, split="test"), steps=2)
    np.testing.assert_array_equal(again[2].scores, scores[2].scores)  # seeded


def test_evaluate_adaptation_in_blocks_scores_each_block_as_its_own_call():
    maml = _small()
    goals = sample_navigation_tasks(5, split="test")
    blocks = maml.evaluate_adaptation(goals, steps=1, seed=3, batch_size=2)
    parts = [maml.evaluate_adaptation(sample_navigation_tasks(n, split="test", start=i),
                                      steps=1, seed=3) for i, n in ((0, 2), (2, 2), (4, 1))]
    for step in range(2):
        np.testing.assert_allclose(
            blocks[step].scores, np.concatenate([p[step].scores for p in parts]), rtol=1e-6)
    whole = maml.evaluate_adaptation(goals, steps=1, seed=3, batch_size=5)
    np.testing.assert_array_equal(
        whole[1].scores, maml.evaluate_adaptation(goals, steps=1, seed=3)[1].scores)
    with pytest.raises(ValueError, match="`batch_size`"):
        maml.evaluate_adaptation(goals, steps=1, batch_size=0)


def test_agent_replays_the_in_graph_policy_in_the_numpy_environment():
    maml = _small()
    goals = sample_navigation_tasks(5, split="test")
    env = Navigation2DMAML(max_steps=12, batch_size=5)
    theta = maml.functional.trainable_values()

    def policy_fn(observation, carry):
        params = maml.apply_policy(theta, observation["observation"])
        return params, tf.zeros([5]), carry

    trials = tf.function(rollout)(maml.dynamics, policy_fn, task_batch(maml.dynamics, goals),
                                  tf.zeros([5, 0]), tf.constant([0, 0]), deterministic=True)
    score = evaluate(env, MAMLRLAgent(maml, deterministic=True), goals)
    np.testing.assert_allclose(score.scores, trials.returns().numpy(), rtol=1e-6)

    adapted = maml.adapt(goals)
    assert [a.shape for a in adapted] == [(5,) + tuple(v.shape)
                                          for v in maml.policy.trainable_variables]
    assert np.isfinite(evaluate(env, MAMLRLAgent(maml, adapted), goals).mean)
    with pytest.raises(ValueError, match=r"The trial has 2 rows but `params` holds 5 adapted"):
        evaluate(Navigation2DMAML(max_steps=12, batch_size=2), MAMLRLAgent(maml, adapted),
                 NavigationTasks(goals.goals[:2]))


def _flat(tensors):
    return np.concatenate([np.reshape(t, -1) for t in tensors])


def test_lvc_objective_adds_the_sampling_curvature_to_the_inner_hessian():
    """ProMP's LVC: the same inner step as MAML's, Hessian + mean(A grad log pi grad log pi^T)."""
    env = Navigation2DMAML(max_steps=12)
    pg = _small(policy=mlp_policy(env, (4,), activation="tanh"))
    lvc = _small(policy=mlp_policy(env, (4,), activation="tanh"), inner_objective="lvc")
    for a, b in zip(lvc.policy.trainable_variables, pg.policy.trainable_variables):
        a.assign(b)
    inner = _task(_data(pg, tasks=1)[0], 0)
    theta = [tf.convert_to_tensor(t) for t in pg.functional.trainable_values()]
    for a, b in zip(pg.adapt_task(theta, [inner]), lvc.adapt_task(theta, [inner])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)

    v = [tf.random.stateless_normal(t.shape, (3, 4)) for t in theta]

    def hessian_vector(maml):
        with tf.GradientTape() as outer:
            outer.watch(theta)
            with tf.GradientTape() as tape:
                tape.watch(theta)
                loss = maml.inner_loss(theta, inner)
            gv = tf.add_n([tf.reduce_sum(g * d) for g, d in zip(tape.gradient(loss, theta), v)])
        return _flat([h.numpy() for h in outer.gradient(gv, theta)])

    with tf.GradientTape() as tape:  # per-sample score functions, [N, num_params]
        tape.watch(theta)
        params = pg.apply_policy(theta, tf.reshape(inner.observations, [-1, 2]))
        log_probs = pg.dynamics.distribution.log_prob(params, tf.reshape(inner.actions, [-1, 2]))
    scores = np.concatenate([np.reshape(j.numpy(), (j.shape[0], -1))
                             for j in tape.jacobian(log_probs, theta)], axis=1)
    weights = (inner.advantages.numpy().reshape(-1) * inner.mask.numpy().reshape(-1)
               / inner.mask.numpy().sum())
    curvature = -(weights[:, None] * scores).T @ (scores @ _flat([d.numpy() for d in v]))
    difference = hessian_vector(lvc) - hessian_vector(pg)
    np.testing.assert_allclose(difference, curvature, rtol=1e-3, atol=1e-5)
    assert np.abs(curvature).max() > 1e-3  # the added term is not negligible here


def test_errors_and_config():
    env = Navigation2DMAML()
    for kwargs, match in [
        ({"outer_step": "sgd"}, r"`outer_step` must be one of \('ppo', 'trpo'\). Received: "
                                r"outer_step='sgd'"),
        ({"inner_steps": 0}, r"`inner_steps` must be an integer >= 1. Received: inner_steps=0"),
        ({"max_kl": -1}, r"`max_kl` must be a number > 0.0. Received: max_kl=-1"),
        ({"policy": keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])},
         r"`policy` must map \[B, 2\] observations to \[B, 4\] distribution parameters. "
         r"Received: output shape \(1, 3\)"),
        ({"inner_objective": "dice"}, r"`inner_objective` must be one of \('policy_gradient', "
                                      r"'lvc'\). Received: inner_objective='dice'"),
        ({"outer_objective": "best"}, r"`outer_objective` must be one of \('final', "
                                      r"'all_steps'\). Received: outer_objective='best'"),
        ({"outer_step": "trpo", "update_rule": {"name": "meta_sgd"}},
         r"`outer_step='trpo'` trains the policy only"),
    ]:
        with pytest.raises(ValueError, match=match):
            MAMLRL(env, hidden_units=(4,), **kwargs)
    maml = MAMLRL(env, hidden_units=(4,), inner_steps=2, first_order=True,
                  inner_objective="lvc", outer_objective="all_steps")
    assert MAMLRL.from_config(maml.get_config()).get_config() == maml.get_config()


def test_a_tanh_mean_bounds_the_gaussian_policy_mean_only():
    env = Navigation2DMAML(action_scale=0.1)
    policy = mlp_policy(env, (8,), mean_activation="tanh", initial_std=0.5)
    far = tf.constant([[50.0, -50.0], [-80.0, 20.0], [0.3, 0.1]])
    for weight in policy.trainable_weights:  # large weights: a linear mean would be huge
        if "log_std" not in weight.path:
            weight.assign(10.0 * tf.ones_like(weight))
    params = policy(far).numpy()
    assert np.all(np.abs(params[:, :2]) <= 1.0) and np.abs(params[:, :2]).max() > 0.99
    np.testing.assert_allclose(params[:, 2:], np.log(0.5), rtol=1e-6)  # the std is untouched
    head = policy.get_layer("policy_head")
    assert type(head).from_config(head.get_config()).mean_activation == "tanh"
    maml = MAMLRL(env, policy, trajectories_per_task=4)  # trains like the default policy
    maml.compile(keras.optimizers.Adam(1e-3))
    logs = maml.fit(maml.dataset(2), steps_per_epoch=1, verbose=0).history
    assert np.isfinite(logs["outer_loss"][0])
    with pytest.raises(ValueError, match="`mean_activation` applies to Gaussian policies only"):
        mlp_policy(BernoulliBanditRL2(5, 10), (4,), mean_activation="tanh")


def test_one_adaptation_step_improves_the_return_on_held_out_goals():
    """30 meta-iterations (20 goals x 20 trajectories, PPO outer step), 40 test goals."""
    maml = MAMLRL(Navigation2DMAML(), hidden_units=(64, 64), update_rule=0.1,
                  trajectories_per_task=20)
    maml.compile(keras.optimizers.Adam(3e-3))
    maml.fit(maml.dataset(20, seed=0), steps_per_epoch=30, verbose=0)
    goals = sample_navigation_tasks(40, split="test")
    before, after = maml.evaluate_adaptation(goals, steps=1)
    gain = after.scores - before.scores
    stderr = gain.std(ddof=1) / np.sqrt(len(gain))
    assert gain.mean() > 10.0 and gain.mean() > 5 * stderr, (before, after)
    print(f"0 steps {before}, 1 step {after}")


def test_a_step_size_schedule_gives_each_adaptation_step_its_own_size():
    """The MAML paper's evaluation: step 0.1 first, 0.05 after (here 0.5, then 0.05)."""
    maml = _small(update_rule=[0.5, 0.05])
    data = _data(maml)
    inner = [_task(data[0], 0), _task(data[1], 0)]
    theta = [tf.convert_to_tensor(v) for v in maml.functional.trainable_values()]
    adapted = maml.adapt_task(theta, inner)

    params = theta
    for rate, task_data in zip([0.5, 0.05], inner):
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = maml.inner_loss(params, task_data)
        grads = tape.gradient(loss, params)
        params = [p - rate * (tf.zeros_like(p) if g is None else g)
                  for p, g in zip(params, grads)]
    for a, p in zip(adapted, params):
        np.testing.assert_allclose(a.numpy(), p.numpy(), rtol=1e-5, atol=1e-6)
    assert maml.get_config()["update_rule"] == [0.5, 0.05]
    assert MAMLRL.from_config(maml.get_config()).get_config() == maml.get_config()


def test_all_steps_objective_averages_the_surrogate_of_every_adapted_policy():
    """MAML++'s multi-step loss: the mean of the final objective after 1 and after 2 steps."""
    every = _small(inner_steps=2, outer_objective="all_steps", outer_step="trpo")
    final = _small(inner_steps=2, outer_step="trpo")
    for a, b in zip(final.policy.trainable_variables, every.policy.trainable_variables):
        a.assign(b)
    data = _data(every, steps=2)
    # Off the behaviour policies, so that the terms and their gradients are not all zero.
    data = [d._replace(log_probs=d.log_probs - 0.1, params=d.params + 0.2) for d in data]
    theta = [tf.convert_to_tensor(v) for v in every.functional.trainable_values()]

    def terms_and_grads(maml, inner, outer):
        with tf.GradientTape() as tape:
            tape.watch(theta)
            loss, kl, _ = maml.outer_terms(theta, inner, outer)
            total = loss + kl
        return np.array([loss, kl]), [g.numpy() for g in tape.gradient(total, theta)]

    got, got_grads = terms_and_grads(every, data[:2], data[2])
    after_one, grads_one = terms_and_grads(final, data[:1], data[1])
    after_two, grads_two = terms_and_grads(final, data[:2], data[2])
    np.testing.assert_allclose(got, (after_one + after_two) / 2, rtol=1e-5, atol=1e-7)
    assert np.abs(after_one - after_two).max() > 1e-4  # the two steps do differ
    for g, a, b in zip(got_grads, grads_one, grads_two):
        np.testing.assert_allclose(g, (a + b) / 2, rtol=1e-4, atol=1e-6)
