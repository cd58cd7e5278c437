"""2D point navigation, MAML protocol (Finn et al. 2017).

A task is a goal ``~ U[-0.5, 0.5]^2``. The point starts at (0, 0); an action is a
velocity clipped to ``[-0.1, 0.1]^2``; the reward is ``-||s' - goal||``; an episode
ends when both ``|dx|, |dy| < 0.01`` or after `max_steps` = 100 steps. Reaching the
goal makes the rest of the episode absorbing (zero reward, ``active=0``), which gives
the same returns as stopping there while keeping the batch in lock-step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from tf_agents.specs import array_spec

from keras_meta.rl.envs import sampler
from keras_meta.rl.envs.trial import TrialEnvironment, check_array

MAX_SPEED = 0.1
GOAL_TOLERANCE = 0.01
GOAL_RANGE = 0.5


def check_action_scale(action_scale: Any) -> float:
    """`action_scale` as a float > 0, or a ValueError naming it."""
    if isinstance(action_scale, bool) or not isinstance(action_scale, (int, float, np.number)) \
            or not np.isfinite(action_scale) or action_scale <= 0:
        raise ValueError("`action_scale` must be a finite number > 0. "
                         f"Received: action_scale={action_scale!r}")
    return float(action_scale)


class NavigationTasks(NamedTuple):
    """2D navigation tasks.

    Attributes:
        goals: float64 array (num_tasks, 2), the goal positions.
    """

    goals: np.ndarray


def _draw_navigation_tasks(rng: np.random.Generator, count: int) -> NavigationTasks:
    return NavigationTasks(rng.uniform(-GOAL_RANGE, GOAL_RANGE, (count, 2)))


def sample_navigation_tasks(count: int, *, split: str, seed: int = 0,
                            start: int = 0) -> NavigationTasks:
    """Draws goals ``[start, start + count)`` of the ``(seed, split)`` navigation stream.

    Args:
        count: int >= 0, number of goals (the MAML protocol meta-tests on 40).
        split: str, one of `SPLITS` (e.g. "test" for held-out goals).
        seed: non-negative int.
        start: int >= 0, index of the first goal.

    Returns:
        `NavigationTasks` with `count` rows.

    Raises:
        ValueError: on a bad argument.
    """
    return sampler.draw_tasks(_draw_navigation_tasks, seed, split, start, count)


class Navigation2DMAML(TrialEnvironment):
    """Batched 2D point navigation (MAML protocol), a tf-agents `PyEnvironment`.

    With ``num_episodes=1`` (default) a trial is one MAML episode; MAML samples several
    episodes of a task by repeating its goal over batch rows (`set_tasks`). With more
    episodes it is an RL^2 trial of the same goal. Observation: the trial dict of
    `TrialEnvironment` with the position as ``observation`` and the clipped velocity as
    ``prev_action``. Action: float, shape ``(batch_size, 2)``; any finite value is
    accepted; the velocity is ``clip(action_scale * action, -0.1, 0.1)`` (the spec states
    the range that is not clipped).

    Args:
        num_episodes: int >= 1, episodes per trial.
        batch_size: int >= 1 or None (the number of `tasks`, else 1).
        max_steps: int >= 1, steps per episode (100 in the protocol).
        seed: non-negative int, seeds the task stream.
        split: str, one of `SPLITS`, the task stream reset draws from.
        tasks: optional fixed `NavigationTasks` with `batch_size` rows.
        action_scale: float > 0, velocity per unit of action. 1 (default): the action is
            the velocity. 0.1: actions in ``[-1, 1]`` span the speed range, as rllab's
            ``normalize`` wrapper in the MAML authors' code (a Gaussian policy's unit
            initial standard deviation then covers the speed range instead of saturating).

    Raises:
        ValueError: on a bad argument, or in `step` on a bad action.

    Example:
        >>> import numpy as np
        >>> from keras_meta.rl import Navigation2DMAML, NavigationTasks
        >>> env = Navigation2DMAML(tasks=NavigationTasks(np.array([[0.3, -0.05]])))
        >>> _ = env.reset()
        >>> step = env.step(np.array([[1.0, -1.0]], np.float32))
        >>> step.observation["observation"].astype(float).round(3).tolist()
        [[0.1, -0.1]]
        >>> round(float(step.reward[0]), 3)
        -0.206
    """

    def __init__(self, num_episodes: int = 1, batch_size: int | None = None, *,
                 max_steps: int = 100, seed: int = 0, split: str = "train",
                 tasks: NavigationTasks | None = None, action_scale: float = 1.0) -> None:
        self.action_scale = check_action_scale(action_scale)
        bound = MAX_SPEED / self.action_scale
        self._action_spec = array_spec.BoundedArraySpec(
            (2,), np.float32, minimum=-bound, maximum=bound, name="action")
        super().__init__(
            batch_size=batch_size, num_episodes=num_episodes,
            horizon=sampler.check_int("max_steps", max_steps, 1), seed=seed, split=split,
            tasks=tasks,
            task_observation_spec=array_spec.ArraySpec((2,), np.float32, "observation"),
            prev_action_size=2)
        self._position = np.zeros((self.batch_size, 2))
        self._goals = np.zeros((self.batch_size, 2))

    @property
    def max_steps(self) -> int:
        """Steps per episode."""
        return self.horizon

    def action_spec(self) -> array_spec.BoundedArraySpec:
        return self._action_spec

    def _draw_tasks(self, rng: np.random.Generator, count: int) -> NavigationTasks:
        return _draw_navigation_tasks(rng, count)

    def _check_tasks(self, tasks: Any) -> NavigationTasks:
        if not isinstance(tasks, NavigationTasks):
            raise ValueError(f"`tasks` must be a NavigationTasks. "
                             f"Received: type(tasks)={type(tasks).__name__}")
        return NavigationTasks(check_array("goals", tasks.goals, (None, 2)))

    def _new_trial_tasks(self, tasks: NavigationTasks) -> None:
        self._goals = tasks.goals

    def _start_episode(self) -> np.ndarray:
        self._position = np.zeros((self.batch_size, 2))
        return np.zeros((self.batch_size, 2), np.float32)

    def _check_action(self, action: Any) -> np.ndarray:
        a = np.asarray(action)
        if a.shape != (self.batch_size, 2):
            raise ValueError(
                f"`action` must have shape (batch_size, 2) = ({self.batch_size}, 2). "
                f"Received: action.shape={a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(
                f"`action` must have a floating dtype. Received: action.dtype={a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError("`action` must be finite. Received: action containing NaN or inf")
        return a

    def _velocity(self, action: np.ndarray, active: np.ndarray) -> np.ndarray:
        return np.clip(self.action_scale * action, -MAX_SPEED, MAX_SPEED) * active[:, None]

    def _reward(self, position: np.ndarray) -> np.ndarray:
        """The negative distance of `position` to each row's goal."""
        delta = position - self._goals
        return -np.sqrt(np.sum(delta * delta, axis=-1))

    def _mean_reward(self, action: np.ndarray) -> np.ndarray:
        # Deterministic: the reward of the position the step would reach.
        return self._reward(self._position + self._velocity(action, self._active))

    def _transition(self, action: np.ndarray, active: np.ndarray):
        velocity = self._velocity(action, active)
        self._position = self._position + velocity
        delta = self._position - self._goals
        reward = np.where(active, self._reward(self._position), 0.0)
        reached = np.all(np.abs(delta) < GOAL_TOLERANCE, axis=-1)
        return (reward.astype(np.float32), self._position.astype(np.float32),
                velocity.astype(np.float32), active & ~reached)
