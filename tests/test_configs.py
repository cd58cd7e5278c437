"""Every shipped config loads, builds and trains a step (shrunk to test size)."""

from pathlib import Path

import pytest

from keras_meta import config as config_lib
from keras_meta import runs

CONFIGS = sorted(str(p) for p in Path("configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS)
def test_config_trains_a_step(path, tmp_path):
    config = config_lib.load(path)
    if config_lib.is_rl_config(config):
        config["training"].update(batch_size=8, iterations=2, iterations_per_epoch=2,
                                  validation_tasks=0)
        if "trajectories_per_task" in config["learner"]:
            config["learner"]["trajectories_per_task"] = 2
        config_lib.validate(config)
        run_dir = runs.train(config, tmp_path / "run", verbose=0)
        assert (run_dir / "checkpoints" / "final.weights.h5").exists()
        return
    shrink = {"meta_steps": 2, "steps_per_epoch": 2, "steps_per_execution": 1,
              "validation_episodes": 0}
    config["training"].update(shrink)
    config["training"]["meta_batch_size"] = 2
    if config["tasks"]["name"] == "omniglot":
        config["tasks"]["ways"] = min(config["tasks"]["ways"], 5)
        if config["model"].get("ways"):
            config["model"]["ways"] = config["tasks"]["ways"]
    config["learner"].pop("task_chunk_size", None)
    if "inner_steps" in config["learner"]:  # two exercise the multi-step path; five only add
        config["learner"]["inner_steps"] = min(config["learner"]["inner_steps"], 2)  # tracing
    config_lib.validate(config)
    run_dir = runs.train(config, tmp_path / "run", verbose=0)
    assert (run_dir / "checkpoints" / "final.weights.h5").exists()


def test_a_section_naming_another_component_replaces_the_default(tmp_path):
    path = tmp_path / "c.yaml"
    base = ("tasks: {name: sinusoid}\nmodel: {name: mlp}\nlearner: {name: maml}\n")
    path.write_text(base + "optimizer: {name: sgd, learning_rate: 0.5}\n")
    assert config_lib.load(path)["optimizer"] == {"name": "sgd", "learning_rate": 0.5}
    path.write_text(base + "optimizer: {learning_rate: 0.5}\n")  # same component: merged
    assert config_lib.load(path)["optimizer"] == {"name": "adam", "learning_rate": 0.5,
                                                  "epsilon": 1e-7}


@pytest.mark.parametrize("bad, message", [
    ("training: {meta_steps: 10, steps_per_epoch: 3}", "multiple of `training.steps_per_epoch`"),
    ("training: {meta_batch_size: 0}",
     "`training.meta_batch_size` must be an integer >= 1. Received: training.meta_batch_size=0"),
    ("training: {validation_tasks: 1}", "`training.validation_tasks` must be a mapping"),
])
def test_bad_training_settings_are_named(tmp_path, bad, message):
    path = tmp_path / "c.yaml"
    path.write_text("tasks: {name: sinusoid}\nmodel: {name: mlp}\nlearner: {name: maml}\n" + bad)
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config_lib.load(path))
