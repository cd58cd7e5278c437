"""Meta-RL run configs: what ``keras-meta train`` / ``evaluate`` build for RL^2 and MAML-RL.

A meta-RL config names a task family (``env``) where a supervised one names ``tasks`` and a
``model``::

    name: rl2-bandits-k5-n10
    seed: 0
    env: {name: bernoulli_bandit, num_arms: 5, num_pulls: 10}
    learner: {name: rl2, hidden_units: 64, discount: 1.0, gae_lambda: 0.3}
    optimizer: {name: adam, learning_rate: 3.0e-3, final_learning_rate: 0.0}
    training: {batch_size: 1024, iterations: 400, iterations_per_epoch: 50}
    evaluation: {tasks: 1000, baselines: [random, greedy, {name: ucb1, c: 0.2}]}

``env`` holds the family environment's arguments and ``learner`` the learner's;
``training.batch_size`` counts the tasks of one iteration (RL^2: trials; MAML-RL: the
meta-batch of tasks, each played ``trajectories_per_task`` times);
``optimizer.final_learning_rate`` (optional) decays the learning rate linearly over the
training iterations. `keras_meta.runs` trains and evaluates it into the same run directory
as a supervised run; ``results.json`` holds the learner's and the baselines' scores on the
same held-out tasks of the test split (``evaluation.seed`` picks them, 0 for every run by
default, so runs compare). RL^2 plays one trial per task, with sampled and with most likely
actions. MAML-RL is scored as in the MAML paper: the mean return of the trajectories sampled
after 0, 1, ... ``evaluation.adaptation_steps`` adaptation steps, each step on
``evaluation.trajectories_per_task`` fresh trajectories with the step sizes of
``evaluation.update_rule`` (both default to the learner's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from keras_meta import update_rules
from keras_meta._validation import check_int
from keras_meta.rl import baselines as rl_baselines
from keras_meta.rl import envs
from keras_meta.rl.baselines import Score
from keras_meta.rl.learners import MAMLRL, RL2, RL2Agent, RLLearner

#: Task families by config name: the numpy environment (the evaluation's; the learner
#: builds its in-graph twin from it) whose arguments ``env`` holds.
ENVS = {"bernoulli_bandit": envs.BernoulliBanditRL2, "tabular_mdp": envs.TabularMDPRL2,
        "navigation_2d": envs.Navigation2DMAML}
LEARNERS = {"rl2": RL2, "maml_rl": MAMLRL}
#: How results name each learner.
LEARNER_LABELS = {"rl2": "RL^2", "maml_rl": "MAML-RL"}
#: Baselines by config name: the class and the families it plays.
BASELINES = {
    "random": (rl_baselines.RandomAgent, tuple(ENVS)),
    "greedy": (rl_baselines.GreedyBandit, ("bernoulli_bandit",)),
    "epsilon_greedy": (rl_baselines.EpsilonGreedyBandit, ("bernoulli_bandit",)),
    "ucb1": (rl_baselines.UCB1Bandit, ("bernoulli_bandit",)),
    "thompson": (rl_baselines.ThompsonBandit, ("bernoulli_bandit",)),
    "bayes_optimal": (rl_baselines.BayesOptimalBandit, ("bernoulli_bandit",)),
    "psrl": (rl_baselines.PSRL, ("tabular_mdp",)),
    "posterior_mean": (rl_baselines.PosteriorMeanMDP, ("tabular_mdp",)),
    "oracle": (rl_baselines.OracleMDP, ("tabular_mdp",)),
    "stand_still": (rl_baselines.StandStill, ("navigation_2d",)),
    "goal_oracle": (rl_baselines.GoalOracle, ("navigation_2d",)),
}
DEFAULTS = {
    "name": "run",
    "seed": 0,
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
    "training": {"batch_size": 256, "iterations": 100, "iterations_per_epoch": 10,
                 "validation_tasks": 0},
    "evaluation": {"tasks": 1000, "seed": 0, "batch_size": 500, "baselines": ["random"]},
}
#: The panels of each learner's learning curve (they log more diagnostics in history.csv).
CURVE_METRICS = {"rl2": ("trial_return", "entropy", "policy_loss", "value_loss"),
                 "maml_rl": ("return_before", "return_after", "entropy_after", "kl")}
#: Evaluation settings of MAML-RL's adaptation (RL^2 adapts within its trials).
ADAPTATION_KEYS = ("adaptation_steps", "trajectories_per_task", "update_rule")


def validate(config: dict) -> None:
    """Raises ValueError naming the config key that is missing or wrong."""
    for section in ("env", "learner"):
        if not isinstance(config.get(section), dict) or "name" not in config[section]:
            raise ValueError(f"A meta-RL config needs an `{section}` section with a `name`.")
    for key in ("tasks", "model", "loss"):
        if key in config:
            raise ValueError(f"A meta-RL config (it names an `env`) takes no `{key}` section: "
                             "the family fixes the tasks and the learner its policy.")
    env = config["env"]["name"]
    if env not in ENVS:
        raise ValueError(f"Unknown env {env!r}; expected one of {sorted(ENVS)}.")
    learner = config["learner"]["name"]
    if learner not in LEARNERS:
        raise ValueError(f"Unknown meta-RL learner {learner!r}; expected one of "
                         f"{sorted(LEARNERS)}.")
    training = config["training"]
    for key in ("batch_size", "iterations", "iterations_per_epoch"):
        check_int(f"training.{key}", training.get(key), 1)
    check_int("training.validation_tasks", training.get("validation_tasks"), 0)
    if training["iterations"] % training["iterations_per_epoch"]:
        raise ValueError("`training.iterations` must be a multiple of "
                         "`training.iterations_per_epoch` (checkpoints are written per epoch). "
                         f"Received: {training['iterations']} and "
                         f"{training['iterations_per_epoch']}")
    evaluation = config["evaluation"]
    for key, minimum in (("tasks", 1), ("seed", 0), ("batch_size", 1)):
        check_int(f"evaluation.{key}", evaluation.get(key), minimum)
    adaptation = [k for k in ADAPTATION_KEYS if k in evaluation]
    if learner == "rl2" and adaptation:
        raise ValueError(f"`evaluation.{adaptation[0]}`: RL^2 adapts within its trials; "
                         "it takes no adaptation settings.")
    if evaluation.get("adaptation_steps") is not None:
        check_int("evaluation.adaptation_steps", evaluation["adaptation_steps"], 0)
    if evaluation.get("trajectories_per_task") is not None:
        check_int("evaluation.trajectories_per_task", evaluation["trajectories_per_task"], 1)
    if evaluation.get("update_rule") is not None:
        try:  # a bad rule fails here, not when the evaluation builds it after training
            update_rules.get(evaluation["update_rule"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"`evaluation.update_rule`: {e}") from None
    if not isinstance(evaluation.get("baselines"), list):
        raise ValueError("`evaluation.baselines` must be a list of baseline names or "
                         "{name: ..., <argument>: ...} mappings. Received: "
                         f"{evaluation.get('baselines')!r}")
    try:  # bad family or baseline arguments fail here, not after training
        family = build_env(config)
    except TypeError as e:
        raise ValueError(f"`env`: {e}") from None
    for spec in evaluation["baselines"]:
        _baseline(spec, config, family)


def build_env(config: dict, **overrides) -> envs.TrialEnvironment:
    """The family's numpy environment with the config's arguments (and `overrides`)."""
    spec = {**config["env"], **overrides}
    return ENVS[spec.pop("name")](**spec)


def build_learner(config: dict) -> RLLearner:
    """The compiled learner of `config` (optimizer built), its weights seeded by
    ``config["seed"]``."""
    keras.utils.set_random_seed(int(config["seed"]))
    spec = dict(config["learner"])
    try:
        learner = LEARNERS[spec.pop("name")](build_env(config), **spec)
    except (TypeError, ValueError) as e:  # an unknown or bad argument: say which section
        raise ValueError(f"`learner`: {e}") from None
    optimizer = dict(config["optimizer"])
    final = optimizer.pop("final_learning_rate", None)
    if final is not None:  # linear over the run, counted in optimizer updates
        if not learner.updates_per_iteration:
            raise ValueError("`optimizer.final_learning_rate`: this learner's outer step "
                             "(TRPO) does not use the optimizer, so there is no learning rate "
                             "to decay.")
        optimizer["learning_rate"] = keras.optimizers.schedules.PolynomialDecay(
            float(optimizer["learning_rate"]),
            config["training"]["iterations"] * learner.updates_per_iteration, float(final))
    learner.compile(keras.optimizers.get({"class_name": optimizer.pop("name"),
                                          "config": optimizer}))
    # Built now, so that every save holds the same optimizer state: a TRPO step never builds
    # it, while BackupAndRestore builds it before restoring.
    learner.optimizer.build(learner.policy.trainable_variables)
    return learner


def curve_metrics(config: dict) -> tuple[str, ...]:
    """The panels of the learning curve of `config`'s learner."""
    return CURVE_METRICS[config["learner"]["name"]]


