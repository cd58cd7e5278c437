"""RL^2: the recurrent policy, the in-graph training path against the evaluation path,
and learning on k=5, n=10 Bernoulli bandits against the classical baselines."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta.rl import (
    BanditTasks,
    BernoulliBanditRL2,
    GreedyBandit,
    Navigation2DMAML,
    RandomAgent,
    TabularMDPRL2,
    evaluate,
    sample_bandit_tasks,
)
from keras_meta.rl.learners import RL2, RL2Agent, RL2Policy, distributions, task_batch
from keras_meta.rl.learners.rl2 import POLICY_INPUTS


def _sequence(t=6, b=3, obs=1, act=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"observation": rng.normal(size=(t, b, obs)).astype(np.float32),
            "prev_action": np.eye(act, dtype=np.float32)[rng.integers(0, act, (t, b))],
            "prev_reward": rng.random((t, b, 1)).astype(np.float32),
            "done": rng.integers(0, 2, (t, b, 1)).astype(np.float32)}


@pytest.mark.parametrize("dist", [distributions.Categorical(4), distributions.DiagonalGaussian(4)],
                         ids=["categorical", "gaussian"])
def test_unroll_equals_repeated_steps(dist):
    policy = RL2Policy(1, 4, dist, hidden_units=8, initial_std=0.5)
    seq = _sequence()
    params, values, final = policy.unroll(seq)
    state = policy.initial_state(3)
    for t in range(6):
        step_params, step_value, state = policy.step_with_value(
            *(seq[k][t] for k in POLICY_INPUTS), state)
        np.testing.assert_allclose(params[t].numpy(), step_params.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values[t].numpy(), step_value.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.numpy(), state.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(policy.action_params(seq).numpy(), params.numpy(), rtol=1e-6)
    np.testing.assert_allclose(policy.critic_values(seq).numpy(), values.numpy(), rtol=1e-6)
    # The hidden state carries the history: the same last input after another history
    # gives other parameters.
    other = dict(seq, prev_reward=seq["prev_reward"] + 1.0)
    assert not np.allclose(policy.unroll(other)[0][-1].numpy(), params[-1].numpy())
    if not dist.discrete:  # state-independent log std at its initial value
        np.testing.assert_allclose(params[..., 4:].numpy(), np.log(0.5), rtol=1e-6)
    batch_major = {k: np.swapaxes(v, 0, 1) for k, v in seq.items()}
    np.testing.assert_allclose(policy(batch_major).numpy(),
                               np.swapaxes(params.numpy(), 0, 1), rtol=1e-5, atol=1e-6)


def test_agent_in_the_numpy_environment_replays_the_in_graph_trial():
    """Deterministic bandits and policy: both paths must choose the same arms."""
    env = BernoulliBanditRL2(num_arms=4, num_pulls=8, batch_size=16)
    rng = np.random.default_rng(2)
    tasks = BanditTasks((rng.random((16, 4)) < 0.5).astype(np.float64))  # rewards 0 or 1
    rl2 = RL2(env, hidden_units=8)
    weights = np.random.default_rng(3)
    for v in rl2.policy.trainable_variables:  # a policy whose choices depend on history
        v.assign(weights.normal(size=v.shape) * (3.0 if len(v.shape) > 1 else 0.0))
    trials = rl2.collect(task_batch(rl2.dynamics, tasks), tf.constant([0, 1]),
                         deterministic=True)
    score = evaluate(env, RL2Agent(rl2, deterministic=True), tasks)
    np.testing.assert_array_equal(score.scores, trials.returns().numpy())
    assert len(np.unique(trials.actions.numpy())) > 1


def test_errors_name_the_argument():
    env = BernoulliBanditRL2(5, 10)
    for kwargs, match in [
        ({"discount": 1.5}, r"`discount` must be a number in \[0.0, 1.0\]. Received: "
                            r"discount=1.5"),
        ({"clip_ratio": 0}, r"`clip_ratio` must be a number > 0.0. Received: clip_ratio=0"),
        ({"ppo_epochs": 0}, r"`ppo_epochs` must be an integer >= 1. Received: ppo_epochs=0"),
        ({"hidden_units": "64"}, r"`hidden_units` must be an integer >= 1"),
        ({"reward_scale": 0}, r"`reward_scale` must be a number > 0.0. Received: "
                              r"reward_scale=0"),
        ({"entropy_decay_iterations": 0}, r"`entropy_decay_iterations` must be an integer"),
        ({"final_entropy_coefficient": -1}, r"`final_entropy_coefficient` must be a number"),
    ]:
        with pytest.raises(ValueError, match=match):
            RL2(env, **kwargs)
    with pytest.raises(ValueError, match=r"`batch_size` must be >= num_minibatches=4. "
                                         r"Received: batch_size=2"):
        RL2(env).dataset(batch_size=2)
    with pytest.raises(ValueError, match=r"`policy` must be an RL2 learner or an RL2Policy"):
        RL2Agent(keras.Sequential())


def test_config_round_trip_and_gaussian_policy():
    rl2 = RL2(Navigation2DMAML(num_episodes=2, max_steps=3), hidden_units=5, gae_lambda=0.5)
    again = RL2.from_config(rl2.get_config())
    assert again.get_config() == rl2.get_config()
    assert again.policy.distribution.get_config() == {"name": "diagonal_gaussian",
                                                       "action_size": 2}
    rl2.compile(keras.optimizers.Adam(1e-3))
    logs = rl2.fit(rl2.dataset(8), steps_per_epoch=1, verbose=0).history
    assert np.isfinite(logs["policy_loss"][0]) and logs["env_steps"][0] == 8 * 6
    result = rl2.evaluate(rl2.dataset(8, split="validation"), steps=2, return_dict=True,
                          verbose=0)
    assert set(result) == {"trial_return"} and result["trial_return"] < 0  # distances


def test_entropy_decay_and_reward_scale():
    """The entropy weight decays linearly over PPO iterations (optimizer updates / 16),
    then stays; reward_scale scales the critic's targets, not the logged returns."""
    rl2 = RL2(BernoulliBanditRL2(3, 4), hidden_units=4, entropy_coefficient=0.04,
              entropy_decay_iterations=2, final_entropy_coefficient=0.01, reward_scale=0.5)
    rl2.compile(keras.optimizers.Adam(1e-3))
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    weights = []
    for _ in range(3):
        weights.append(float(rl2.entropy_weight()))
        rl2.fit(rl2.dataset(8), steps_per_epoch=1, verbose=0)
    np.testing.assert_allclose(weights + [float(rl2.entropy_weight())],
                               [0.04, 0.025, 0.01, 0.01], rtol=1e-6)
    assert float(RL2(BernoulliBanditRL2(3, 4), hidden_units=4).entropy_weight()) == (
        pytest.approx(0.01))

    # Constant rewards 1: with discount 1 and lambda 1 the critic's targets are the scaled
    # rewards-to-go.
    env = BernoulliBanditRL2(2, 4)
    rl2 = RL2(env, hidden_units=4, discount=1.0, gae_lambda=1.0, reward_scale=0.5,
              value_coefficient=1.0, entropy_coefficient=0.0)
    captured = {}
    original = rl2.ppo_update

    def spy(trials, advantages, targets, seed):
        captured["targets"], captured["returns"] = targets, trials.returns()
        return original(trials, advantages, targets, seed)

    rl2.ppo_update = spy
    rl2.compile(keras.optimizers.Adam(1e-3), run_eagerly=True)
    tasks = task_batch(rl2.dynamics, BanditTasks(np.ones((4, 2))))
    rl2.train_step({"tasks": tasks, "seed": tf.constant([0, 1])})
    np.testing.assert_allclose(captured["targets"].numpy(),
                               np.repeat(0.5 * np.arange(4, 0, -1.0)[:, None], 4, axis=1),
                               rtol=1e-6)
    np.testing.assert_allclose(captured["returns"].numpy(), 4.0)


