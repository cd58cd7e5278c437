"""Meta-RL learners (Keras models): RL^2 and MAML-RL, with in-graph rollouts.

Rollouts run inside compiled graphs: each task family's numpy `TrialEnvironment` has a
pure-TensorFlow twin (`tf_envs`) fused with the policy in one `tf.while_loop`
(`rollout`); the numpy environments stay the reference and the evaluation path
(`RL2Agent` plays a trained policy there, for `keras_meta.rl.evaluate`).
"""

from keras_meta.rl.learners import distributions, ppo, returns, tf_envs, trpo
from keras_meta.rl.learners.base import RLLearner
from keras_meta.rl.learners.maml_rl import MAMLRL, MAMLRLAgent, TaskData, mlp_policy
from keras_meta.rl.learners.rl2 import RL2, RL2Agent, RL2Policy
from keras_meta.rl.learners.rollout import Rollout, rollout, task_batch, trial_dataset
from keras_meta.rl.learners.tf_envs import (
    BanditDynamics,
    MDPDynamics,
    NavigationDynamics,
    TrialDynamics,
    TrialState,
)

__all__ = [
    "MAMLRL",
    "RL2",
    "BanditDynamics",
    "MAMLRLAgent",
    "MDPDynamics",
    "NavigationDynamics",
    "RL2Agent",
    "RL2Policy",
    "RLLearner",
    "Rollout",
    "TaskData",
    "TrialDynamics",
    "TrialState",
    "distributions",
    "mlp_policy",
    "ppo",
    "returns",
    "rollout",
    "task_batch",
    "tf_envs",
    "trial_dataset",
    "trpo",
]