def training_data(config: dict, learner: RLLearner
                  ) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """``(train, validation)`` datasets of tasks for `learner.fit`.

    The training stream starts at the iteration the learner has reached when `fit` begins
    iterating (`RLLearner.meta_iterations`, restored by `keras.callbacks.BackupAndRestore`).
    """
    training, seed = config["training"], int(config["seed"])

    def start() -> int:
        return int(learner.meta_iterations.numpy())

    train = learner.dataset(training["batch_size"], seed=seed, start=start)
    validation = None
    if training["validation_tasks"]:
        validation = learner.dataset(training["validation_tasks"], seed=seed,
                                     split="validation").take(1).apply(
            tf.data.experimental.assert_cardinality(1))  # one batch: the same tasks each epoch
    return train, validation


@dataclass
class RLResult:
    """Scores of a meta-RL learner and its baselines on the same held-out tasks.

    Attributes:
        scores: ``{agent: Score}``, the learner first (RL^2: sampled actions, then its
            most likely action; MAML-RL: after 0, 1, ... adaptation steps), then the
            baselines in config order.
        protocol: what was scored (family, split, tasks, seed, score definition).
    """

    scores: dict[str, Score]
    protocol: dict[str, Any] = field(default_factory=dict)
    #: The learner's entries of `scores` (MAML-RL: one per adaptation step, in order).
    learner_keys: list[str] = field(default_factory=list)

    def to_json(self, path: str | Path) -> None:
        data = {"protocol": self.protocol,
                "scores": {k: {"mean": s.mean, "stderr": s.stderr}
                           for k, s in self.scores.items()}}
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    def __str__(self) -> str:
        width = max(len(k) for k in self.scores)
        head = (f"{self.protocol.get('tasks')} held-out tasks of {self.protocol.get('env')} "
                f"(test split, seed {self.protocol.get('seed')}); "
                + ("return after each number of adaptation steps"
                   if "adaptation_steps" in self.protocol else "trial return")
                + ", mean ± s.e.")
        rows = [f"  {k:<{width}}  {s.mean:9.3f} ± {s.stderr:.3f}" for k, s in self.scores.items()]
        return "\n".join([head, *rows])


