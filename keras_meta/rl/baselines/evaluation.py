"""Evaluating agents on fixed (held-out) tasks: the agent protocol, `evaluate` and `play`."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from keras_meta.rl.envs import sampler
from keras_meta.rl.envs.trial import TrialEnvironment


class Score(NamedTuple):
    """Trial scores of an agent over a set of tasks.

    Attributes:
        mean: float, the mean trial score.
        stderr: float, its standard error (sample std / sqrt(number of tasks)).
        scores: float64 array (num_tasks,), the trial score of each task, in task order.
        expected: the same trials scored by their *expected* rewards (the sum over the
            trial of each action's ``E[reward | task, state, action]``, see
            `TrialEnvironment.expected_reward`), or None. Its mean estimates the same
            quantity as `mean` without the rewards' own noise (a bandit's coin flips, an
            MDP's reward noise). A paired difference (`minus`) of two agents does not
            necessarily get a smaller standard error from it: once their actions diverge,
            most of its spread comes from the different actions (measured on n=100
            bandits, docs/results/rl2.md).
    """

    mean: float
    stderr: float
    scores: np.ndarray
    expected: Score | None = None

    @classmethod
    def from_scores(cls, scores: Any, expected: Any = None) -> Score:
        """Builds a `Score` from per-task trial scores (and per-task expected scores)."""
        scores = np.asarray(scores, np.float64)
        stderr = float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0
        if expected is not None:
            expected = cls.from_scores(expected)
            if expected.scores.shape != scores.shape:
                raise ValueError("`expected` must have one score per task, like `scores`. "
                                 f"Received: {expected.scores.shape} against {scores.shape}")
        return cls(float(scores.mean()), stderr, scores, expected)

    def minus(self, reference: Score) -> Score:
        """This score minus `reference`, task by task (a paired difference: both must
        score the same tasks in the same order); expected scores too, where both have
        them.

        Raises:
            ValueError: if the two do not score the same number of tasks.
        """
        if self.scores.shape != reference.scores.shape:
            raise ValueError("A paired difference needs scores of the same tasks. Received: "
                             f"{self.scores.shape} against {reference.scores.shape}")
        expected = (None if self.expected is None or reference.expected is None
                    else self.expected.scores - reference.expected.scores)
        return Score.from_scores(self.scores - reference.scores, expected)

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.stderr:.2f}"


class TrialAgent(Protocol):
    """A batched agent playing trials, fed the same observations as an RL^2 agent.

    `begin_trial` is called before each trial; `act` once per time step of the trial
    (the ``FIRST`` one included) and returns the batched action. Agents learn within a
    trial only from the observation dict (which carries the previous action, reward and
    the episode flags); only oracles may read `tasks`.
    """

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        """Prepares a trial on `tasks` (one row per batch row) with the agent's `rng`."""

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        """Returns the batched action for `time_step`."""


class RandomAgent:
    """Uniformly random actions within a bounded action spec (int: each value; float: box).

    Args:
        action_spec: the environment's `BoundedArraySpec`.
    """

    def __init__(self, action_spec: array_spec.BoundedArraySpec) -> None:
        self._spec = action_spec
        self._rng = np.random.default_rng(0)

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        self._rng = rng

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        shape = (len(time_step.step_type),) + tuple(self._spec.shape)
        lo, hi = np.asarray(self._spec.minimum), np.asarray(self._spec.maximum)
        if np.issubdtype(self._spec.dtype, np.integer):
            return self._rng.integers(lo, hi, shape, endpoint=True).astype(self._spec.dtype)
        return self._rng.uniform(lo, hi, shape).astype(self._spec.dtype)


def evaluate(env: TrialEnvironment, agent: TrialAgent, tasks: Any, *, seed: int = 0) -> Score:
    """Plays one trial per task and scores it (undiscounted total reward of the trial).

    The trials are those of `play` with the same arguments (chunks of ``env.batch_size``
    tasks, the environment reseeded with `seed`, its fixed tasks restored after). Where
    the family defines `TrialEnvironment.expected_reward`, the same trials are also scored
    by their expected rewards (`Score.expected`).

    Returns:
        A `Score` over the tasks.

    Raises:
        ValueError: on a bad seed or tasks that do not fit the environment.

    Example:
        >>> from keras_meta.rl import (BernoulliBanditRL2, GreedyBandit, evaluate,
        ...                            sample_bandit_tasks)
        >>> tasks = sample_bandit_tasks(2000, num_arms=5, split="test")
        >>> env = BernoulliBanditRL2(num_arms=5, num_pulls=10, batch_size=500)
        >>> score = evaluate(env, GreedyBandit(), tasks)
        >>> len(score.scores), 6.4 < score.mean < 6.8
        (2000, True)
    """
    trials = play(env, agent, tasks, seed=seed)
    expected = None if trials.expected_rewards is None else trials.expected_rewards.sum(1)
    return Score.from_scores(trials.rewards.sum(1), expected)


