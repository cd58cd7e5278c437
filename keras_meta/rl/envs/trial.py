"""Batched meta-RL trials as a tf-agents `PyEnvironment`.

Design (shared by every task family):

* **A tf-agents episode is one trial.** ``reset()`` starts a trial: every batch row
  gets a task (the next ones of the ``(seed, split)`` task stream, or the tasks fixed
  with `set_tasks`) and keeps it for the whole trial. Resetting again (or stepping
  after the ``LAST`` time step) starts a new trial with new tasks.
* **A trial is `num_episodes` inner episodes of `horizon` steps**, in lock-step over
  the batch, so every trial lasts exactly ``trial_length = num_episodes * horizon``
  steps and all rows reach ``LAST`` together (discount 0 there, 1 elsewhere, also
  across inner-episode boundaries: the trial is the episode an RL^2 agent optimises).
* **Inner-episode boundaries** are reported in the observation, not in the step
  type: the time step that ends an inner episode carries that step's reward and the
  *first* observation of the next inner episode of the same task, with ``done=1``.
  (The terminal state of the finished inner episode is not shown, as in RL^2.)
* **Early termination** (2D navigation reaching its goal) makes the rest of that
  inner episode absorbing: the state stays put, rewards are 0 and ``active=0``, until
  the next inner episode starts. Returns equal those of stopping at termination;
  a learner masks the step-``t`` action by ``observation["active"][t]``.
* **The observation is a dict of float32 vectors**, everything an RL^2 agent is fed,
  so ``concat(tf.nest.flatten(observation), -1)`` is the recurrent input:

  - ``observation``: the task's observation (constant for bandits, one-hot state,
    position);
  - ``prev_action``: the previous action (one-hot for discrete actions, the clipped
    velocity for navigation); zeros at the start of a trial;
  - ``prev_reward``: ``[r_{t-1}]``, 0 at the start of a trial;
  - ``done``: ``[1]`` if the previous step ended an inner episode, else ``[0]``;
  - ``active``: ``[1]`` if an action now has an effect (always for bandits and
    MDPs), ``[0]`` in an absorbed navigation state.

The trial score is the undiscounted sum of the rewards of a trial.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from keras_meta.rl.envs import sampler

_F32 = np.float32


class TrialEnvironment(py_environment.PyEnvironment, metaclass=abc.ABCMeta):
    """Base class: numpy-vectorised, batched lock-step trials of one task family.

    Subclasses implement the task hooks (`_draw_tasks`, `_check_tasks`,
    `_start_episode`, `_check_action`, `_transition`) and the specs; the base class
    implements ``_reset``/``_step``, the trial bookkeeping and the observation dict.

    Args:
        batch_size: int >= 1, number of tasks (rows) stepped together, or None to
            use the number of `tasks` (1 when `tasks` is None too).
        num_episodes: int >= 1, inner episodes per trial.
        horizon: int >= 1, steps per inner episode.
        seed: non-negative int; seeds the task stream and the environment noise.
        split: str, one of `SPLITS`, the task stream to draw from.
        tasks: optional fixed tasks (see `set_tasks`).
        task_observation_spec: `ArraySpec` of one row's task observation.
        prev_action_size: int, length of the ``prev_action`` vector.

    Raises:
        ValueError: on a bad argument (named in the message).
    """

    def __init__(self, *, batch_size: int | None, num_episodes: int, horizon: int, seed: int,
                 split: str, tasks: Any, task_observation_spec: array_spec.ArraySpec,
                 prev_action_size: int) -> None:
        super().__init__(handle_auto_reset=False)  # `_step` resets after LAST itself
        self._num_episodes = sampler.check_int("num_episodes", num_episodes, 1)
        self._horizon = sampler.check_int("horizon", horizon, 1)
        sampler.split_id(split)
        self._split = split
        if tasks is not None:
            tasks = self._check_tasks(tasks)
        if batch_size is None:
            batch_size = 1 if tasks is None else sampler.num_tasks(tasks)
        self._batch_size = sampler.check_int("batch_size", batch_size, 1)
        self._prev_action_size = prev_action_size
        self._observation_spec = {
            "observation": task_observation_spec,
            "prev_action": array_spec.ArraySpec((prev_action_size,), _F32, "prev_action"),
            "prev_reward": array_spec.ArraySpec((1,), _F32, "prev_reward"),
            "done": array_spec.ArraySpec((1,), _F32, "done"),
            "active": array_spec.ArraySpec((1,), _F32, "active"),
        }
        self._fixed_tasks: Any = None
        self._tasks: Any = None
        self._t = 0
        self._active = np.ones(self._batch_size, dtype=bool)
        self.seed(seed)
        if tasks is not None:
            self.set_tasks(tasks)

    # ----------------------------------------------------------------- public API
    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def num_episodes(self) -> int:
        """Inner episodes per trial."""
        return self._num_episodes

    @property
    def horizon(self) -> int:
        """Steps per inner episode."""
        return self._horizon

    @property
    def trial_length(self) -> int:
        """Steps per trial (``num_episodes * horizon``)."""
        return self._num_episodes * self._horizon

    @property
    def split(self) -> str:
        """The split the task stream draws from."""
        return self._split

    @property
    def tasks(self) -> Any:
        """The tasks of the current trial (None before the first reset)."""
        return self._tasks

    @property
    def fixed_tasks(self) -> Any:
        """The tasks fixed with `set_tasks`, or None when trials draw from the stream."""
        return self._fixed_tasks

    def observation_spec(self) -> dict[str, array_spec.ArraySpec]:
        return self._observation_spec

    def seed(self, seed: int) -> None:
        """Restarts the task stream and the environment noise from `seed`.

        Args:
            seed: non-negative int.

        Raises:
            ValueError: if `seed` is not a non-negative integer.
        """
        self._seed = sampler.check_seed(seed)
        self._stream = sampler.TaskStream(self._draw_tasks, self._seed, self._split)
        self._rng = sampler.noise_generator(self._seed, self._split)

    def sample_tasks(self, count: int, *, split: str | None = None, start: int = 0) -> Any:
        """Returns tasks ``[start, start + count)`` of this environment's seed and a split.

        Args:
            count: int >= 0, number of tasks.
            split: str, one of `SPLITS`; defaults to the environment's split.
            start: int >= 0, index of the first task.

        Returns:
            The family's tasks tuple with `count` rows.
        """
        return sampler.draw_tasks(self._draw_tasks, self._seed,
                                  self._split if split is None else split, start, count)

    def set_tasks(self, tasks: Any) -> None:
        """Fixes the tasks of every following trial (from the next reset on).

        Args:
            tasks: the family's tasks tuple with `batch_size` rows (row ``i`` is played
                by batch row ``i``), or None to draw from the task stream again.

        Raises:
            ValueError: if `tasks` has the wrong type, shape or values.
        """
        if tasks is not None:
            tasks = self._check_tasks(tasks)
            if sampler.num_tasks(tasks) != self._batch_size:
                raise ValueError(
                    f"`tasks` must have batch_size={self._batch_size} rows. "
                    f"Received: {sampler.num_tasks(tasks)} tasks")
        self._fixed_tasks = tasks

    def expected_reward(self, action: Any) -> np.ndarray | None:
        """The mean reward each row would receive for `action` at the current step.

        ``E[reward | task, state, action]``: a bandit arm's success probability, an MDP's
        mean reward ``R(s, action)``, navigation's (deterministic) reward; 0 in rows whose
        inner episode has ended. Nothing is stepped. `evaluate` sums it over a trial for a
        score with the same mean as the trial's reward and none of the rewards' own noise.

        Args:
            action: a batched action, as for `step`.

        Returns:
            float64 array (batch_size,), or None if the family does not define it.

        Raises:
            ValueError: on a bad action, or when no trial is under way (call `reset`).
        """
        if self._tasks is None or self._t >= self.trial_length:
            raise ValueError("`expected_reward` needs a trial under way: call `reset` first "
                             "(and again after the trial's last step).")
        mean = self._mean_reward(self._check_action(action))
        return None if mean is None else np.where(self._active, mean, 0.0)

    # ------------------------------------------------------------ family hooks
    @abc.abstractmethod
    def _draw_tasks(self, rng: np.random.Generator, count: int) -> Any:
        """Draws `count` tasks with `rng` (vectorised) as the family's tasks tuple."""

    @abc.abstractmethod
    def _check_tasks(self, tasks: Any) -> Any:
        """Validates user-given tasks; returns them as float64 arrays of the tuple type."""

    @abc.abstractmethod
    def _start_episode(self) -> np.ndarray:
        """Starts an inner episode in every row; returns the task observations."""

    @abc.abstractmethod
    def _check_action(self, action: Any) -> np.ndarray:
        """Validates a batched action; returns it as an array."""

    @abc.abstractmethod
    def _transition(self, action: np.ndarray,
                    active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Applies one batched action.

        Args:
            action: validated action, leading axis `batch_size`.
            active: bool (batch_size,), rows whose actions have an effect.

        Returns:
            ``(reward, task_observation, prev_action, active)``: the float32 rewards
            (0 in inactive rows), next task observations, the ``prev_action`` vectors
            and the rows still active after the step.
        """

    def _new_trial_tasks(self, tasks: Any) -> None:
        """Called with the tasks of each new trial, before the first `_start_episode`."""

    def _mean_reward(self, action: np.ndarray) -> np.ndarray | None:
        """``E[reward]`` of the validated `action` in every row's current state, without
        stepping (see `expected_reward`); None (the default) if the family does not say."""
        del action
        return None

    # ------------------------------------------------------------ tf-agents hooks
    def _reset(self) -> ts.TimeStep:
        tasks = self._fixed_tasks
        if tasks is None:
            tasks = self._stream.next(self._batch_size)
        self._tasks = tasks
        self._new_trial_tasks(tasks)
        self._t = 0
        self._active = np.ones(self._batch_size, dtype=bool)
        obs = self._start_episode()
        b = self._batch_size
        observation = {
            "observation": obs,
            "prev_action": np.zeros((b, self._prev_action_size), _F32),
            "prev_reward": np.zeros((b, 1), _F32),
            "done": np.zeros((b, 1), _F32),
            "active": np.ones((b, 1), _F32),
        }
        return ts.TimeStep(
            step_type=np.full(b, ts.StepType.FIRST, np.int32),
            reward=np.zeros(b, _F32),
            discount=np.ones(b, _F32),
            observation=observation,
        )

    def _step(self, action: Any) -> ts.TimeStep:
        if self._t >= self.trial_length:  # the trial is over: start a new one, ignore `action`
            return self._reset()
        action = self._check_action(action)
        reward, obs, prev_action, active = self._transition(action, self._active)
        self._t += 1
        b = self._batch_size
        episode_over = self._t % self._horizon == 0
        if self._t >= self.trial_length:
            step_type, discount = ts.StepType.LAST, 0.0
        else:
            step_type, discount = ts.StepType.MID, 1.0
            if episode_over:
                obs = self._start_episode()
                active = np.ones(b, dtype=bool)
        self._active = active
        observation = {
            "observation": obs,
            "prev_action": prev_action,
            "prev_reward": reward.reshape(b, 1).astype(_F32),
            "done": np.full((b, 1), float(episode_over), _F32),
            "active": active.astype(_F32).reshape(b, 1),
        }
        return ts.TimeStep(
            step_type=np.full(b, step_type, np.int32),
            reward=reward.astype(_F32, copy=False),
            discount=np.full(b, discount, _F32),
            observation=observation,
        )

    # ---------------------------------------------------------------- helpers
    def _check_discrete_action(self, action: Any, num_actions: int) -> np.ndarray:
        """Validates integer actions of shape ``(batch_size,)`` in ``[0, num_actions)``."""
        a = np.asarray(action)
        if a.shape != (self._batch_size,):
            raise ValueError(
                f"`action` must have shape (batch_size,) = ({self._batch_size},). "
                f"Received: action.shape={a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(
                f"`action` must have an integer dtype. Received: action.dtype={a.dtype}")
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_actions:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"`action` values must be in [0, {num_actions - 1}]. Received: action "
                f"containing {bad}")
        return a

    def _one_hot(self, a: np.ndarray, depth: int) -> np.ndarray:
        out = np.zeros((self._batch_size, depth), _F32)
        out[np.arange(self._batch_size), a] = 1.0
        return out


def check_array(name: str, value: Any, shape: tuple[int | None, ...],
                lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Validates a task parameter array (shape with None wildcards, finite, bounds).

    Args:
        name: str, the field's name in the error message.
        value: array-like.
        shape: expected shape, None matching any size.
        lo: optional inclusive lower bound.
        hi: optional inclusive upper bound.

    Returns:
        The array as float64.

    Raises:
        ValueError: on a wrong shape, non-finite values or values out of bounds.
    """
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != len(shape) or any(e is not None and e != s for e, s in zip(shape, arr.shape)):
        expected = tuple("n" if e is None else e for e in shape)
        raise ValueError(f"`{name}` must have shape {expected}. Received: {name}.shape={arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite. Received: {name} with NaN or inf")
    too_low = lo is not None and arr.min(initial=lo) < lo
    if too_low or (hi is not None and arr.max(initial=hi) > hi):
        raise ValueError(
            f"`{name}` values must be in [{lo}, {hi}]. Received: min={arr.min()}, max={arr.max()}")
    return arr