def evaluate(learner: RLLearner, config: dict, *, tasks: int | None = None,
             steps: int | None = None) -> RLResult:
    """Plays the learner and the config's baselines on the same held-out test tasks.

    Args:
        learner: the trained learner.
        config: the run's config.
        tasks: number of test tasks (default ``evaluation.tasks``).
        steps: MAML-RL only: adaptation steps to score (default
            ``evaluation.adaptation_steps``, else the learner's ``inner_steps``).

    Returns:
        An `RLResult`.

    Raises:
        ValueError: on a bad `tasks` or `steps`.
    """
    evaluation = config["evaluation"]
    count = check_int("tasks", tasks if tasks is not None else evaluation["tasks"], 1)
    seed = int(evaluation["seed"])
    block = min(count, int(evaluation["batch_size"]))
    env = build_env(config, batch_size=block, seed=seed)
    held_out = env.sample_tasks(count, split="test")
    name = LEARNER_LABELS[config["learner"]["name"]]
    protocol = {"env": config["env"], "learner": name, "split": "test", "tasks": count,
                "seed": seed, "config": config.get("name")}
    if isinstance(learner, MAMLRL):
        scores, settings = _adaptation_scores(learner, config, count, block, steps, name)
        protocol.update(settings, score=(
            "mean undiscounted return of the trajectories sampled after each number of "
            "adaptation steps, averaged over tasks"))
    else:
        if steps is not None:
            raise ValueError("`steps`: an RL^2 run adapts within its trials; it takes no "
                             "adaptation steps (use `tasks` for the number of test tasks).")
        scores = {f"{name}, sampled actions": rl_baselines.evaluate(
                      env, RL2Agent(learner), held_out, seed=seed),
                  f"{name}, most likely action": rl_baselines.evaluate(
                      env, RL2Agent(learner, deterministic=True), held_out, seed=seed)}
        protocol["score"] = "undiscounted total reward of one trial per task"
    learner_keys = list(scores)
    for spec in evaluation["baselines"]:
        label, agent = _baseline(spec, config, env)
        scores[label] = rl_baselines.evaluate(env, agent, held_out, seed=seed)
    return RLResult(scores, protocol, learner_keys)