class Trials(NamedTuple):
    """What happened in the trials `play` played, step by step, in task order.

    Attributes:
        actions: array (num_tasks, steps, ...), the agent's action at each step.
        rewards: float64 array (num_tasks, steps), the reward each action drew.
        expected_rewards: float64 array (num_tasks, steps), each action's expected reward
            (`TrialEnvironment.expected_reward`), or None where the family does not
            define it.
    """

    actions: np.ndarray
    rewards: np.ndarray
    expected_rewards: np.ndarray | None


def play(env: TrialEnvironment, agent: TrialAgent, tasks: Any, *, seed: int = 0) -> Trials:
    """Plays one trial per task and returns every step of it (`evaluate` scores these).

    For analyses beyond the total: when an agent finds the best arm, where in the trial
    two agents part. The tasks are played in chunks of ``env.batch_size`` rows (the last
    chunk padded with repeated tasks, whose steps are dropped). The environment is
    reseeded with `seed` (its noise and task stream restart) and its fixed tasks are
    restored after.

    Args:
        env: a `TrialEnvironment` of the tasks' family.
        agent: a `TrialAgent`.
        tasks: the family's tasks tuple (e.g. `sample_bandit_tasks(..., split="test")`).
        seed: non-negative int, seeds the environment noise and the agent's generator.

    Returns:
        `Trials` over the tasks.

    Raises:
        ValueError: on a bad seed or tasks that do not fit the environment.

    Example:
        >>> from keras_meta.rl import BernoulliBanditRL2, UCB1Bandit, play, sample_bandit_tasks
        >>> tasks = sample_bandit_tasks(300, num_arms=5, split="test")
        >>> env = BernoulliBanditRL2(num_arms=5, num_pulls=10, batch_size=100)
        >>> trials = play(env, UCB1Bandit(0.2), tasks)
        >>> trials.actions.shape, trials.rewards.shape
        ((300, 10), (300, 10))
    """
    n = sampler.num_tasks(tasks)
    if n < 1:
        raise ValueError(f"`tasks` must contain at least one task. Received: {n} tasks")
    previous = env.fixed_tasks
    env.seed(seed)
    rng = sampler.agent_generator(seed)
    b = env.batch_size
    chunks: list[tuple[list, list, list | None]] = []
    with_expected = True
    try:
        for start in range(0, n, b):
            rows = np.arange(start, start + b) % n
            chunk = sampler.take_tasks(tasks, rows)
            env.set_tasks(chunk)
            agent.begin_trial(chunk, rng)
            time_step = env.reset()
            actions, rewards, expected = [], [], []
            while not time_step.is_last().all():
                action = agent.act(time_step)
                if with_expected:
                    mean = env.expected_reward(action)
                    if mean is None:
                        with_expected = False
                    else:
                        expected.append(np.asarray(mean, np.float64))
                actions.append(np.asarray(action))
                time_step = env.step(action)
                rewards.append(np.asarray(time_step.reward, np.float64))
            chunks.append((actions, rewards, expected))
    finally:
        env.set_tasks(previous)

    def stacked(index: int) -> np.ndarray:
        # [steps, b, ...] per chunk -> [n, steps, ...], the padding rows dropped
        return np.concatenate([np.swapaxes(np.stack(c[index]), 0, 1) for c in chunks])[:n]

    return Trials(stacked(0), stacked(1), stacked(2) if with_expected else None)


def argmax_random_ties(values: np.ndarray, rng: np.random.Generator,
                       atol: float = 0.0) -> np.ndarray:
    """Row-wise argmax over the last axis with ties broken uniformly at random.

    Args:
        values: array (batch, n).
        rng: generator for the tie-breaking.
        atol: values within `atol` of the row maximum count as ties.

    Returns:
        int64 array (batch,).
    """
    best = values >= values.max(axis=-1, keepdims=True) - atol
    return np.argmax(best * (1.0 + rng.random(values.shape)), axis=-1)
