"""Bernoulli multi-armed bandits, RL^2 protocol (Duan et al. 2016).

A task is ``k`` arm means ``p_i ~ U[0, 1]``; a pull of arm ``a`` pays Bernoulli(p_a).
A trial is `num_pulls` pulls of the same task (each pull is an inner episode of one
step, so ``done=1`` after every pull); the observation is constant. The score is the
total reward of the trial.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np
from tf_agents.specs import array_spec

from keras_meta.rl.envs import sampler
from keras_meta.rl.envs.trial import TrialEnvironment, check_array


class BanditTasks(NamedTuple):
    """Bernoulli bandit tasks.

    Attributes:
        probs: float64 array (num_tasks, num_arms), the arms' success probabilities.
    """

    probs: np.ndarray


def _draw_bandit_tasks(rng: np.random.Generator, count: int, num_arms: int) -> BanditTasks:
    return BanditTasks(rng.random((count, num_arms)))


def sample_bandit_tasks(count: int, num_arms: int = 5, *, split: str, seed: int = 0,
                        start: int = 0) -> BanditTasks:
    """Draws tasks ``[start, start + count)`` of the ``(seed, split)`` bandit stream.

    Args:
        count: int >= 0, number of tasks.
        num_arms: int >= 2, arms per task.
        split: str, one of `SPLITS` (e.g. "test" for held-out tasks).
        seed: non-negative int.
        start: int >= 0, index of the first task.

    Returns:
        `BanditTasks` with `count` rows; the same arguments always give the same tasks.

    Raises:
        ValueError: on a bad argument.
    """
    num_arms = sampler.check_int("num_arms", num_arms, 2)
    return sampler.draw_tasks(functools.partial(_draw_bandit_tasks, num_arms=num_arms), seed,
                              split, start, count)


class BernoulliBanditRL2(TrialEnvironment):
    """Batched Bernoulli bandit trials (RL^2 protocol), a tf-agents `PyEnvironment`.

    Observation: the trial dict of `TrialEnvironment` with a constant ``observation``
    ``[0.]`` and a one-hot ``prev_action`` of length `num_arms`. Action: int32 arm
    index, shape ``(batch_size,)``.

    Args:
        num_arms: int >= 2, the number of arms ``k``.
        num_pulls: int >= 1, pulls per trial ``n``.
        batch_size: int >= 1 or None (the number of `tasks`, else 1).
        seed: non-negative int, seeds the task stream and the reward noise.
        split: str, one of `SPLITS`, the task stream reset draws from.
        tasks: optional fixed `BanditTasks` with `batch_size` rows.

    Raises:
        ValueError: on a bad argument, or in `step` on a bad action.

    Example:
        >>> import numpy as np
        >>> from keras_meta.rl import BernoulliBanditRL2
        >>> env = BernoulliBanditRL2(num_arms=5, num_pulls=10, batch_size=4)
        >>> time_step = env.reset()
        >>> time_step = env.step(np.zeros(4, np.int32))
        >>> time_step.observation["prev_action"][0].tolist(), env.trial_length
        ([1.0, 0.0, 0.0, 0.0, 0.0], 10)
    """

    def __init__(self, num_arms: int = 5, num_pulls: int = 10, batch_size: int | None = None, *,
                 seed: int = 0, split: str = "train", tasks: BanditTasks | None = None) -> None:
        self._num_arms = sampler.check_int("num_arms", num_arms, 2)
        num_pulls = sampler.check_int("num_pulls", num_pulls, 1)
        self._action_spec = array_spec.BoundedArraySpec(
            (), np.int32, minimum=0, maximum=self._num_arms - 1, name="action")
        self._probs = np.zeros((1, self._num_arms))
        super().__init__(
            batch_size=batch_size, num_episodes=num_pulls, horizon=1, seed=seed, split=split,
            tasks=tasks, task_observation_spec=array_spec.ArraySpec((1,), np.float32,
                                                                    "observation"),
            prev_action_size=self._num_arms)

    @property
    def num_arms(self) -> int:
        """Arms per task."""
        return self._num_arms

    @property
    def num_pulls(self) -> int:
        """Pulls per trial."""
        return self.num_episodes

    def action_spec(self) -> array_spec.BoundedArraySpec:
        return self._action_spec

    def _draw_tasks(self, rng: np.random.Generator, count: int) -> BanditTasks:
        return _draw_bandit_tasks(rng, count, self._num_arms)

    def _check_tasks(self, tasks: Any) -> BanditTasks:
        if not isinstance(tasks, BanditTasks):
            raise ValueError(f"`tasks` must be a BanditTasks. "
                             f"Received: type(tasks)={type(tasks).__name__}")
        return BanditTasks(check_array("probs", tasks.probs, (None, self._num_arms), 0.0, 1.0))

    def _new_trial_tasks(self, tasks: BanditTasks) -> None:
        self._probs = tasks.probs

    def _start_episode(self) -> np.ndarray:
        return np.zeros((self.batch_size, 1), np.float32)

    def _check_action(self, action: Any) -> np.ndarray:
        return self._check_discrete_action(action, self._num_arms)

    def _mean_reward(self, action: np.ndarray) -> np.ndarray:
        return self._probs[np.arange(self.batch_size), action]

    def _transition(self, action: np.ndarray, active: np.ndarray):
        b = self.batch_size
        p = self._mean_reward(action)
        reward = (self._rng.random(b) < p).astype(np.float32)
        return reward, np.zeros((b, 1), np.float32), self._one_hot(action, self._num_arms), active
