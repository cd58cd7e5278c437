"""Classical baselines for 2D navigation (`Navigation2DMAML`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from tf_agents.trajectories import time_step as ts

from keras_meta.rl.envs.navigation import MAX_SPEED, NavigationTasks, check_action_scale


class StandStill:
    """Always the zero velocity (scores ``-100 E||goal||`` = -38.3 in expectation)."""

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        del tasks, rng

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        return np.zeros((len(time_step.step_type), 2), np.float32)


class GoalOracle:
    """Sees the goal (reads the tasks) and moves straight to it at maximal speed.

    The velocity is ``clip(goal - position, -0.1, 0.1)``: the point of the reachable
    square closest to the goal, so every step minimises the next distance.

    Args:
        action_scale: the environment's velocity per unit of action
            (`Navigation2DMAML.action_scale`); the action is the velocity over it.
    """

    def __init__(self, action_scale: float = 1.0) -> None:
        self.action_scale = check_action_scale(action_scale)
        self._goals = np.zeros((1, 2))

    def begin_trial(self, tasks: NavigationTasks, rng: np.random.Generator) -> None:
        self._goals = np.asarray(tasks.goals)

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        position = time_step.observation["observation"].astype(np.float64)
        velocity = np.clip(self._goals - position, -MAX_SPEED, MAX_SPEED)
        return (velocity / self.action_scale).astype(np.float32)
