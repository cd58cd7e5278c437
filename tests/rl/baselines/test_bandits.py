"""Bandit baselines reproduce the reference table of shared/notes/meta-rl.md.

Reference (mean over 20,000 tasks at n=10, 5,000 otherwise; "UCB1 (best c)"):

| n | k | Random | Greedy | UCB1 (best c) | Thompson | Bayes-optimal |
|---|---|---|---|---|---|---|
| 10 | 5 | 4.98 | 6.57 | 6.66 | 5.84 | 6.66 |
| 10 | 10 | 4.99 | 6.58 | 6.73 | 5.56 | 6.71 |
| 10 | 50 | 5.01 | 6.61 | 6.71 | 5.15 | 6.71 |
| 100 | 5 | 50.1 | 74.8 | 78.4 | 74.9 | - |
| 100 | 10 | 50.1 | 77.7 | 83.4 | 77.1 | - |
| 100 | 50 | 49.9 | 78.2 | 84.8 | 64.5 | - |
| 500 | 5 | 250.7 | 382.2 | 407.0 | 402.4 | - |
| 500 | 10 | 250.4 | 399.6 | 439.6 | 431.1 | - |
| 500 | 50 | 250.1 | 403.5 | 457.1 | 426.5 | - |

The reference values are simulations themselves, so a value matches when
``|mean - reference| <= 3 * sqrt(se**2 + se_reference**2) + rounding``, with the
reference's standard error estimated from our sample's spread and its task count.
The reference Greedy and UCB1 break ties by the lowest arm index (``tie_break="first"``);
UCB1's best c is 0.05 at n=10 and 0.2 at n=100 and 500 (`BEST_UCB1_C`).
"""

import numpy as np
import pytest

from keras_meta.rl import (
    BayesOptimalBandit,
    BernoulliBanditRL2,
    EpsilonGreedyBandit,
    GreedyBandit,
    RandomAgent,
    ThompsonBandit,
    UCB1Bandit,
    bayes_optimal_bandit_value,
    evaluate,
    sample_bandit_tasks,
    take_tasks,
)
from keras_meta.rl.baselines.bandits import BEST_UCB1_C

REFERENCE = {  # (n, k): (random, greedy, ucb1 best c, thompson, bayes-optimal)
    (10, 5): (4.98, 6.57, 6.66, 5.84, 6.66),
    (10, 10): (4.99, 6.58, 6.73, 5.56, 6.71),
    (10, 50): (5.01, 6.61, 6.71, 5.15, 6.71),
    (100, 5): (50.1, 74.8, 78.4, 74.9, None),
    (100, 10): (50.1, 77.7, 83.4, 77.1, None),
    (100, 50): (49.9, 78.2, 84.8, 64.5, None),
    (500, 5): (250.7, 382.2, 407.0, 402.4, None),
    (500, 10): (250.4, 399.6, 439.6, 431.1, None),
    (500, 50): (250.1, 403.5, 457.1, 426.5, None),
}
# Held-out tasks per cell: enough for a small standard error, cheap in numpy.
# Thompson sampling draws k Beta variates per pull (the slow one), so it gets fewer.
NUM_TASKS = {10: 20000, 100: 5000, 500: 5000}
NUM_TASKS_THOMPSON = {10: 20000, 100: 5000, 500: 2000}


def _matches(score, reference, num_pulls):
    reference_tasks = 20000 if num_pulls == 10 else 5000
    se_reference = score.scores.std(ddof=1) / np.sqrt(reference_tasks)
    rounding = 0.005 if num_pulls == 10 else 0.05
    tolerance = 3 * np.hypot(score.stderr, se_reference) + rounding
    return abs(score.mean - reference) <= tolerance, f"{score} vs {reference} (tol {tolerance:.3f})"


