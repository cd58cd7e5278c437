"""Classical baselines of the meta-RL task families, evaluated on fixed tasks."""

from keras_meta.rl.baselines.bandits import (
    BayesOptimalBandit,
    EpsilonGreedyBandit,
    GreedyBandit,
    ThompsonBandit,
    UCB1Bandit,
    bayes_optimal_bandit_value,
)
from keras_meta.rl.baselines.evaluation import (
    RandomAgent,
    Score,
    TrialAgent,
    Trials,
    evaluate,
    play,
)
from keras_meta.rl.baselines.navigation import GoalOracle, StandStill
from keras_meta.rl.baselines.tabular_mdp import (
    PSRL,
    OracleMDP,
    PosteriorMeanMDP,
    oracle_mdp_values,
    plan_finite_horizon,
)

__all__ = [
    "PSRL",
    "BayesOptimalBandit",
    "EpsilonGreedyBandit",
    "GoalOracle",
    "GreedyBandit",
    "OracleMDP",
    "PosteriorMeanMDP",
    "RandomAgent",
    "Score",
    "StandStill",
    "ThompsonBandit",
    "TrialAgent",
    "Trials",
    "UCB1Bandit",
    "bayes_optimal_bandit_value",
    "evaluate",
    "oracle_mdp_values",
    "plan_finite_horizon",
    "play",
]
