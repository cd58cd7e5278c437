"""BernoulliBanditRL2: protocol, rewards, argument and action errors."""

import numpy as np
import pytest

from keras_meta.rl import BanditTasks, BernoulliBanditRL2


def test_rewards_follow_the_arm_probabilities():
    probs = np.tile([[0.0, 1.0, 0.3]], (4000, 1))
    env = BernoulliBanditRL2(3, 2, tasks=BanditTasks(probs))
    step = env.reset()
    np.testing.assert_array_equal(step.observation["observation"], 0.0)
    assert (env.step(np.zeros(4000, np.int32)).reward == 0).all()
    step = env.step(np.full(4000, 2, np.int32))
    assert abs(step.reward.mean() - 0.3) < 4 * np.sqrt(0.21 / 4000)
    np.testing.assert_array_equal(step.observation["prev_action"][0], [0.0, 0.0, 1.0])
    assert (step.observation["done"] == 1).all()  # every pull is an inner episode
    assert step.is_last().all()
    assert env.step(np.ones(4000, np.int64)).is_first().all()  # ignores the action
    assert (env.step(np.ones(4000, np.int64)).reward == 1).all()  # same fixed tasks


def test_observation_spec():
    env = BernoulliBanditRL2(num_arms=7, num_pulls=3, batch_size=2)
    spec = env.observation_spec()
    assert spec["prev_action"].shape == (7,) and spec["observation"].shape == (1,)
    assert env.action_spec().maximum == 6 and env.num_pulls == 3 and env.num_arms == 7


@pytest.mark.parametrize("kwargs,match", [
    ({"num_arms": 1}, r"`num_arms` must be an integer >= 2. Received: num_arms=1"),
    ({"num_pulls": 0}, r"`num_pulls` must be an integer >= 1. Received: num_pulls=0"),
    ({"batch_size": -4}, r"`batch_size` must be an integer >= 1. Received: batch_size=-4"),
    ({"tasks": BanditTasks(np.full((2, 5), 1.5))}, r"`probs` values must be in \[0.0, 1.0\]"),
    ({"tasks": BanditTasks(np.full((2, 4), 0.5))},
     r"`probs` must have shape \('n', 5\). Received: probs.shape=\(2, 4\)"),
    ({"tasks": BanditTasks(np.full((2, 5), 0.5)), "batch_size": 3},
     r"`tasks` must have batch_size=3 rows. Received: 2 tasks"),
    ({"tasks": np.full((2, 5), 0.5)}, r"`tasks` must be a BanditTasks"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BernoulliBanditRL2(**{"num_arms": 5, **kwargs})


@pytest.mark.parametrize("action,match", [
    (np.array([0, 5], np.int32), r"`action` values must be in \[0, 4\]. Received: action "
                                 r"containing 5"),
    (np.array([-1, 0], np.int32), r"Received: action containing -1"),
    (np.array([0.0, 1.0]), r"`action` must have an integer dtype. Received: action.dtype=float64"),
    (np.array([[0], [1]], np.int32), r"`action` must have shape \(batch_size,\) = \(2,\). "
                                     r"Received: action.shape=\(2, 1\)"),
])
def test_bad_actions(action, match):
    env = BernoulliBanditRL2(5, 10, 2)
    env.reset()
    with pytest.raises(ValueError, match=match):
        env.step(action)
