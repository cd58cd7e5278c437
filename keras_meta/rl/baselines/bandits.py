"""Classical baselines for Bernoulli bandit trials (`BernoulliBanditRL2`).

All agents keep per-arm counts updated from the observation dict (``prev_action``,
``prev_reward``), the same information an RL^2 agent gets, and use the Beta(1, 1)
prior's posterior mean ``(wins + 1) / (pulls + 2)`` as their estimate of an arm.

Tie-breaking matters here: an arm at 1 win / 1 loss has the prior's mean 0.5, like a
fresh arm. ``tie_break="first"`` (the default, as ``numpy.argmax``) takes the lowest
arm index, hence the already pulled arm; this is the convention of the reference
table in ``shared/notes/meta-rl.md`` (Greedy 6.57 at k=5, n=10; 77.7 at k=10, n=100).
``tie_break="random"`` picks among tied arms uniformly and is stronger
(6.63 and 79.3 there), because it explores fresh arms more.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from tf_agents.trajectories import time_step as ts

from keras_meta.rl.baselines.evaluation import argmax_random_ties
from keras_meta.rl.envs import sampler

_TIE_BREAKS = ("first", "random")

#: UCB1 exploration constant reproducing the reference "UCB1 (best c)" per number of pulls.
BEST_UCB1_C: dict[int, float] = {10: 0.05, 100: 0.2, 500: 0.2}


class _BanditAgent:
    """Counts pulls and wins per arm from the trial observations.

    Args:
        tie_break: "first" (lowest arm index) or "random".
    """

    def __init__(self, tie_break: str = "first") -> None:
        if tie_break not in _TIE_BREAKS:
            raise ValueError(
                f"`tie_break` must be one of {_TIE_BREAKS}. Received: tie_break={tie_break!r}")
        self.tie_break = tie_break
        self._rng = np.random.default_rng(0)
        self._pulls = np.zeros((1, 2))
        self._wins = np.zeros((1, 2))
        self._t = 0

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        self._rng = rng

    def _update(self, time_step: ts.TimeStep) -> None:
        obs = time_step.observation
        pulled = obs["prev_action"].astype(np.float64)
        if time_step.step_type[0] == ts.StepType.FIRST:
            self._pulls = np.zeros_like(pulled)
            self._wins = np.zeros_like(pulled)
            self._t = 0
            return
        self._pulls += pulled
        self._wins += pulled * obs["prev_reward"]
        self._t += 1

    def _posterior_mean(self) -> np.ndarray:
        return (self._wins + 1.0) / (self._pulls + 2.0)

    def _argmax(self, values: np.ndarray) -> np.ndarray:
        if self.tie_break == "first":
            return np.argmax(values, axis=-1)
        return argmax_random_ties(values, self._rng, atol=1e-12)

    def _random_arms(self) -> np.ndarray:
        b, k = self._pulls.shape
        return self._rng.integers(0, k, b)

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        self._update(time_step)
        return self._choose().astype(np.int32)

    def _choose(self) -> np.ndarray:
        raise NotImplementedError


class GreedyBandit(_BanditAgent):
    """Pulls the arm of highest posterior mean ``(wins + 1) / (pulls + 2)``.

    Args:
        tie_break: "first" (lowest arm index, the reference convention) or "random".

    Raises:
        ValueError: on a bad `tie_break`.
    """

    def _choose(self) -> np.ndarray:
        return self._argmax(self._posterior_mean())


class EpsilonGreedyBandit(_BanditAgent):
    """Greedy, except a uniformly random arm with probability `epsilon`.

    Args:
        epsilon: float in [0, 1].
        tie_break: "first" (lowest arm index) or "random".

    Raises:
        ValueError: if `epsilon` is not in [0, 1] or on a bad `tie_break`.
    """

    def __init__(self, epsilon: float = 0.1, tie_break: str = "first") -> None:
        super().__init__(tie_break)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in [0, 1]. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)

    def _choose(self) -> np.ndarray:
        greedy = self._argmax(self._posterior_mean())
        explore = self._rng.random(len(greedy)) < self.epsilon
        return np.where(explore, self._random_arms(), greedy)


class UCB1Bandit(_BanditAgent):
    """UCB1 with an exploration constant, on Beta(1, 1) posterior-mean estimates.

    Pulls the arm maximising ``(wins + 1) / (pulls + 2) + c * sqrt(log(t + 1) / (pulls + 1))``
    where ``t`` is the number of pulls so far; unpulled arms are valued by the prior
    (0.5 plus the bonus) instead of being forced first, so short trials with many arms
    are not spent on one pull of each arm. ``c = 0`` is `GreedyBandit`.

    The best constant depends on the horizon: the "UCB1 (best c)" column of the
    reference table in ``shared/notes/meta-rl.md`` is reproduced by ``c = 0.05`` at
    n=10 (a flat optimum over 0.02-0.1; c=0.2 loses 0.05-0.07 there) and ``c = 0.2``
    at n=100 and n=500, with ``tie_break="first"`` (see `BEST_UCB1_C`). The optimum
    is sharp for many arms: at k=50, n=500, c=0.18 scores 460, c=0.22 only 441.

    Args:
        c: float >= 0, the exploration constant.
        tie_break: "first" (lowest arm index) or "random".

    Raises:
        ValueError: if `c` is negative or on a bad `tie_break`.
    """

    def __init__(self, c: float = 0.2, tie_break: str = "first") -> None:
        super().__init__(tie_break)
        if not c >= 0.0:
            raise ValueError(f"`c` must be >= 0. Received: c={c}")
        self.c = float(c)

    def scores(self, pulls, wins, t, math=np):
        """The value UCB1 maximises, per arm, from each arm's `pulls` and `wins` and the
        pulls `t` so far (broadcast against them). `math` supplies ``sqrt`` and ``log``:
        numpy by default, ``tf.math`` to compute the same choices inside a graph."""
        bonus = self.c * math.sqrt(math.log(t + 1.0) / (pulls + 1.0))
        return (wins + 1.0) / (pulls + 2.0) + bonus

    def _choose(self) -> np.ndarray:
        return self._argmax(self.scores(self._pulls, self._wins, self._t))


class ThompsonBandit(_BanditAgent):
    """Thompson sampling: pulls the argmax of one draw from each arm's Beta posterior."""

    def _choose(self) -> np.ndarray:
        draw = self._rng.beta(self._wins + 1.0, self._pulls - self._wins + 1.0)
        return np.argmax(draw, axis=-1)


