"""Classical baselines for random tabular MDP trials (`TabularMDPRL2`).

The learning agents (PSRL, posterior-mean planning) update their posteriors from the
observation dict only: the reward of ``(s, a)`` from ``prev_reward`` and the transition
``(s, a) -> s'`` from consecutive one-hot states. The last transition of each episode
is not observed (the next observation is the reset state, as for an RL^2 agent).
Planning is finite-horizon value iteration with a time-dependent policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tf_agents.trajectories import time_step as ts

from keras_meta.rl.envs import sampler
from keras_meta.rl.envs.tabular_mdp import MDPTasks


def plan_finite_horizon(rewards: np.ndarray, transitions: np.ndarray, horizon: int) -> np.ndarray:
    """Finite-horizon value iteration for a batch of tabular MDPs.

    Args:
        rewards: array (batch, S, A), mean rewards.
        transitions: array (batch, S, A, S), transition probabilities.
        horizon: int >= 1, steps per episode.

    Returns:
        Q-values (horizon, batch, S, A); ``Q[h]`` is for step ``h`` of an episode
        (``horizon - h`` steps left).
    """
    values = np.zeros(rewards.shape[:2])
    q = np.empty((horizon,) + rewards.shape)
    for h in range(horizon - 1, -1, -1):
        q[h] = rewards + np.matmul(transitions, values[:, None, :, None])[..., 0]
        values = q[h].max(axis=-1)
    return q


def oracle_mdp_values(tasks: MDPTasks, horizon: int = 10, num_episodes: int = 1) -> np.ndarray:
    """Exact expected trial score of the optimal policy of each (known) MDP.

    Args:
        tasks: `MDPTasks`.
        horizon: int >= 1, steps per episode (start state 0).
        num_episodes: int >= 1, episodes per trial.

    Returns:
        float64 array (num_tasks,): ``num_episodes * V*_horizon(0)`` per task.

    Raises:
        ValueError: on a bad argument.
    """
    horizon = sampler.check_int("horizon", horizon, 1)
    num_episodes = sampler.check_int("num_episodes", num_episodes, 1)
    q = plan_finite_horizon(np.asarray(tasks.rewards), np.asarray(tasks.transitions), horizon)
    return num_episodes * q[0, :, 0].max(axis=-1)


class _MDPAgent:
    """Tracks states, reward sums and transition counts from the trial observations.

    Args:
        horizon: int >= 1, steps per episode of the environment played.
    """

    def __init__(self, horizon: int = 10) -> None:
        self.horizon = sampler.check_int("horizon", horizon, 1)
        self._rng = np.random.default_rng(0)
        self._q = np.zeros((self.horizon, 1, 1, 1))
        self._h = 0

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        self._rng = rng

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        obs = time_step.observation
        state = np.argmax(obs["observation"], axis=-1)
        rows = np.arange(len(state))
        if time_step.step_type[0] == ts.StepType.FIRST:
            b, s = obs["observation"].shape
            a = obs["prev_action"].shape[-1]
            self._reward_sum = np.zeros((b, s, a))
            self._visits = np.zeros((b, s, a))
            self._counts = np.zeros((b, s, a, s))
            new_episode = True
        else:
            action = np.argmax(obs["prev_action"], axis=-1)
            self._reward_sum[rows, self._state, action] += obs["prev_reward"][:, 0]
            self._visits[rows, self._state, action] += 1.0
            new_episode = bool(obs["done"][0, 0] > 0)
            if not new_episode:
                self._counts[rows, self._state, action, state] += 1.0
        if new_episode:
            self._h = 0
            self._plan()
        self._state = state
        q = self._q[min(self._h, self.horizon - 1), rows, state]
        self._h += 1
        return np.argmax(q, axis=-1).astype(np.int32)

    def _plan(self) -> None:
        """Sets ``self._q`` (horizon, batch, S, A) at the start of each episode."""


class _BayesianMDPAgent(_MDPAgent):
    """Conjugate posteriors: Normal(prior_mean, prior_var) rewards with known noise
    variance, Dirichlet(alpha) transitions.

    Args:
        horizon: int >= 1, steps per episode.
        reward_prior_mean: float, prior mean of R(s, a) (1 in the protocol).
        reward_prior_var: float > 0, prior variance of R(s, a) (1).
        noise_var: float > 0, variance of the observed reward around R(s, a) (1).
        alpha: float > 0, Dirichlet concentration of each next state (1).
    """

    def __init__(self, horizon: int = 10, *, reward_prior_mean: float = 1.0,
                 reward_prior_var: float = 1.0, noise_var: float = 1.0,
                 alpha: float = 1.0) -> None:
        super().__init__(horizon)
        for name, value in (("reward_prior_var", reward_prior_var), ("noise_var", noise_var),
                            ("alpha", alpha)):
            if not value > 0:
                raise ValueError(f"`{name}` must be > 0. Received: {name}={value}")
        self.reward_prior_mean = float(reward_prior_mean)
        self.reward_prior_var = float(reward_prior_var)
        self.noise_var = float(noise_var)
        self.alpha = float(alpha)

    def _reward_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        precision = 1.0 / self.reward_prior_var + self._visits / self.noise_var
        mean = (self.reward_prior_mean / self.reward_prior_var
                + self._reward_sum / self.noise_var) / precision
        return mean, 1.0 / precision


class PSRL(_BayesianMDPAgent):
    """Posterior sampling for RL: one MDP drawn from the posterior per episode, then
    the optimal policy of the draw (finite-horizon value iteration)."""

    def _plan(self) -> None:
        mean, var = self._reward_posterior()
        rewards = mean + np.sqrt(var) * self._rng.standard_normal(mean.shape)
        gammas = self._rng.standard_gamma(self._counts + self.alpha)
        transitions = gammas / gammas.sum(axis=-1, keepdims=True)
        self._q = plan_finite_horizon(rewards, transitions, self.horizon)


class PosteriorMeanMDP(_BayesianMDPAgent):
    """Certainty equivalence: plans each episode on the posterior-mean MDP (greedy)."""

    def _plan(self) -> None:
        mean, _ = self._reward_posterior()
        alphas = self._counts + self.alpha
        transitions = alphas / alphas.sum(axis=-1, keepdims=True)
        self._q = plan_finite_horizon(mean, transitions, self.horizon)


class OracleMDP(_MDPAgent):
    """Knows the MDP (reads the tasks): plays its optimal finite-horizon policy."""

    def begin_trial(self, tasks: MDPTasks, rng: np.random.Generator) -> None:
        self._rng = rng
        self._oracle_q = plan_finite_horizon(np.asarray(tasks.rewards),
                                             np.asarray(tasks.transitions), self.horizon)

    def _plan(self) -> None:
        self._q = self._oracle_q
