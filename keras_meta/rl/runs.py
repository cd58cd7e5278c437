"""Meta-RL run configs: what ``keras-meta train`` / ``evaluate`` build for RL^2.

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
``optimizer.final_learning_rate`` (optional) decays the learning rate linearly over the
training iterations. `keras_meta.runs` trains and evaluates it into the same run directory
as a supervised run; ``results.json`` holds the learner's and the baselines' scores on the
same held-out tasks of the test split (``evaluation.seed`` picks them, 0 for every run by
default, so runs compare).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from keras_meta._validation import check_int
from keras_meta.rl import baselines as rl_baselines
from keras_meta.rl import envs
from keras_meta.rl.baselines import Score
from keras_meta.rl.learners import RL2, RL2Agent

#: Task families by config name: the numpy environment (the evaluation's; the learner
#: builds its in-graph twin from it) whose arguments ``env`` holds.
ENVS = {"bernoulli_bandit": envs.BernoulliBanditRL2, "tabular_mdp": envs.TabularMDPRL2}
LEARNERS = {"rl2": RL2}
#: How results name each learner.
LEARNER_LABELS = {"rl2": "RL^2"}
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
}
DEFAULTS = {
    "name": "run",
    "seed": 0,
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
    "training": {"batch_size": 256, "iterations": 100, "iterations_per_epoch": 10,
                 "validation_tasks": 0},
    "evaluation": {"tasks": 1000, "seed": 0, "batch_size": 500, "baselines": ["random"]},
}
#: The panels of the learning curve (the learners log more diagnostics in history.csv).
CURVE_METRICS = ("trial_return", "entropy", "policy_loss", "value_loss")


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
    if config["learner"]["name"] not in LEARNERS:
        raise ValueError(f"Unknown meta-RL learner {config['learner']['name']!r}; expected one "
                         f"of {sorted(LEARNERS)} (MAML-RL: benchmarks/maml_rl_navigation.py).")
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


def build_learner(config: dict) -> RL2:
    """The compiled learner of `config`, its weights seeded by ``config["seed"]``."""
    keras.utils.set_random_seed(int(config["seed"]))
    spec = dict(config["learner"])
    try:
        learner = LEARNERS[spec.pop("name")](build_env(config), **spec)
    except (TypeError, ValueError) as e:  # an unknown or bad argument: say which section
        raise ValueError(f"`learner`: {e}") from None
    optimizer = dict(config["optimizer"])
    final = optimizer.pop("final_learning_rate", None)
    if final is not None:  # linear over the run, counted in optimizer updates
        optimizer["learning_rate"] = keras.optimizers.schedules.PolynomialDecay(
            float(optimizer["learning_rate"]),
            config["training"]["iterations"] * learner.updates_per_iteration, float(final))
    learner.compile(keras.optimizers.get({"class_name": optimizer.pop("name"),
                                          "config": optimizer}))
    return learner


def training_data(config: dict, learner: RL2) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """``(train, validation)`` datasets of trials for `learner.fit`.

    The training stream starts at the iteration the learner's optimizer has reached when
    `fit` begins iterating, i.e. after `keras.callbacks.BackupAndRestore` restored it.
    """
    training, seed = config["training"], int(config["seed"])

    def start() -> int:
        return int(learner.optimizer.iterations.numpy()) // learner.updates_per_iteration

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
        scores: ``{agent: Score}``, the learner first (sampled actions, then its most
            likely action), then the baselines in config order.
        protocol: what was scored (family, split, tasks, seed, score definition).
    """

    scores: dict[str, Score]
    protocol: dict[str, Any] = field(default_factory=dict)

    def to_json(self, path: str | Path) -> None:
        data = {"protocol": self.protocol,
                "scores": {k: {"mean": s.mean, "stderr": s.stderr}
                           for k, s in self.scores.items()}}
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    def __str__(self) -> str:
        width = max(len(k) for k in self.scores)
        head = (f"{self.protocol.get('tasks')} held-out tasks of {self.protocol.get('env')} "
                f"(test split, seed {self.protocol.get('seed')}); trial return, mean ± s.e.")
        rows = [f"  {k:<{width}}  {s.mean:9.3f} ± {s.stderr:.3f}" for k, s in self.scores.items()]
        return "\n".join([head, *rows])


def evaluate(learner: RL2, config: dict, *, tasks: int | None = None) -> RLResult:
    """Plays the learner and the config's baselines on the same held-out test tasks.

    Args:
        learner: the trained learner.
        config: the run's config.
        tasks: number of test tasks (default ``evaluation.tasks``).

    Returns:
        An `RLResult`.
    """
    evaluation = config["evaluation"]
    count = check_int("tasks", tasks if tasks is not None else evaluation["tasks"], 1)
    seed = int(evaluation["seed"])
    env = build_env(config, batch_size=min(count, int(evaluation["batch_size"])), seed=seed)
    held_out = env.sample_tasks(count, split="test")
    name = LEARNER_LABELS[config["learner"]["name"]]
    scores = {f"{name}, sampled actions": rl_baselines.evaluate(env, RL2Agent(learner),
                                                                  held_out, seed=seed),
              f"{name}, most likely action": rl_baselines.evaluate(
                  env, RL2Agent(learner, deterministic=True), held_out, seed=seed)}
    for spec in evaluation["baselines"]:
        label, agent = _baseline(spec, config, env)
        scores[label] = rl_baselines.evaluate(env, agent, held_out, seed=seed)
    protocol = {"env": config["env"], "split": "test", "tasks": count, "seed": seed,
                "score": "undiscounted total reward of one trial per task",
                "config": config.get("name")}
    return RLResult(scores, protocol)


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
    if cls is rl_baselines.RandomAgent:
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