def _adaptation_scores(learner: MAMLRL, config: dict, count: int, block: int,
                       steps: int | None, name: str) -> tuple[dict[str, Score], dict]:
    """MAML-RL's held-out returns after 0..`steps` adaptation steps, in blocks of tasks."""
    evaluation = config["evaluation"]
    steps = evaluation.get("adaptation_steps") if steps is None else steps
    steps = learner.inner_steps if steps is None else check_int("steps", steps, 0)
    settings = learner.get_config()
    for key in ("trajectories_per_task", "update_rule"):
        if evaluation.get(key) is not None:
            settings[key] = evaluation[key]
    # The MAML paper adapts at test on more trajectories (and smaller later steps) than at
    # training: a copy of the learner with the evaluation's settings does the adapting.
    evaluator = MAMLRL.from_config(settings)
    evaluator.policy.set_weights(learner.policy.get_weights())
    if evaluation.get("update_rule") is None:  # learned step sizes are meta-trained too
        evaluator.update_rule.set_weights(learner.update_rule.get_weights())
    seed = int(evaluation["seed"])
    tasks = build_env(config, seed=seed).sample_tasks(count, split="test")
    per_step = evaluator.evaluate_adaptation(tasks, steps=steps, seed=seed, batch_size=block)
    scores = {f"{name}, {s} step{'' if s == 1 else 's'}": score
              for s, score in enumerate(per_step)}
    return scores, {"adaptation_steps": steps,
                    "trajectories_per_task": evaluator.trajectories_per_task,
                    "update_rule": settings["update_rule"]}


def _baseline_spec(spec: Any, env: str) -> tuple[str, dict]:
    name = spec if isinstance(spec, str) else (
        spec.get("name") if isinstance(spec, dict) else None)
    if name not in BASELINES:
        raise ValueError(f"Unknown baseline {name or spec!r} in `evaluation.baselines`; expected "
                         f"one of {sorted(BASELINES)}, or a mapping with one of them as `name`.")
    spec = {"name": spec} if isinstance(spec, str) else spec
    families = BASELINES[spec["name"]][1]
    if env not in families:
        raise ValueError(f"Baseline {spec['name']!r} plays {' and '.join(families)} tasks, "
                         f"not {env!r} (`evaluation.baselines`).")
    args = {k: v for k, v in spec.items() if k != "name"}
    return spec["name"], args


def _baseline(spec: Any, config: dict, env: envs.TrialEnvironment) -> tuple[str, Any]:
    """``(label, agent)``; arguments the environment fixes are filled in from it."""
    name, args = _baseline_spec(spec, config["env"]["name"])
    label = f"{name} ({', '.join(f'{k}={v}' for k, v in args.items())})" if args else name
    cls = BASELINES[name][0]
    if cls is rl_baselines.GoalOracle:
        args = {"action_scale": env.action_scale, **args}
    elif cls is rl_baselines.RandomAgent:
        args = {"action_spec": env.action_spec(), **args}
    elif cls is rl_baselines.BayesOptimalBandit:
        args = {"num_arms": env.num_arms, "num_pulls": env.num_pulls, **args}
    elif issubclass(cls, (rl_baselines.PSRL, rl_baselines.PosteriorMeanMDP,
                          rl_baselines.OracleMDP)):
        args = {"horizon": env.horizon, **args}
    try:
        return label, cls(**args)
    except TypeError as e:
        raise ValueError(f"Baseline {name!r} in `evaluation.baselines`: {e}") from None
