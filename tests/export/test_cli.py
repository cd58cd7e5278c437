"""`keras-meta export` on a trained run directory."""

import numpy as np
import pytest
import tensorflow as tf

from keras_meta import cli, runs
from tests.test_runs import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "tiny"
    runs.train(tiny_config(), path, verbose=0)
    return path


def test_export_command_writes_a_checked_version(run_dir, tmp_path, capsys):
    base = tmp_path / "exports"
    assert cli.main(["export", str(run_dir), "--base-path", str(base), "--format",
                     "savedmodel"]) == 0
    out = capsys.readouterr().out
    assert "Exported 'tiny' version 1" in out and "worst relative error" in out
    loaded = tf.saved_model.load(str(base / "tiny" / "1"))
    assert set(loaded.signatures) == {"serving_default", "adapt"}
    assert (base / "models.config").exists()

    # The same version again is refused with a clear message, and the first stays intact.
    assert cli.main(["export", str(run_dir), "--base-path", str(base), "--format",
                     "savedmodel", "--version", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_export_with_a_support_file_serves_the_adapted_model(run_dir, tmp_path):
    learner, _ = runs.load_learner(run_dir)
    rng = np.random.default_rng(0)
    sx = rng.uniform(-5, 5, (5, 1)).astype(np.float32)
    sy = (3 * np.sin(sx)).astype(np.float32)
    np.savez(tmp_path / "support.npz", support_x=sx, support_y=sy)
    base = tmp_path / "exports"
    assert cli.main(["export", str(run_dir), "--base-path", str(base), "--format",
                     "savedmodel", "--support", str(tmp_path / "support.npz"),
                     "--name", "adapted"]) == 0
    fn = tf.saved_model.load(str(base / "adapted" / "1")).signatures["serving_default"]
    qx = np.linspace(-5, 5, 20, dtype=np.float32)[:, None]
    np.testing.assert_allclose(fn(x=tf.constant(qx))["predictions"].numpy(),
                               learner.adapt(sx, sy)(qx).numpy(), rtol=1e-4, atol=1e-5)


def test_export_command_rejects_bad_input(run_dir, tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", support_x=np.zeros((5, 1), np.float32))
    assert cli.main(["export", str(run_dir), "--base-path", str(tmp_path), "--support",
                     str(tmp_path / "bad.npz")]) == 2
    assert "lacks ['support_y']" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "nowhere")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert cli.main(["export", str(run_dir), "--base-path", str(tmp_path), "--format",
                     "zip"]) == 2
    assert "Unknown export format 'zip'" in capsys.readouterr().err


OMNIGLOT_TINY = {
    "tasks": {"name": "omniglot", "split": "vinyals", "ways": 5, "shots": 1, "queries": 2},
    "model": {"name": "conv4", "input_shape": [28, 28, 1], "ways": 0, "filters": 8},
    "loss": "sparse_categorical_crossentropy_from_logits",
    "training": {"meta_batch_size": 2, "meta_steps": 4, "steps_per_epoch": 2,
                 "steps_per_execution": 1, "validation_episodes": 0},
    "evaluation": {"episodes": 4, "steps": [0], "meta_batch_size": 2},
}


@pytest.mark.parametrize("learner", [
    {"name": "maml", "update_rule": 0.4, "inner_steps": 1},
    {"name": "meta_sgd", "initial_learning_rate": 0.4, "inner_steps": 1},
    {"name": "anil", "update_rule": 0.4, "inner_steps": 1},
    {"name": "protonet"},
    {"name": "ridge"},
], ids=lambda learner: learner["name"])
def test_every_exportable_learner_exports_from_the_command_line(tmp_path, learner):
    from keras_meta import config as config_lib

    config = config_lib.merge(config_lib.DEFAULTS, OMNIGLOT_TINY)
    config["name"] = "tiny-" + learner["name"]
    config["learner"] = learner
    if learner["name"] in ("maml", "meta_sgd", "anil"):
        config["model"]["ways"] = 5
    config_lib.validate(config)
    runs.train(config, tmp_path / "run", verbose=0)
    assert cli.main(["export", str(tmp_path / "run"), "--base-path", str(tmp_path / "e"),
                     "--format", "savedmodel,onnx,tflite"]) == 0
    version = tmp_path / "e" / config["name"] / "1"
    assert (version / "saved_model.pb").exists()
    assert (version / "onnx" / "adapt.onnx").exists()
    assert (version / "litert" / "serving_default.tflite").exists()
