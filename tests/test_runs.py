"""Run directories, exact resume, callbacks and the command line."""

import csv
import json

import keras
import numpy as np
import pytest
import yaml

from keras_meta import cli, runs
from keras_meta import config as config_lib

TINY = {
    "name": "tiny",
    "seed": 3,
    "tasks": {"name": "sinusoid", "shots": 5},
    "model": {"name": "mlp", "hidden": [16, 16], "outputs": 1},
    "learner": {"name": "meta_sgd", "initial_learning_rate": 0.01, "inner_steps": 1},
    "training": {"meta_batch_size": 4, "meta_steps": 40, "steps_per_epoch": 10,
                 "steps_per_execution": 5, "validation_episodes": 8},
    "evaluation": {"episodes": 20, "steps": [0, 1, 2], "meta_batch_size": 10},
}


def tiny_config(**training):
    config = config_lib.merge(config_lib.DEFAULTS, TINY)
    config["training"].update(training)
    config_lib.validate(config)
    return config


class Interrupt(keras.callbacks.Callback):
    """Simulates a run killed after ``epochs`` epochs."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def final_weights(run_dir):
    learner, _ = runs.load_learner(run_dir)
    return [v.numpy() for v in learner.weights] + [
        v.numpy() for v in learner.optimizer.variables]


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path):
    config = tiny_config()
    runs.train(config, tmp_path / "straight", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, tmp_path / "resumed", verbose=0, callbacks=[Interrupt(2)])
    assert not (tmp_path / "resumed" / "checkpoints" / "final.weights.h5").exists()
    runs.train(config, tmp_path / "resumed", verbose=0)
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert len(straight) == len(resumed)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    # The learned step sizes and the optimizer's step counter are part of what resumes.
    learner, _ = runs.load_learner(tmp_path / "resumed")
    assert int(learner.optimizer.iterations) == 40
    history = (tmp_path / "resumed" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 4  # header + one row per epoch, none repeated


def test_resume_refuses_a_different_config(tmp_path):
    runs.train(tiny_config(), tmp_path / "run", verbose=0)
    with pytest.raises(ValueError, match="different config"):
        runs.train(tiny_config(meta_steps=20), tmp_path / "run", verbose=0)


def test_run_directory_holds_everything(tmp_path):
    run_dir = runs.train(tiny_config(), tmp_path / "run", verbose=0)
    result = runs.evaluate_run(run_dir, episodes=20, verbose=0)
    for name in ("config.yaml", "history.csv", "train.log", "results.json",
                 "learning_curve.png", "adaptation_curve.png", "checkpoints/final.weights.h5"):
        assert (run_dir / name).exists(), name
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["protocol"]["split"] == "test"
    assert saved["protocol"]["bn_policy"] == "transductive"
    assert set(saved["metrics"]) == {"0", "1", "2"}
    assert result.mean("mse", 2) == pytest.approx(saved["metrics"]["2"]["mse"]["mean"])


def _fit_with(tmp_path, callback, epochs=4):
    config = tiny_config()
    learner = config_lib.build_learner(config)
    tasks = config_lib.build_tasks(config)
    return learner.fit(tasks.dataset("train", 4), steps_per_epoch=5, epochs=epochs,
                       validation_data=tasks.dataset("val", 4, num_batches=2),
                       callbacks=[callback], verbose=0)


def test_model_checkpoint(tmp_path):
    _fit_with(tmp_path, keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"),
                                                        save_weights_only=True))
    assert (tmp_path / "best.weights.h5").stat().st_size > 0


def test_early_stopping(tmp_path):
    history = _fit_with(tmp_path, keras.callbacks.EarlyStopping(monitor="val_loss", patience=0,
                                                                min_delta=1e3))
    assert len(history.history["loss"]) == 2  # the first epoch sets the baseline


def test_csv_logger(tmp_path):
    _fit_with(tmp_path, keras.callbacks.CSVLogger(str(tmp_path / "log.csv")))
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0].split(",") == ["epoch", "loss", "val_loss"] and len(lines) == 5


def test_tensorboard(tmp_path):
    _fit_with(tmp_path, keras.callbacks.TensorBoard(str(tmp_path / "tb")))
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))
    assert list((tmp_path / "tb" / "validation").glob("events.out.tfevents.*"))


def test_backup_and_restore_cleans_up_after_success(tmp_path):
    history = _fit_with(tmp_path, keras.callbacks.BackupAndRestore(str(tmp_path / "backup")))
    assert len(history.history["loss"]) == 4
    assert not (tmp_path / "backup").exists()


def test_cli_train_and_evaluate(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(TINY))
    run_dir = tmp_path / "run"
    assert cli.main(["train", str(path), "--run-dir", str(run_dir), "--quiet", "--no-evaluate",
                     "--set", "training.meta_steps=20"]) == 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["meta_steps"] == 20
    assert cli.main(["evaluate", str(run_dir), "--episodes", "20", "--steps", "0", "3",
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test split, 20 episodes" in out and "mse" in out


@pytest.mark.parametrize("override, message", [
    ("training.meta_steps=15", "multiple"),
    ("learner.name=unknown", "Unknown learner"),
    ("training.meta_batch_size=0", "meta_batch_size"),
    ("oops", "key.sub=value"),
])
def test_cli_reports_bad_configs(tmp_path, capsys, override, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "r"), "--set",
                     override]) == 2
    assert message in capsys.readouterr().err


def test_cli_missing_config(tmp_path, capsys):
    assert cli.main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_help_explains_each_command(capsys):
    for command in ("train", "evaluate", "demo"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "usage: keras-meta " + command in capsys.readouterr().out


def test_training_a_finished_run_again_is_a_no_op(tmp_path):
    run_dir = runs.train(tiny_config(), tmp_path / "run", verbose=0)
    before = final_weights(run_dir)
    runs.train(tiny_config(), run_dir, verbose=0)
    for a, b in zip(before, final_weights(run_dir)):
        np.testing.assert_array_equal(a, b)
    assert "already trained" in (run_dir / "train.log").read_text()


def test_validation_tasks_change_only_the_validation_episodes(tmp_path):
    histories = {}
    for name, extra in (("plain", {}), ("val-shots", {"validation_tasks": {"shots": 20}})):
        config = tiny_config(meta_steps=10, steps_per_epoch=5, **extra)
        run_dir = runs.train(config, tmp_path / name, verbose=0)
        with open(run_dir / "history.csv") as f:
            histories[name] = list(csv.DictReader(f))
    plain, other = histories["plain"], histories["val-shots"]
    assert [r["loss"] for r in plain] == [r["loss"] for r in other]  # same training
    assert [r["val_loss"] for r in plain] != [r["val_loss"] for r in other]
