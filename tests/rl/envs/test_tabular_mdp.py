"""TabularMDPRL2: protocol, dynamics, argument and action errors."""

import numpy as np
import pytest

from keras_meta.rl import MDPTasks, TabularMDPRL2, sample_mdp_tasks


def _chain(batch, s=10, a=5):
    """Deterministic MDP: every action moves s -> s + 1 (mod S); R(s, a) = s + a / 10."""
    transitions = np.zeros((batch, s, a, s))
    transitions[:, np.arange(s), :, (np.arange(s) + 1) % s] = 1.0
    rewards = np.broadcast_to(np.arange(s)[:, None] + np.arange(a)[None] / 10, (batch, s, a))
    return MDPTasks(rewards.copy(), transitions)


def test_sampled_tasks_follow_the_protocol():
    tasks = sample_mdp_tasks(400, split="train")
    assert tasks.rewards.shape == (400, 10, 5) and tasks.transitions.shape == (400, 10, 5, 10)
    assert abs(tasks.rewards.mean() - 1.0) < 0.02 and abs(tasks.rewards.std() - 1.0) < 0.02
    np.testing.assert_allclose(tasks.transitions.sum(-1), 1.0)
    # Dirichlet(1) over 10 states: each probability has mean 0.1 and variance 9 / 1100.
    assert abs(tasks.transitions.var() - 9 / 1100) < 3e-4


def test_episodes_restart_in_state_zero_with_noisy_rewards():
    env = TabularMDPRL2(num_episodes=2, batch_size=3000, horizon=3, tasks=_chain(3000))
    step = env.reset()
    np.testing.assert_array_equal(step.observation["observation"][0], np.eye(10)[0])
    states, noise = [], []
    for t in range(6):
        step = env.step(np.full(3000, 2, np.int32))
        states.append(step.observation["observation"].argmax(-1))
        noise.append(step.reward - ((t % 3) + 0.2))
    assert [int(s[0]) for s in states] == [1, 2, 0, 1, 2, 3]  # reset after 3 steps
    noise = np.concatenate(noise)
    assert abs(noise.mean()) < 4 / np.sqrt(18000) and abs(noise.std() - 1.0) < 4 / np.sqrt(36000)


def test_transition_frequencies_match_p():
    tasks = sample_mdp_tasks(1, split="test")
    many = MDPTasks(np.repeat(tasks.rewards, 20000, 0), np.repeat(tasks.transitions, 20000, 0))
    env = TabularMDPRL2(1, 20000, tasks=many)
    env.reset()
    next_state = env.step(np.full(20000, 3, np.int32)).observation["observation"]
    freq, p = next_state.mean(0), tasks.transitions[0, 0, 3]
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / 20000) + 1e-9)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_episodes": 0}, r"`num_episodes` must be an integer >= 1. Received: num_episodes=0"),
    ({"num_actions": 1}, r"`num_actions` must be an integer >= 2. Received: num_actions=1"),
    ({"horizon": 0}, r"`horizon` must be an integer >= 1. Received: horizon=0"),
    ({"batch_size": 0}, r"`batch_size` must be an integer >= 1. Received: batch_size=0"),
    ({"tasks": MDPTasks(np.zeros((1, 10, 5)), np.full((1, 10, 5, 10), 0.2))},
     r"`transitions` must sum to 1 over the next state"),
    ({"tasks": MDPTasks(np.zeros((1, 10, 4)), np.full((1, 10, 5, 10), 0.1))},
     r"`rewards` must have shape \('n', 10, 5\)"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TabularMDPRL2(**kwargs)


@pytest.mark.parametrize("action,match", [
    (np.array([5, 0]), r"`action` values must be in \[0, 4\]. Received: action containing 5"),
    (np.array([0.0, 1.0], np.float32), r"`action` must have an integer dtype"),
    (np.array([1, 2, 3]), r"`action` must have shape \(batch_size,\) = \(2,\)"),
])
def test_bad_actions(action, match):
    env = TabularMDPRL2(batch_size=2)
    env.reset()
    with pytest.raises(ValueError, match=match):
        env.step(action)
