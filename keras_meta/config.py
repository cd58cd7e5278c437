"""Run configurations: YAML files with command-line overrides, and building runs from them."""

from __future__ import annotations

import copy
from pathlib import Path

import keras
import yaml

from keras_meta import learners, models, tasks
from keras_meta._validation import check_int

LEARNERS = {
    "maml": learners.MAML,
    "fomaml": learners.FirstOrderMAML,
    "meta_sgd": learners.MetaSGD,
    "anil": learners.ANIL,
    "reptile": learners.Reptile,
    "protonet": learners.ProtoNet,
    "ridge": learners.RidgeHead,
}
TASKS = {"sinusoid": tasks.Sinusoid, "omniglot": tasks.Omniglot,
         "image_folder": tasks.ImageFolder}

DEFAULTS = {
    "name": "run",
    "seed": 0,
    "loss": "mse",
    "optimizer": {"name": "adam", "learning_rate": 1e-3, "epsilon": 1e-7},
    "training": {
        "meta_batch_size": 25,
        "meta_steps": 1000,
        "steps_per_epoch": 100,
        "steps_per_execution": 1,
        "jit_compile": False,
        "validation_episodes": 100,
    },
    "evaluation": {"episodes": 600, "steps": [0, 1], "meta_batch_size": 50, "tasks": {}},
}


def load(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Read a YAML config, fill defaults and apply ``key.sub=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file not found: {path}")
    with open(path) as f:
        try:
            user = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"Config file {path} is not valid YAML: {e}") from None
    if not isinstance(user, dict):
        raise ValueError(f"Config file {path} must hold a mapping at the top level.")
    config = merge(_rl_runs().DEFAULTS if is_rl_config(user) else DEFAULTS, user)
    for item in overrides or []:
        apply_override(config, item)
    validate(config)
    return config


def is_rl_config(config: dict) -> bool:
    """Whether `config` describes a meta-RL run (`keras_meta.rl.runs`): it names an ``env``."""
    return "env" in config


def merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        # A section that names another component (e.g. optimizer sgd over the default adam)
        # replaces the default: the default's arguments would not fit it.
        if (isinstance(value, dict) and isinstance(out.get(key), dict)
                and value.get("name", out[key].get("name")) == out[key].get("name")):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(config: dict, item: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to ``config`` in place."""
    if "=" not in item:
        raise ValueError(f"Override must look like key.sub=value. Received: {item!r}")
    key, raw = item.split("=", 1)
    node = config
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"Cannot set {key!r}: {part!r} is not a section.")
    node[parts[-1]] = yaml.safe_load(raw)


def _rl_runs():
    from keras_meta.rl import runs  # imports tf-agents: only for meta-RL configs

    return runs


def validate(config: dict) -> None:
    """Raises ValueError naming the config key that is missing or wrong."""
    if is_rl_config(config):
        _rl_runs().validate(config)
        return
    for section in ("tasks", "model", "learner"):
        if not isinstance(config.get(section), dict) or "name" not in config[section]:
            raise ValueError(f"Config needs a `{section}` section with a `name`.")
    if config["tasks"]["name"] not in TASKS:
        raise ValueError(f"Unknown tasks {config['tasks']['name']!r}; expected one of "
                         f"{sorted(TASKS)}.")
    if config["learner"]["name"] not in LEARNERS:
        raise ValueError(f"Unknown learner {config['learner']['name']!r}; expected one of "
                         f"{sorted(LEARNERS)}.")
    training = config["training"]
    for key in ("meta_batch_size", "meta_steps", "steps_per_epoch", "steps_per_execution"):
        check_int(f"training.{key}", training.get(key), 1)
    if training["meta_steps"] % training["steps_per_epoch"]:
        raise ValueError("`training.meta_steps` must be a multiple of `training.steps_per_epoch` "
                         f"(checkpoints are written per epoch). Received: {training['meta_steps']}"
                         f" and {training['steps_per_epoch']}")
    if not isinstance(training.get("validation_tasks", {}), dict):
        raise ValueError("`training.validation_tasks` must be a mapping of task settings for the "
                         "validation episodes (e.g. {shots: 1}). "
                         f"Received: {training['validation_tasks']!r}")


def build_tasks(config: dict, **overrides) -> tasks.TaskDistribution:
    spec = merge(config["tasks"], overrides)
    name = spec.pop("name")
    return TASKS[name](**spec)


def build_learner(config: dict) -> learners.MetaLearner:
    keras.utils.set_random_seed(int(config["seed"]))
    model = models.build(config["model"])
    spec = dict(config["learner"])
    cls = LEARNERS[spec.pop("name")]
    learner = cls(model, loss=_loss(config["loss"]), **spec)
    optimizer = dict(config["optimizer"])
    if isinstance(optimizer.get("learning_rate"), dict):
        schedule = dict(optimizer["learning_rate"])
        optimizer["learning_rate"] = keras.optimizers.schedules.deserialize(
            {"class_name": schedule.pop("name"), "config": schedule})
    learner.compile(
        optimizer=keras.optimizers.get({"class_name": optimizer.pop("name"),
                                        "config": optimizer}),
        metrics=config.get("metrics"),
        steps_per_execution=config["training"]["steps_per_execution"],
        jit_compile=config["training"]["jit_compile"],
    )
    return learner


def _loss(identifier):
    if identifier == "sparse_categorical_crossentropy_from_logits":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return identifier
