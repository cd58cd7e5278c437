"""Random tabular MDPs, RL^2 protocol (Duan et al. 2016).

A task has S=10 states and A=5 actions, mean rewards ``R(s, a) ~ N(1, 1)`` and
transitions ``P(s, a, .) ~ Dirichlet(1, ..., 1)``; the observed reward is
``R(s, a) + N(0, 1)``. Every inner episode starts in state 0 and lasts 10 steps; a
trial is `num_episodes` episodes of the same MDP; the observation is the one-hot state.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np
from tf_agents.specs import array_spec

from keras_meta.rl.envs import sampler
from keras_meta.rl.envs.trial import TrialEnvironment, check_array


class MDPTasks(NamedTuple):
    """Tabular MDP tasks.

    Attributes:
        rewards: float64 array (num_tasks, S, A), mean rewards ``R(s, a)``.
        transitions: float64 array (num_tasks, S, A, S), ``P(s' | s, a)``.
    """

    rewards: np.ndarray
    transitions: np.ndarray


def _draw_mdp_tasks(rng: np.random.Generator, count: int, num_states: int,
                    num_actions: int) -> MDPTasks:
    rewards = rng.normal(1.0, 1.0, (count, num_states, num_actions))
    # Dirichlet(1, ..., 1) is exactly a normalised vector of standard exponentials.
    weights = rng.standard_exponential((count, num_states, num_actions, num_states))
    return MDPTasks(rewards, weights / weights.sum(axis=-1, keepdims=True))


def sample_mdp_tasks(count: int, num_states: int = 10, num_actions: int = 5, *, split: str,
                     seed: int = 0, start: int = 0) -> MDPTasks:
    """Draws tasks ``[start, start + count)`` of the ``(seed, split)`` MDP stream.

    Args:
        count: int >= 0, number of MDPs.
        num_states: int >= 1, states S.
        num_actions: int >= 2, actions A.
        split: str, one of `SPLITS` (e.g. "test" for held-out tasks).
        seed: non-negative int.
        start: int >= 0, index of the first task.

    Returns:
        `MDPTasks` with `count` rows.

    Raises:
        ValueError: on a bad argument.
    """
    num_states = sampler.check_int("num_states", num_states, 1)
    num_actions = sampler.check_int("num_actions", num_actions, 2)
    draw = functools.partial(_draw_mdp_tasks, num_states=num_states, num_actions=num_actions)
    return sampler.draw_tasks(draw, seed, split, start, count)


class TabularMDPRL2(TrialEnvironment):
    """Batched random tabular MDP trials (RL^2 protocol), a tf-agents `PyEnvironment`.

    Observation: the trial dict of `TrialEnvironment` with a one-hot state
    ``observation`` (length S) and a one-hot ``prev_action`` (length A). Action: int32
    action index, shape ``(batch_size,)``.

    Args:
        num_episodes: int >= 1, episodes per trial ``n``.
        batch_size: int >= 1 or None (the number of `tasks`, else 1).
        num_states: int >= 1, states S (10 in the protocol).
        num_actions: int >= 2, actions A (5 in the protocol).
        horizon: int >= 1, steps per episode (10 in the protocol).
        seed: non-negative int, seeds the task stream and the noise.
        split: str, one of `SPLITS`, the task stream reset draws from.
        tasks: optional fixed `MDPTasks` with `batch_size` rows.

    Raises:
        ValueError: on a bad argument, or in `step` on a bad action.

    Example:
        >>> import numpy as np
        >>> from keras_meta.rl import TabularMDPRL2
        >>> env = TabularMDPRL2(num_episodes=2, batch_size=3)
        >>> env.reset().observation["observation"][0].tolist()
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        >>> env.trial_length
        20
    """

    def __init__(self, num_episodes: int = 10, batch_size: int | None = None, *,
                 num_states: int = 10, num_actions: int = 5, horizon: int = 10, seed: int = 0,
                 split: str = "train", tasks: MDPTasks | None = None) -> None:
        self._num_states = sampler.check_int("num_states", num_states, 1)
        self._num_actions = sampler.check_int("num_actions", num_actions, 2)
        self._action_spec = array_spec.BoundedArraySpec(
            (), np.int32, minimum=0, maximum=self._num_actions - 1, name="action")
        self._eye = np.eye(self._num_states, dtype=np.float32)
        super().__init__(
            batch_size=batch_size, num_episodes=num_episodes, horizon=horizon, seed=seed,
            split=split, tasks=tasks,
            task_observation_spec=array_spec.ArraySpec((self._num_states,), np.float32,
                                                       "observation"),
            prev_action_size=self._num_actions)
        self._state = np.zeros(self.batch_size, np.int64)

    @property
    def num_states(self) -> int:
        """States per MDP."""
        return self._num_states

    @property
    def num_actions(self) -> int:
        """Actions per state."""
        return self._num_actions

    def action_spec(self) -> array_spec.BoundedArraySpec:
        return self._action_spec

    def _draw_tasks(self, rng: np.random.Generator, count: int) -> MDPTasks:
        return _draw_mdp_tasks(rng, count, self._num_states, self._num_actions)

    def _check_tasks(self, tasks: Any) -> MDPTasks:
        if not isinstance(tasks, MDPTasks):
            raise ValueError(f"`tasks` must be an MDPTasks. "
                             f"Received: type(tasks)={type(tasks).__name__}")
        s, a = self._num_states, self._num_actions
        rewards = check_array("rewards", tasks.rewards, (None, s, a))
        transitions = check_array("transitions", tasks.transitions, (None, s, a, s), 0.0, 1.0)
        if rewards.shape[0] != transitions.shape[0]:
            raise ValueError(
                "`rewards` and `transitions` must have the same number of tasks. Received: "
                f"{rewards.shape[0]} and {transitions.shape[0]}")
        if not np.allclose(transitions.sum(-1), 1.0, atol=1e-6):
            raise ValueError("`transitions` must sum to 1 over the next state (last axis). "
                             "Received: rows summing to "
                             f"{transitions.sum(-1).min()}..{transitions.sum(-1).max()}")
        return MDPTasks(rewards, transitions)

    def _new_trial_tasks(self, tasks: MDPTasks) -> None:
        s, a = self._num_states, self._num_actions
        # Flat per-(row, state, action) tables: one `take` per step.
        self._rewards = np.ascontiguousarray(tasks.rewards).reshape(-1)
        cdf = np.cumsum(tasks.transitions, axis=-1).reshape(-1, s)
        cdf[:, -1] = 1.0
        self._cdf = cdf
        self._row_offset = np.arange(self.batch_size) * (s * a)

    def _start_episode(self) -> np.ndarray:
        self._state = np.zeros(self.batch_size, np.int64)
        return self._eye[self._state]

    def _check_action(self, action: Any) -> np.ndarray:
        return self._check_discrete_action(action, self._num_actions)

    def _index(self, action: np.ndarray) -> np.ndarray:
        """Each row's (row, state, action) index into the flat tables."""
        return self._row_offset + self._state * self._num_actions + action

    def _mean_reward(self, action: np.ndarray) -> np.ndarray:
        return self._rewards.take(self._index(action))

    def _transition(self, action: np.ndarray, active: np.ndarray):
        b = self.batch_size
        index = self._index(action)
        reward = self._rewards.take(index) + self._rng.standard_normal(b)
        cdf = self._cdf.take(index, axis=0)  # P(s' <= j | s, a), last column exactly 1
        self._state = (cdf <= self._rng.random((b, 1))).sum(axis=-1)
        return (reward.astype(np.float32), self._eye.take(self._state, axis=0),
                self._one_hot(action, self._num_actions), active)
