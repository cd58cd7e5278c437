"""Trial semantics shared by every task family (table-driven over the families)."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import tf_py_environment, utils
from tf_agents.trajectories import time_step as ts

from keras_meta.rl import (
    BernoulliBanditRL2,
    Navigation2DMAML,
    NavigationTasks,
    TabularMDPRL2,
    num_tasks,
    take_tasks,
)


def _bandit(**kw):
    return BernoulliBanditRL2(num_arms=3, num_pulls=4, **kw)


def _mdp(**kw):
    return TabularMDPRL2(num_episodes=3, horizon=4, **kw)


def _navigation(**kw):
    return Navigation2DMAML(num_episodes=2, max_steps=5, **kw)


# (name, factory, trial length, steps per inner episode, action for a batch of size b)
FAMILIES = [
    ("bandit", _bandit, 4, 1, lambda b: np.arange(b, dtype=np.int32) % 3),
    ("mdp", _mdp, 12, 4, lambda b: np.arange(b, dtype=np.int32) % 5),
    ("navigation", _navigation, 10, 5, lambda b: np.full((b, 2), 0.05, np.float32)),
]
IDS = [f[0] for f in FAMILIES]


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_validate_py_environment(name, make, length, horizon, action):
    env = make(batch_size=6)
    utils.validate_py_environment(env, episodes=3)
    assert env.batched and env.batch_size == 6
    assert env.trial_length == length and env.horizon == horizon


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_trial_structure(name, make, length, horizon, action):
    env = make(batch_size=4)
    step = env.reset()
    assert (step.step_type == ts.StepType.FIRST).all()
    obs = step.observation
    assert not obs["done"].any() and not obs["prev_action"].any() and (obs["active"] == 1).all()
    for t in range(1, length + 1):
        step = env.step(action(4))
        expected = ts.StepType.LAST if t == length else ts.StepType.MID
        assert (step.step_type == expected).all(), t
        assert (step.discount == (0.0 if t == length else 1.0)).all()
        assert (step.observation["done"] == float(t % horizon == 0)).all(), t
        np.testing.assert_array_equal(step.observation["prev_reward"][:, 0], step.reward)
    first = env.step(action(4))  # stepping after LAST starts a new trial
    assert (first.step_type == ts.StepType.FIRST).all()


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_task_kept_within_trial_and_new_on_reset(name, make, length, horizon, action):
    env = make(batch_size=5, seed=3)
    env.reset()
    tasks = env.tasks
    for _ in range(length):
        env.step(action(5))
        assert env.tasks is tasks
    env.reset()
    assert not np.array_equal(env.tasks[0], tasks[0])
    # The stream is deterministic: trial i plays tasks [5 i, 5 i + 5) of (seed, split).
    np.testing.assert_array_equal(env.tasks[0], env.sample_tasks(5, start=5)[0])
    np.testing.assert_array_equal(tasks[0], env.sample_tasks(5)[0])


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_same_seed_same_trials(name, make, length, horizon, action):
    def rollout(seed):
        env = make(batch_size=3, seed=seed)
        steps = [env.reset()] + [env.step(action(3)) for _ in range(2 * length)]
        return [s.reward for s in steps] + [s.observation["observation"] for s in steps]

    for a, b in zip(rollout(1), rollout(1)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(rollout(1), rollout(2)))


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_fixed_tasks_replayed_every_trial(name, make, length, horizon, action):
    held_out = make(batch_size=2).sample_tasks(2, split="test", start=10)
    env = make(tasks=held_out)
    assert env.batch_size == 2
    for _ in range(2):
        env.reset()
        np.testing.assert_array_equal(env.tasks[0], held_out[0])
    env.set_tasks(None)
    env.reset()
    assert not np.array_equal(env.tasks[0], held_out[0])
    with pytest.raises(ValueError, match="batch_size=2 rows"):
        env.set_tasks(take_tasks(held_out, [0]))
    assert num_tasks(held_out) == 2


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_tf_py_environment(name, make, length, horizon, action):
    tf_env = tf_py_environment.TFPyEnvironment(make(batch_size=4))
    assert tf_env.batch_size == 4
    step = tf_env.reset()
    assert step.observation["observation"].shape[0] == 4
    tf_action = tf.constant(action(4))

    @tf.function
    def trial_return():
        tf_env.reset()
        total = tf.zeros([4])
        for _ in tf.range(length):
            total += tf_env.step(tf_action).reward
        return total, tf_env.current_time_step().step_type

    total, step_type = trial_return()
    assert total.shape == (4,)
    assert (step_type.numpy() == ts.StepType.LAST).all()


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 0}, r"`batch_size` must be an integer >= 1. Received: batch_size=0"),
    ({"batch_size": 2.0}, r"Received: batch_size=2.0"),
    ({"seed": -1}, r"`seed` must be an integer >= 0. Received: seed=-1"),
    ({"split": "dev"}, r"`split` must be one of .*Received: split='dev'"),
])
def test_bad_common_arguments(name, make, length, horizon, action, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_bad_action_shape(name, make, length, horizon, action):
    env = make(batch_size=3)
    env.reset()
    with pytest.raises(ValueError, match=r"`action` must have shape .*Received: action.shape"):
        env.step(action(4))


@pytest.mark.parametrize("name,make,length,horizon,action", FAMILIES, ids=IDS)
def test_expected_reward_is_the_mean_of_the_step_reward(name, make, length, horizon, action):
    env = make(batch_size=4000, seed=3)
    with pytest.raises(ValueError, match="call `reset` first"):
        env.expected_reward(action(4000))
    env.reset()
    a = action(4000)
    means, rewards = [], []
    for _ in range(length):
        mean = env.expected_reward(a)
        np.testing.assert_array_equal(env.expected_reward(a), mean)  # nothing stepped
        assert mean.shape == (4000,)
        reward = env.step(a).reward
        if name == "navigation":  # deterministic: the reward itself
            np.testing.assert_allclose(reward, mean, rtol=1e-6, atol=1e-6)
        else:  # unit-variance noise at most: the mean of 4000 differences is within 0.1
            assert abs(np.mean(reward - mean)) < 0.1
        means.append(mean)
        rewards.append(reward)
    # A mean read at the wrong arm or state would still average right over random tasks;
    # it would not predict each row's reward: the regression slope of reward on it is ~1
    # when it is right and ~0 when it is not.
    means, rewards = np.concatenate(means), np.concatenate(rewards)
    slope = np.cov(means, rewards)[0, 1] / np.var(means, ddof=1)
    assert abs(slope - 1.0) < 0.1, slope
    with pytest.raises(ValueError, match="call `reset` first"):
        env.expected_reward(a)


def test_expected_reward_is_zero_after_the_goal():
    goals = np.array([[0.05, 0.05], [0.5, 0.5]])
    env = Navigation2DMAML(num_episodes=1, max_steps=5, batch_size=2,
                           tasks=NavigationTasks(goals))
    env.reset()
    step = np.full((2, 2), 0.05, np.float32)
    np.testing.assert_allclose(env.expected_reward(step), [0.0, -np.sqrt(2) * 0.45],
                               atol=1e-6)
    env.step(step)  # row 0 reaches its goal and stops; row 1 goes on
    mean = env.expected_reward(step)
    assert mean[0] == 0.0
    np.testing.assert_allclose(mean[1], -np.sqrt(2) * 0.4, atol=1e-6)