def test_expected_rewards_take_the_reward_noise_out_of_the_targets():
    """With ``expected_rewards`` the critic's targets (discount 1, lambda 1: the rewards to
    go) are sums of the arms' probabilities, the same in every trial of a task whatever the
    coin flips; without it they are the sampled rewards to go. The policy is fed the
    sampled rewards either way."""
    env = BernoulliBanditRL2(2, 6)
    tasks = task_batch(RL2(env, hidden_units=4).dynamics, BanditTasks(np.full((64, 2), 0.5)))
    seed = tf.constant([3, 4])
    targets = {}
    for expected in (False, True):
        rl2 = RL2(env, hidden_units=4, discount=1.0, gae_lambda=1.0, expected_rewards=expected)
        assert RL2.from_config(rl2.get_config()).expected_rewards is expected
        trials = rl2.collect(tasks, seed, expected_rewards=expected)
        targets[expected] = rl2.advantages(trials)[1].numpy()
        np.testing.assert_array_equal(trials.observations["prev_reward"][1:, :, 0].numpy(),
                                      trials.rewards[:-1].numpy())
        if not expected:
            to_go = np.cumsum(trials.rewards.numpy()[::-1], axis=0)[::-1]
            np.testing.assert_allclose(targets[False], to_go, rtol=1e-6)
    np.testing.assert_allclose(targets[True], np.repeat(0.5 * np.arange(6, 0, -1.0)[:, None],
                                                        64, axis=1), rtol=1e-6)
    assert targets[False][0].std() > 0.5  # the sampled returns vary from trial to trial
    with pytest.raises(ValueError, match=r"`expected_rewards=True` needs trials collected"):
        rl2.advantages(rl2.collect(tasks, seed))
    rl2.compile(keras.optimizers.Adam(1e-3))
    logs = rl2.fit(rl2.dataset(8), steps_per_epoch=1, verbose=0).history
    assert np.isfinite(logs["value_loss"][0]) and logs["env_steps"][0] == 8 * 6