# --------------------------------------------------------------------- Bayes-optimal
_State = tuple  # sorted tuple of (wins, losses) of the pulled arms


@functools.cache
def _bayes_tables(num_arms: int, num_pulls: int) -> dict[_State, tuple[float, tuple[int, int]]]:
    """Exact dynamic programme over Beta(1, 1) beliefs; arms are exchangeable.

    Returns:
        A dict from every reachable belief state (sorted tuple of the pulled arms'
        ``(wins, losses)``) to ``(value, best)``: the optimal expected reward of the
        remaining pulls and the ``(wins, losses)`` of an arm to pull (``(0, 0)``: a new arm).
    """
    table: dict[_State, tuple[float, tuple[int, int]]] = {}

    def replace(state: _State, old: tuple[int, int], new: tuple[int, int]) -> _State:
        items = list(state)
        if old != (0, 0):  # (0, 0) is a new arm: pulled arms have wins + losses >= 1
            items.remove(old)
        items.append(new)
        return tuple(sorted(items))

    def value(state: _State) -> float:
        if state in table:
            return table[state][0]
        remaining = num_pulls - sum(w + f for w, f in state)
        if remaining == 0:
            table[state] = (0.0, (0, 0))
            return 0.0
        choices = sorted(set(state))
        if len(state) < num_arms:
            choices.append((0, 0))
        best_q, best = -1.0, (0, 0)
        for w, f in choices:
            p = (w + 1.0) / (w + f + 2.0)
            q = (p * (1.0 + value(replace(state, (w, f), (w + 1, f))))
                 + (1.0 - p) * value(replace(state, (w, f), (w, f + 1))))
            if q > best_q + 1e-12:
                best_q, best = q, (w, f)
        table[state] = (best_q, best)
        return best_q

    value(())
    return table


def bayes_optimal_bandit_value(num_arms: int, num_pulls: int = 10) -> float:
    """Exact expected trial score of the Bayes-optimal policy (arms' means ~ U[0, 1]).

    Dynamic programming over the Beta(1, 1) posteriors of the arms, using that the arms
    are exchangeable (a belief state is the multiset of the pulled arms' win/loss
    counts). Feasible for ``num_pulls`` up to about 12.

    Args:
        num_arms: int >= 2.
        num_pulls: int >= 1, pulls per trial.

    Returns:
        The optimal expected total reward of a trial.

    Raises:
        ValueError: on a bad argument.
    """
    num_arms = sampler.check_int("num_arms", num_arms, 2)
    num_pulls = sampler.check_int("num_pulls", num_pulls, 1)
    return _bayes_tables(num_arms, num_pulls)[()][0]


class BayesOptimalBandit(_BanditAgent):
    """Plays the Bayes-optimal policy of `bayes_optimal_bandit_value` (small `num_pulls`).

    Args:
        num_arms: int >= 2, arms of the trials it plays.
        num_pulls: int >= 1, pulls per trial (the policy depends on the horizon).

    Raises:
        ValueError: on a bad argument.
    """

    def __init__(self, num_arms: int, num_pulls: int = 10) -> None:
        super().__init__("random")
        self.num_arms = sampler.check_int("num_arms", num_arms, 2)
        self.num_pulls = sampler.check_int("num_pulls", num_pulls, 1)
        self._table = _bayes_tables(self.num_arms, self.num_pulls)
        self._code_base = self.num_pulls + 1

    def _choose(self) -> np.ndarray:
        wins = self._wins.astype(np.int64)
        losses = self._pulls.astype(np.int64) - wins
        if self._t >= self.num_pulls:  # the trial is over; any arm
            return self._random_arms()
        base = self._code_base
        # Arm code: 0 for an unpulled arm, else 1 + wins * base + losses.
        codes = np.where(self._pulls > 0, 1 + wins * base + losses, 0)
        keys = -np.sort(-codes, axis=-1)[:, :min(self.num_arms, self.num_pulls)]
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        chosen = np.empty(len(unique), np.int64)
        for i, key in enumerate(unique):
            state = tuple(sorted(divmod(int(c) - 1, base) for c in key if c > 0))
            w, f = self._table[state][1]
            chosen[i] = 0 if (w, f) == (0, 0) else 1 + w * base + f
        target = chosen[inverse.reshape(-1)]
        return argmax_random_ties((codes == target[:, None]).astype(np.float64), self._rng)
