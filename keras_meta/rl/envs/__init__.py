"""Meta-RL task families as batched tf-agents `PyEnvironment`s, and their task samplers."""

from keras_meta.rl.envs.bandits import BanditTasks, BernoulliBanditRL2, sample_bandit_tasks
from keras_meta.rl.envs.navigation import (
    Navigation2DMAML,
    NavigationTasks,
    sample_navigation_tasks,
)
from keras_meta.rl.envs.sampler import (
    SPLITS,
    TaskStream,
    concat_tasks,
    draw_tasks,
    num_tasks,
    take_tasks,
)
from keras_meta.rl.envs.tabular_mdp import MDPTasks, TabularMDPRL2, sample_mdp_tasks
from keras_meta.rl.envs.trial import TrialEnvironment

__all__ = [
    "SPLITS",
    "BanditTasks",
    "BernoulliBanditRL2",
    "MDPTasks",
    "Navigation2DMAML",
    "NavigationTasks",
    "TabularMDPRL2",
    "TaskStream",
    "TrialEnvironment",
    "concat_tasks",
    "draw_tasks",
    "num_tasks",
    "sample_bandit_tasks",
    "sample_mdp_tasks",
    "sample_navigation_tasks",
    "take_tasks",
]