@pytest.mark.parametrize("time_aware", [False, True], ids=["plain", "time_aware"])
def test_separate_critic_has_its_own_gru_and_learns(time_aware):
    """critic="separate": the values come from a GRU of their own (no gradient between the
    actor's and the critic's weights), acting is unchanged, and PPO still learns."""
    dist = distributions.Categorical(4)
    policy = RL2Policy(1, 4, dist, hidden_units=8, critic="separate",
                       time_aware_critic=time_aware)
    assert len(policy.trainable_variables) == len(
        RL2Policy(1, 4, dist, hidden_units=8).trainable_variables) + 3  # the critic's GRU
    seq = {k: tf.constant(v) for k, v in _sequence().items()}
    with tf.GradientTape(persistent=True) as tape:
        params, values, _ = policy.unroll(seq)
        actor_loss, critic_loss = tf.reduce_sum(params ** 2), tf.reduce_sum(values ** 2)
    actor, critic = policy.actor_variables, policy.critic_variables
    assert {v.path for v in actor + critic} == {v.path for v in policy.trainable_variables}
    assert not {v.path for v in actor} & {v.path for v in critic}
    assert all(g is None for g in tape.gradient(critic_loss, actor))
    assert all(g is None for g in tape.gradient(actor_loss, critic))
    assert all(g is not None for g in tape.gradient(critic_loss, critic))
    np.testing.assert_allclose(policy.action_params(seq).numpy(), params.numpy(), rtol=1e-6)
    np.testing.assert_allclose(policy.critic_values(seq).numpy(), values.numpy(), rtol=1e-6)
    state = policy.initial_state(3)
    for t in range(6):
        step_params, state = policy.step(*(seq[k][t] for k in POLICY_INPUTS), state)
        np.testing.assert_allclose(params[t].numpy(), step_params.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs critic='shared'"):
        policy.step_with_value(*(seq[k][0] for k in POLICY_INPUTS), state)
    with pytest.raises(ValueError, match=r"`critic` must be one of \('shared', 'separate'\). "
                                         r"Received: critic='own'"):
        RL2Policy(1, 4, dist, critic="own")

    rl2 = RL2(BernoulliBanditRL2(num_arms=5, num_pulls=10), hidden_units=32, discount=1.0,
              gae_lambda=0.3, critic="separate", time_aware_critic=time_aware)
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    assert rl2.get_config()["critic"] == "separate"
    rl2.compile(keras.optimizers.Adam(6e-3))
    history = rl2.fit(rl2.dataset(256, seed=0), steps_per_epoch=25, epochs=3, verbose=0).history
    assert history["trial_return"][-1] > history["trial_return"][0] + 0.3, history
    # The critic learned: its value at a trial's start predicts the trial's return (about
    # 6.4 here; an untrained critic says about 0).
    trials = rl2.collect(next(iter(rl2.dataset(512, seed=5)))["tasks"], tf.constant([1, 2]))
    start_values = rl2.policy.unroll({k: trials.observations[k] for k in POLICY_INPUTS})[1][0]
    assert abs(float(tf.reduce_mean(start_values) - tf.reduce_mean(trials.returns()))) < 0.5


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_previous_observation_feeds_whole_transitions(critic, tmp_path):
    """previous_observation: the input also holds the last observation, carried in the
    state; unrolling (from any state) equals stepping, and saving keeps it."""
    dist = distributions.Categorical(4)
    policy = RL2Policy(3, 4, dist, hidden_units=8, critic=critic, previous_observation=True)
    assert policy.state_size == 11 and policy.input_size == 3 + 3 + 4 + 2
    assert tuple(policy.cell.kernel.shape) == (12, 24)
    assert tuple(policy.initial_state(5).shape) == (5, 11)
    seq = {k: tf.constant(v) for k, v in _sequence(obs=3).items()}
    start = tf.random.stateless_normal([3, 11], [4, 2])
    params, _, final = policy.unroll(seq, start)
    state = start
    for t in range(6):
        step_params, state = policy.step(*(seq[k][t] for k in POLICY_INPUTS), state)
        np.testing.assert_allclose(params[t].numpy(), step_params.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(state[:, 8:].numpy(), seq["observation"][t].numpy())
    np.testing.assert_allclose(final.numpy(), state.numpy(), rtol=1e-5, atol=1e-6)
    # The carried observation is an input of the step: the same GRU state with another
    # last observation acts differently.
    inputs = [seq[k][0] for k in POLICY_INPUTS]
    moved = tf.concat([state[:, :8], state[:, 8:] + 1.0], axis=-1)
    assert np.abs(policy.step(*inputs, state)[0] - policy.step(*inputs, moved)[0]).max() > 1e-4
    if critic == "shared":
        np.testing.assert_allclose(policy.step_with_value(*inputs, state)[2].numpy(),
                                   policy.step(*inputs, state)[1].numpy(), rtol=1e-6)
    policy.save(tmp_path / "policy.keras")
    loaded = keras.saving.load_model(tmp_path / "policy.keras")
    assert loaded.previous_observation and loaded.state_size == 11
    np.testing.assert_allclose(loaded.unroll(seq, start)[0].numpy(), params.numpy(), rtol=1e-6)
    rl2 = RL2(TabularMDPRL2(num_episodes=2, batch_size=1), hidden_units=16, critic=critic,
              previous_observation=True, encoder_units=(16,))
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    rl2.compile(keras.optimizers.Adam(1e-3))
    logs = rl2.fit(rl2.dataset(8, seed=0), steps_per_epoch=2, verbose=0).history
    assert np.isfinite(logs["trial_return"]).all()


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_encoder_layers_feed_the_gru(critic, tmp_path):
    """encoder_units: ReLU layers between the inputs and the GRU, in acting, unrolling,
    saving and the actor/critic split (a separate critic gets its own)."""
    dist = distributions.Categorical(4)
    policy = RL2Policy(1, 4, dist, hidden_units=8, critic=critic, encoder_units=[16, 8])
    plain = RL2Policy(1, 4, dist, hidden_units=8, critic=critic)
    encoders = 2 if critic == "separate" else 1
    assert len(policy.trainable_variables) == len(plain.trainable_variables) + 4 * encoders
    # The GRU reads the encoder's 8 outputs, not the 7 inputs.
    assert tuple(policy.cell.kernel.shape) == (8, 24)
    seq = {k: tf.constant(v) for k, v in _sequence().items()}
    params, values, final = policy.unroll(seq)
    state = policy.initial_state(3)
    for t in range(6):
        step_params, state = policy.step(*(seq[k][t] for k in POLICY_INPUTS), state)
        np.testing.assert_allclose(params[t].numpy(), step_params.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.numpy(), state.numpy(), rtol=1e-5, atol=1e-6)
    actor, critic_vars = policy.actor_variables, policy.critic_variables
    assert {v.path for v in actor + critic_vars} == {v.path for v in policy.trainable_variables}
    assert any("encoder_0" in v.path and "critic" not in v.path for v in actor)
    if critic == "separate":
        assert any("critic_encoder_0" in v.path for v in critic_vars)
        with tf.GradientTape() as tape:
            critic_loss = tf.reduce_sum(policy.unroll(seq)[1] ** 2)
        assert all(g is None for g in tape.gradient(critic_loss, actor))
    policy.save(tmp_path / "policy.keras")
    loaded = keras.saving.load_model(tmp_path / "policy.keras")
    assert loaded.encoder_units == (16, 8)
    again = loaded.unroll(seq)
    np.testing.assert_allclose(again[0].numpy(), params.numpy(), rtol=1e-6)
    np.testing.assert_allclose(again[1].numpy(), values.numpy(), rtol=1e-6)
    for bad in [16, [0], ["8"]]:
        with pytest.raises(ValueError, match="encoder_units"):
            RL2Policy(1, 4, dist, encoder_units=bad)
    if critic == "shared":
        return  # learning is checked once, with the critic the n=100 runs use

    rl2 = RL2(BernoulliBanditRL2(num_arms=5, num_pulls=10), hidden_units=32, discount=1.0,
              gae_lambda=0.3, critic=critic, encoder_units=(32,))
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    rl2.compile(keras.optimizers.Adam(6e-3))
    history = rl2.fit(rl2.dataset(256, seed=0), steps_per_epoch=25, epochs=3, verbose=0).history
    assert history["trial_return"][-1] > history["trial_return"][0] + 0.3, history


def test_task_aware_critic_reads_the_task_and_the_policy_does_not():
    """critic_task_size: the critic's GRU is also fed the task features, so the same history
    gets other values in another task while the policy's outputs stay the same."""
    dist = distributions.Categorical(4)
    policy = RL2Policy(1, 4, dist, hidden_units=8, critic="separate", critic_task_size=3)
    assert policy.critic_cell.kernel.shape[0] == policy.input_size + 3
    seq = {k: tf.constant(v) for k, v in _sequence().items()}
    one = {**seq, "task": tf.fill([6, 3, 3], 0.2)}
    other = {**seq, "task": tf.fill([6, 3, 3], 0.9)}
    params, values, _ = policy.unroll(one)
    other_params, other_values, _ = policy.unroll(other)
    np.testing.assert_array_equal(params.numpy(), other_params.numpy())
    assert np.abs(values.numpy() - other_values.numpy()).min() > 1e-5
    np.testing.assert_allclose(policy.critic_values(one).numpy(), values.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"needs observations\['task'\]"):
        policy.critic_values(seq)
    with pytest.raises(ValueError, match="`critic_task_size` > 0 needs critic='separate'"):
        RL2Policy(1, 4, dist, critic_task_size=3)
    assert RL2Policy.from_config(policy.get_config()).critic_task_size == 3


def test_task_aware_critic_values_follow_the_task():
    """A bandit's critic told the arm probabilities predicts each trial's return from its
    first step (where the history says nothing yet): after 50 iterations its start values
    follow the mean arm probability (what a still exploring policy earns; correlation
    0.84-0.86 on two seeds, -0.2 and -0.5 untrained), while a plain critic's start value
    is one number for every task."""
    env = BernoulliBanditRL2(num_arms=5, num_pulls=10)
    rl2 = RL2(env, hidden_units=32, discount=1.0, gae_lambda=0.3, critic="separate",
              task_aware_critic=True)
    assert rl2.dynamics.task_feature_size == 5
    assert rl2.get_config()["task_aware_critic"] is True
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    rl2.compile(keras.optimizers.Adam(6e-3))
    history = rl2.fit(rl2.dataset(256, seed=0), steps_per_epoch=25, epochs=2, verbose=0).history
    assert history["trial_return"][-1] > history["trial_return"][0], history
    tasks = sample_bandit_tasks(512, 5, split="test")
    batch = task_batch(rl2.dynamics, tasks)
    np.testing.assert_allclose(rl2.dynamics.task_features(batch).numpy(), tasks.probs,
                               rtol=1e-6)
    trials = rl2.collect(batch, tf.constant([1, 2]))
    inputs = {k: trials.observations[k] for k in POLICY_INPUTS}
    inputs["task"] = tf.tile(tf.constant(tasks.probs, tf.float32)[None], [10, 1, 1])
    start = rl2.policy.critic_values(inputs)[0].numpy()
    assert np.corrcoef(start, tasks.probs.mean(axis=1))[0, 1] > 0.7
    plain = RL2(env, hidden_units=32, critic="separate")
    plain_start = plain.policy.critic_values(inputs)[0].numpy()
    assert np.ptp(plain_start) < 1e-6


def test_task_inference_head_reads_the_policy_gru_and_acting_ignores_it():
    """task_prediction_size: a linear head on the actor's GRU, returned on request by
    `unroll`; the action parameters and the values are those of the same policy without
    the head."""
    dist = distributions.Categorical(4)
    policy = RL2Policy(1, 4, dist, hidden_units=8, task_prediction_size=3)
    seq = {k: tf.constant(v) for k, v in _sequence().items()}
    params, values, final, predictions = policy.unroll(seq, return_task_predictions=True)
    assert predictions.shape == (6, 3, 3)
    hidden = policy._hidden(*policy._sequence_inputs(seq))
    np.testing.assert_allclose(predictions.numpy(), policy.task_head(hidden).numpy(), rtol=1e-5,
                               atol=1e-6)
    plain = RL2Policy(1, 4, dist, hidden_units=8)
    shared = [w for w in policy.weights if not w.path.startswith("task_prediction")]
    plain.set_weights([w.numpy() for w in shared])
    plain_params, plain_values, _ = plain.unroll(seq)
    np.testing.assert_allclose(params.numpy(), plain_params.numpy(), rtol=1e-6)
    np.testing.assert_allclose(values.numpy(), plain_values.numpy(), rtol=1e-6)
    assert len(policy.unroll(seq)) == 3
    with pytest.raises(ValueError, match="`return_task_predictions=True` needs a policy built "
                                         "with task_prediction_size > 0"):
        plain.unroll(seq, return_task_predictions=True)
    assert RL2Policy.from_config(policy.get_config()).task_prediction_size == 3
    env = BernoulliBanditRL2(num_arms=5, num_pulls=10)
    with pytest.raises(ValueError, match=r"`task_inference_coefficient` must be a number >= "
                                         r"0.0. Received: task_inference_coefficient=-1"):
        RL2(env, task_inference_coefficient=-1)
    with pytest.raises(ValueError, match="`task_inference_coefficient` > 0 needs "
                                         "outer_step='ppo'"):
        RL2(env, critic="separate", outer_step="trpo", task_inference_coefficient=1.0)
    rl2 = RL2(env, hidden_units=8, task_inference_coefficient=0.5)
    assert rl2.policy.task_prediction_size == 5
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    assert RL2(env, hidden_units=8).policy.task_head is None


def test_task_inference_learns_each_arm_from_the_history():
    """task_inference_coefficient: PPO also fits the head's squared error to the arm
    probabilities. After 50 iterations its error falls along the trial as the pulls come in
    and closes most of the gap between the prior mean's error and the Bayes posterior
    mean's (74% and 69% on seeds 0 and 1; asserted: half), and its last predictions follow
    the posterior means (correlation 0.87 and 0.85): the GRU keeps each arm's statistics."""
    env = BernoulliBanditRL2(num_arms=5, num_pulls=10)
    keras.utils.set_random_seed(0)
    rl2 = RL2(env, hidden_units=32, discount=1.0, gae_lambda=0.3, task_inference_coefficient=1.0)
    rl2.compile(keras.optimizers.Adam(6e-3))
    history = rl2.fit(rl2.dataset(256, seed=0), steps_per_epoch=25, epochs=2, verbose=0).history
    assert history["task_loss"][-1] < history["task_loss"][0], history
    assert history["trial_return"][-1] > history["trial_return"][0], history
    tasks = sample_bandit_tasks(512, 5, split="test")
    trials = rl2.collect(task_batch(rl2.dynamics, tasks), tf.constant([1, 2]))
    inputs = {k: trials.observations[k] for k in POLICY_INPUTS}
    predictions = rl2.policy.unroll(inputs, return_task_predictions=True)[3].numpy()
    errors = ((predictions - tasks.probs[None]) ** 2).mean(axis=(1, 2))
    # The Bayes posterior mean of each arm after pulls 0..T-2 (what the last step's GRU has
    # read), under the task sampler's uniform prior: (successes + 1) / (pulls + 2).
    actions, rewards = trials.actions.numpy()[:-1], trials.rewards.numpy()[:-1]  # [T-1, B]
    pulls = np.stack([(actions == a).sum(0) for a in range(5)], axis=-1)
    wins = np.stack([((actions == a) * rewards).sum(0) for a in range(5)], axis=-1)
    posterior = (wins + 1) / (pulls + 2)
    prior_error = ((0.5 - tasks.probs) ** 2).mean()
    bayes_error = ((posterior - tasks.probs) ** 2).mean()
    assert errors[-1] < errors[0] and errors[-1] < prior_error - 0.5 * (prior_error - bayes_error)
    assert np.corrcoef(predictions[-1].ravel(), posterior.ravel())[0, 1] > 0.8


def test_time_aware_critic_sees_the_trial_left_and_the_policy_does_not():
    """time_aware_critic: the critic's GRU is fed ``1 - t / T``, so the same first steps give
    other values in a longer trial while the policy's outputs stay the same."""
    dist = distributions.Categorical(4)
    policy = RL2Policy(1, 4, dist, hidden_units=8, critic="separate", time_aware_critic=True)
    plain = RL2Policy(1, 4, dist, hidden_units=8, critic="separate")
    assert policy.critic_cell.kernel.shape[0] == policy.input_size + 1
    assert plain.critic_cell.kernel.shape[0] == plain.input_size
    seq = {k: tf.constant(v) for k, v in _sequence().items()}
    prefix = {k: v[:3] for k, v in seq.items()}
    params, values, _ = policy.unroll(seq)
    prefix_params, prefix_values, _ = policy.unroll(prefix)
    np.testing.assert_allclose(prefix_params.numpy(), params[:3].numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(prefix_values.numpy() - values[:3].numpy()).max() > 1e-4
    # Fed the time by hand, a plain critic's GRU with the same weights gives the same values.
    length = 6
    to_come = (1.0 - np.arange(length) / length).astype(np.float32)
    x = policy._inputs(*(seq[k] for k in POLICY_INPUTS))
    x = tf.concat([x, tf.broadcast_to(to_come[:, None, None], [length, 3, 1])], axis=-1)
    h = tf.zeros([3, 8])
    for t in range(length):
        h = policy.critic_cell(x[t], [h])[0]
        np.testing.assert_allclose(policy.value_head(h)[:, 0].numpy(), values[t].numpy(),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="`time_aware_critic=True` needs critic='separate'"):
        RL2Policy(1, 4, dist, time_aware_critic=True)
    with pytest.raises(ValueError, match="`time_aware_critic=True` needs critic='separate'"):
        RL2(BernoulliBanditRL2(num_arms=5, num_pulls=10), time_aware_critic=True)
    rl2 = RL2(BernoulliBanditRL2(num_arms=5, num_pulls=10), hidden_units=8, critic="separate",
              time_aware_critic=True)
    assert rl2.get_config()["time_aware_critic"] is True
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    restored = RL2Policy.from_config(policy.get_config())
    assert restored.time_aware_critic and restored.critic_cell.kernel.shape[0] == 8


def test_trpo_step_moves_the_actor_within_the_trust_region_and_learns():
    """outer_step="trpo": one natural-gradient step of the actor with mean KL <= max_kl on
    the batch, the compiled optimizer fits only the critic, and the policy learns."""
    env = BernoulliBanditRL2(num_arms=5, num_pulls=10)
    with pytest.raises(ValueError, match="`outer_step='trpo'` needs critic='separate'"):
        RL2(env, outer_step="trpo")
    with pytest.raises(ValueError, match="`outer_step` must be one of"):
        RL2(env, outer_step="sgd", critic="separate")
    with pytest.raises(ValueError, match="fisher_fraction"):
        RL2(env, outer_step="trpo", critic="separate", fisher_fraction=0.0)

    rl2 = RL2(env, hidden_units=32, discount=1.0, gae_lambda=0.3, critic="separate",
              outer_step="trpo", max_kl=0.02, fisher_fraction=0.25)
    assert RL2.from_config(rl2.get_config()).get_config() == rl2.get_config()
    rl2.compile(keras.optimizers.Adam(0.0))  # the critic stays put: only TRPO moves weights
    before = [v.numpy() for v in rl2.policy.trainable_variables]
    data = next(iter(rl2.dataset(256, seed=3)))
    behaviour = rl2.collect(data["tasks"], tf.random.experimental.stateless_split(
        tf.cast(data["seed"], tf.int32), 2)[0])
    logs = {k: v[0] for k, v in rl2.fit(tf.data.Dataset.from_tensors(data),
                                        verbose=0).history.items()}
    assert set(logs) >= {"policy_loss", "value_loss", "entropy", "kl", "accepted"}
    assert logs["accepted"] == 1.0 and 0.0 < logs["kl"] <= 0.02
    moved = {v.path: not np.allclose(b, v.numpy())
             for b, v in zip(before, rl2.policy.trainable_variables)}
    assert all(moved[v.path] for v in rl2.policy.actor_variables[:1] + [
        rl2.policy.actor_variables[-1]])
    assert not any(moved[v.path] for v in rl2.policy.critic_variables)
    # The logged KL is that of the new policy on the behaviour trials the step used.
    new = rl2.policy.action_params({k: behaviour.observations[k] for k in POLICY_INPUTS})
    dist = rl2.dynamics.distribution
    kl = tf.reduce_sum(dist.kl(behaviour.params, new) * behaviour.active) / tf.reduce_sum(
        behaviour.active)
    np.testing.assert_allclose(float(kl), logs["kl"], rtol=1e-4)

    rl2 = RL2(env, hidden_units=32, discount=1.0, gae_lambda=0.3, critic="separate",
              outer_step="trpo", max_kl=0.02, fisher_fraction=0.25)
    rl2.compile(keras.optimizers.Adam(3e-3))
    history = rl2.fit(rl2.dataset(256, seed=0), steps_per_epoch=20, epochs=2, verbose=0).history
    # Random scores 5.0 and Greedy 6.6: 40 TRPO iterations reach about 6.3.
    assert history["trial_return"][-1] > 6.0, history
    assert min(history["accepted"]) > 0.5


def test_learns_bandits_beats_random_and_approaches_greedy():
    """k=5, n=10: 150 PPO iterations of 256 trials (384k steps), 1000 held-out tasks."""
    start = time.perf_counter()
    train_env = BernoulliBanditRL2(num_arms=5, num_pulls=10)
    rl2 = RL2(train_env, hidden_units=64, discount=1.0, gae_lambda=0.3)
    rl2.compile(keras.optimizers.Adam(6e-3))
    history = rl2.fit(rl2.dataset(256, seed=0), steps_per_epoch=50, epochs=3, verbose=0).history
    assert int(rl2.env_steps.numpy()) == 150 * 256 * 10
    assert history["trial_return"][-1] > history["trial_return"][0] + 0.5

    tasks = sample_bandit_tasks(1000, 5, split="test")
    env = BernoulliBanditRL2(num_arms=5, num_pulls=10, batch_size=1000)
    learned = evaluate(env, RL2Agent(rl2), tasks)
    random = evaluate(env, RandomAgent(env.action_spec()), tasks)
    greedy = evaluate(env, GreedyBandit(), tasks)
    # Random scores about 5.0 and Greedy 6.6 here (each ± 0.08).
    assert learned.mean > random.mean + 1.0, (learned, random)
    assert learned.mean > greedy.mean - 0.3, (learned, greedy)
    print(f"RL2 {learned}, random {random}, greedy {greedy}, "
          f"{time.perf_counter() - start:.0f} s")
