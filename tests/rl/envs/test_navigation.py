"""Navigation2DMAML: clipping, rewards, termination at the goal, errors."""

import numpy as np
import pytest

from keras_meta.rl import Navigation2DMAML, NavigationTasks, sample_navigation_tasks


def test_goals_are_uniform_in_the_square():
    goals = sample_navigation_tasks(20000, split="train").goals
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    assert np.all(np.abs(goals.mean(0)) < 0.01) and np.all(np.abs(goals.var(0) - 1 / 12) < 3e-3)


def test_clipped_moves_and_distance_reward():
    env = Navigation2DMAML(tasks=NavigationTasks(np.array([[0.3, -0.05], [-0.2, 0.2]])))
    env.reset()
    step = env.step(np.array([[1.0, -1.0], [-0.05, 0.0]], np.float32))
    np.testing.assert_allclose(step.observation["observation"], [[0.1, -0.1], [-0.05, 0.0]],
                               atol=1e-7)
    np.testing.assert_allclose(step.observation["prev_action"], [[0.1, -0.1], [-0.05, 0.0]],
                               atol=1e-7)
    np.testing.assert_allclose(step.reward, [-np.hypot(0.2, 0.05), -np.hypot(0.15, 0.2)],
                               rtol=1e-6)


def test_action_scale_normalises_actions_to_the_speed_range():
    goals = NavigationTasks(np.array([[0.3, -0.05], [-0.2, 0.2]]))
    env = Navigation2DMAML(tasks=goals, action_scale=0.1)
    assert env.action_spec().maximum == pytest.approx(1.0)
    env.reset()
    step = env.step(np.array([[3.0, -1.0], [-0.5, 0.0]], np.float32))
    np.testing.assert_allclose(step.observation["prev_action"], [[0.1, -0.1], [-0.05, 0.0]],
                               atol=1e-7)  # velocities: 0.1 x action, clipped
    with pytest.raises(ValueError, match=r"`action_scale` must be a finite number > 0. "
                                         r"Received: action_scale=0"):
        Navigation2DMAML(action_scale=0)


def test_reaching_the_goal_absorbs_until_the_next_episode():
    env = Navigation2DMAML(num_episodes=2, max_steps=4,
                           tasks=NavigationTasks(np.array([[0.105, 0.0], [0.4, 0.4]])))
    env.reset()
    step = env.step(np.full((2, 2), 0.1, np.float32))  # row 0 reaches (0.1, 0.1) vs (0.105, 0)
    assert step.observation["active"][:, 0].tolist() == [1.0, 1.0]
    step = env.step(np.array([[0.0, -0.1], [0.1, 0.1]], np.float32))  # row 0 at the goal
    assert step.observation["active"][:, 0].tolist() == [0.0, 1.0]
    assert abs(step.reward[0] + 0.005) < 1e-6
    step = env.step(np.full((2, 2), 0.1, np.float32))
    assert step.reward[0] == 0.0 and step.reward[1] < 0
    np.testing.assert_allclose(step.observation["observation"][0], [0.1, 0.0], atol=1e-7)
    np.testing.assert_array_equal(step.observation["prev_action"][0], [0.0, 0.0])
    step = env.step(np.full((2, 2), 0.1, np.float32))  # end of the first inner episode
    assert step.observation["done"][:, 0].tolist() == [1.0, 1.0]
    assert step.observation["active"][:, 0].tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(step.observation["observation"], 0.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"max_steps": 0}, r"`max_steps` must be an integer >= 1. Received: max_steps=0"),
    ({"num_episodes": -1}, r"`num_episodes` must be an integer >= 1. Received: num_episodes=-1"),
    ({"tasks": NavigationTasks(np.zeros((2, 3)))},
     r"`goals` must have shape \('n', 2\). Received: goals.shape=\(2, 3\)"),
    ({"tasks": NavigationTasks(np.array([[np.nan, 0.0]]))}, r"`goals` must be finite"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Navigation2DMAML(**kwargs)


@pytest.mark.parametrize("action,match", [
    (np.zeros((2, 2), np.int32), r"`action` must have a floating dtype. "
                                 r"Received: action.dtype=int32"),
    (np.array([[np.inf, 0.0], [0.0, 0.0]]), r"`action` must be finite"),
    (np.zeros(2, np.float32), r"`action` must have shape \(batch_size, 2\) = \(2, 2\). "
                              r"Received: action.shape=\(2,\)"),
])
def test_bad_actions(action, match):
    env = Navigation2DMAML(batch_size=2)
    env.reset()
    with pytest.raises(ValueError, match=match):
        env.step(action)