@pytest.mark.parametrize("n,k", list(REFERENCE), ids=[f"n{n}-k{k}" for n, k in REFERENCE])
def test_reproduces_reference_table(n, k):
    random, greedy, ucb1, thompson, _ = REFERENCE[(n, k)]
    tasks = sample_bandit_tasks(NUM_TASKS[n], k, split="test")
    env = BernoulliBanditRL2(k, n, batch_size=NUM_TASKS[n])
    for agent, reference in [(RandomAgent(env.action_spec()), random), (GreedyBandit(), greedy),
                             (UCB1Bandit(BEST_UCB1_C[n]), ucb1)]:
        ok, message = _matches(evaluate(env, agent, tasks), reference, n)
        assert ok, f"{type(agent).__name__}: {message}"
    few = take_tasks(tasks, slice(0, NUM_TASKS_THOMPSON[n]))
    ok, message = _matches(evaluate(BernoulliBanditRL2(k, n, batch_size=NUM_TASKS_THOMPSON[n]),
                                    ThompsonBandit(), few), thompson, n)
    assert ok, f"ThompsonBandit: {message}"


@pytest.mark.parametrize("k", [5, 10, 50])
def test_bayes_optimal_value_and_policy(k):
    reference = REFERENCE[(10, k)][4]
    value = bayes_optimal_bandit_value(k, 10)
    assert abs(value - reference) <= 3 * 2.1 / np.sqrt(20000) + 0.005  # reference s.e. ~0.015
    tasks = sample_bandit_tasks(20000, k, split="test")
    score = evaluate(BernoulliBanditRL2(k, 10, batch_size=20000), BayesOptimalBandit(k, 10), tasks)
    assert abs(score.mean - value) <= 3 * score.stderr, (score, value)
    # No baseline beats the Bayes-optimal value in expectation.
    ucb = evaluate(BernoulliBanditRL2(k, 10, batch_size=20000), UCB1Bandit(0.05), tasks)
    assert ucb.mean <= value + 3 * ucb.stderr


def test_bayes_optimal_small_cases_exact():
    assert bayes_optimal_bandit_value(2, 1) == pytest.approx(0.5)
    # Two pulls: stay after a win (2/3), switch after a loss (1/2): 0.5 + 0.5 * 2/3 + 0.5 * 1/2.
    assert bayes_optimal_bandit_value(2, 2) == pytest.approx(0.5 + (2 / 3 + 1 / 2) / 2)
    assert bayes_optimal_bandit_value(5, 10) == pytest.approx(6.65999, abs=1e-4)


def test_tie_breaking_and_epsilon_limits():
    tasks = sample_bandit_tasks(20000, 10, split="test")
    env = BernoulliBanditRL2(10, 10, batch_size=20000)
    first = evaluate(env, GreedyBandit(), tasks)
    rand = evaluate(env, GreedyBandit(tie_break="random"), tasks)
    paired = rand.scores - first.scores  # same tasks: a paired comparison
    assert paired.mean() > 3 * paired.std() / np.sqrt(len(paired))  # 6.69 vs 6.61 exactly
    np.testing.assert_array_equal(evaluate(env, EpsilonGreedyBandit(0.0), tasks).scores,
                                  first.scores)
    always_random = evaluate(env, EpsilonGreedyBandit(1.0), tasks)
    assert abs(always_random.mean - 5.0) < 3 * always_random.stderr
    mid = evaluate(env, EpsilonGreedyBandit(0.1), tasks)
    assert always_random.mean < mid.mean < first.mean


@pytest.mark.parametrize("make,match", [
    (lambda: UCB1Bandit(-1.0), r"`c` must be >= 0. Received: c=-1.0"),
    (lambda: EpsilonGreedyBandit(1.5), r"`epsilon` must be in \[0, 1\]. Received: epsilon=1.5"),
    (lambda: GreedyBandit(tie_break="last"),
     r"`tie_break` must be one of \('first', 'random'\). Received: tie_break='last'"),
    (lambda: BayesOptimalBandit(1), r"`num_arms` must be an integer >= 2. Received: num_arms=1"),
    (lambda: bayes_optimal_bandit_value(5, 0),
     r"`num_pulls` must be an integer >= 1. Received: num_pulls=0"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
