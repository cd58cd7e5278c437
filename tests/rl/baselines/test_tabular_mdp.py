"""Tabular MDP baselines reproduce the reference values of shared/notes/meta-rl.md.

Reference (2,000 MDPs; mean trial score):

| n | Random | PSRL | posterior-mean planning | oracle (knows the MDP) |
|---|---|---|---|---|
| 10 | 100.4 | 134.3 | 150.1 | 218.0 |
| 25 | 250.5 | 404.3 | 425.6 | 545.2 |
| 50 | 499.9 | 902.4 | 899.0 | 1090.6 |
| 100 | 1001.1 | 1942.7 | 1856.4 | 2182.1 |

Checked here at n=10 and n=25 on 2,000 held-out MDPs (n=50 and 100 are in
benchmarks/rl_baselines.py): ``|mean - reference| <= 3 * sqrt(se**2 + se_reference**2)``
with the reference's standard error estimated from our spread over its 2,000 MDPs.
"""

import numpy as np
import pytest

from keras_meta.rl import (
    PSRL,
    MDPTasks,
    OracleMDP,
    PosteriorMeanMDP,
    RandomAgent,
    TabularMDPRL2,
    evaluate,
    oracle_mdp_values,
    sample_mdp_tasks,
)
from keras_meta.rl.baselines.tabular_mdp import plan_finite_horizon

REFERENCE = {  # n: (random, psrl, posterior mean, oracle)
    10: (100.4, 134.3, 150.1, 218.0),
    25: (250.5, 404.3, 425.6, 545.2),
}
NUM_TASKS = 2000


@pytest.mark.parametrize("n", list(REFERENCE))
def test_reproduces_reference_values(n):
    tasks = sample_mdp_tasks(NUM_TASKS, split="test")
    env = TabularMDPRL2(n, batch_size=NUM_TASKS)
    agents = [RandomAgent(env.action_spec()), PSRL(), PosteriorMeanMDP(), OracleMDP()]
    for agent, reference in zip(agents, REFERENCE[n]):
        score = evaluate(env, agent, tasks)
        se_reference = score.scores.std(ddof=1) / np.sqrt(2000)
        tolerance = 3 * np.hypot(score.stderr, se_reference) + 0.05
        assert abs(score.mean - reference) <= tolerance, (type(agent).__name__, score, reference)


def test_oracle_simulation_matches_exact_value():
    tasks = sample_mdp_tasks(NUM_TASKS, split="test")
    exact = oracle_mdp_values(tasks, horizon=10, num_episodes=10)
    score = evaluate(TabularMDPRL2(10, batch_size=NUM_TASKS), OracleMDP(), tasks, seed=5)
    # Same tasks: the difference is only reward and transition noise.
    assert abs(score.mean - exact.mean()) <= 3 * (score.scores - exact).std() / np.sqrt(NUM_TASKS)


def test_value_iteration_on_a_chain():
    s, a = 4, 2
    transitions = np.zeros((1, s, a, s))
    transitions[0, np.arange(s), 0, np.arange(s)] = 1.0  # action 0 stays
    transitions[0, np.arange(s), 1, np.minimum(np.arange(s) + 1, s - 1)] = 1.0  # 1 moves right
    rewards = np.zeros((1, s, a))
    rewards[0, s - 1, 0] = 1.0  # only staying in the last state pays
    q = plan_finite_horizon(rewards, transitions, horizon=5)
    assert q.shape == (5, 1, s, a)
    # From state 0 with 5 steps: 3 moves right, then 2 paid steps.
    assert q[0, 0, 0].max() == 2.0
    values = oracle_mdp_values(MDPTasks(rewards, transitions), horizon=5, num_episodes=3)
    np.testing.assert_allclose(values, [6.0])


@pytest.mark.parametrize("make,match", [
    (lambda: PSRL(horizon=0), r"`horizon` must be an integer >= 1. Received: horizon=0"),
    (lambda: PSRL(noise_var=0.0), r"`noise_var` must be > 0. Received: noise_var=0.0"),
    (lambda: PosteriorMeanMDP(alpha=-1.0), r"`alpha` must be > 0. Received: alpha=-1.0"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
