"""Meta-reinforcement learning: task families (tf-agents environments) and baselines.

The environments and baselines need numpy and tf-agents (for specs, time steps and
`PyEnvironment`) only; the learners (`keras_meta.rl.learners`: RL^2, MAML-RL) build on
`keras_meta.core` and `keras_meta.update_rules`. Importing it silences the harmless import-time
noise of tf-agents, TensorFlow Probability and gym (distutils deprecation warnings and
gym's "unmaintained" notice), and nothing else.
"""

import contextlib
import io
import sys
import warnings


def _import_tf_agents_quietly() -> None:
    """Imports gym and tf-agents with their known import-time warnings filtered."""
    if "tf_agents.environments" in sys.modules:
        return
    captured = io.StringIO()
    with warnings.catch_warnings():
        for module in ("tf_agents", "tensorflow_probability", "gym"):
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    module=rf"{module}(\.|$)")
        if "gym" not in sys.modules:
            with contextlib.redirect_stderr(captured):
                import gym  # noqa: F401  (prints its "unmaintained" notice on stderr)
        import tf_agents.environments  # noqa: F401
    text = captured.getvalue()
    if text:
        try:
            import gym
            import gym_notices.notices

            notice = gym_notices.notices.notices.get(gym.__version__, "")
        except Exception:  # the notice is optional: keep the rest of stderr
            notice = ""
        text = text.replace(notice + "\n", "", 1) if notice else text
        if text.strip():
            sys.stderr.write(text)


_import_tf_agents_quietly()

from keras_meta.rl import baselines, envs  # noqa: E402
from keras_meta.rl.baselines import (  # noqa: E402
    PSRL,
    BayesOptimalBandit,
    EpsilonGreedyBandit,
    GoalOracle,
    GreedyBandit,
    OracleMDP,
    PosteriorMeanMDP,
    RandomAgent,
    Score,
    StandStill,
    ThompsonBandit,
    TrialAgent,
    Trials,
    UCB1Bandit,
    bayes_optimal_bandit_value,
    evaluate,
    oracle_mdp_values,
    plan_finite_horizon,
    play,
)
from keras_meta.rl.envs import (  # noqa: E402
    SPLITS,
    BanditTasks,
    BernoulliBanditRL2,
    MDPTasks,
    Navigation2DMAML,
    NavigationTasks,
    TabularMDPRL2,
    TaskStream,
    TrialEnvironment,
    concat_tasks,
    draw_tasks,
    num_tasks,
    sample_bandit_tasks,
    sample_mdp_tasks,
    sample_navigation_tasks,
    take_tasks,
)

__all__ = [
    "PSRL",
    "SPLITS",
    "BanditTasks",
    "BayesOptimalBandit",
    "BernoulliBanditRL2",
    "EpsilonGreedyBandit",
    "GoalOracle",
    "GreedyBandit",
    "MDPTasks",
    "Navigation2DMAML",
    "NavigationTasks",
    "OracleMDP",
    "PosteriorMeanMDP",
    "RandomAgent",
    "Score",
    "StandStill",
    "TabularMDPRL2",
    "TaskStream",
    "ThompsonBandit",
    "TrialAgent",
    "TrialEnvironment",
    "Trials",
    "UCB1Bandit",
    "baselines",
    "bayes_optimal_bandit_value",
    "concat_tasks",
    "draw_tasks",
    "envs",
    "evaluate",
    "num_tasks",
    "oracle_mdp_values",
    "plan_finite_horizon",
    "play",
    "sample_bandit_tasks",
    "sample_mdp_tasks",
    "sample_navigation_tasks",
    "take_tasks",
]
