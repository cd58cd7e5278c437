"""`export.export_run`: a run directory to a checked version, from Python."""

import json

import numpy as np
import pytest
import tensorflow as tf

import export
from keras_meta import runs
from tests.test_runs import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "tiny"
    runs.train(tiny_config(), path, verbose=0)
    return path


def test_export_run_uses_the_runs_name_and_episode_shape(run_dir, tmp_path):
    result = export.export_run(run_dir, tmp_path, formats="savedmodel")
    assert (result.model_name, result.version) == ("tiny", 1)
    assert result.path == tmp_path / "tiny" / "1"
    meta = json.loads((result.path / "assets.extra" / "keras_meta.json").read_text())
    assert meta["run_dir"] == str(run_dir.resolve())
    # A second export goes to the next version; the first is kept.
    assert export.export_run(run_dir, tmp_path, formats=["savedmodel"]).version == 2
    assert (tmp_path / "tiny" / "1" / "saved_model.pb").exists()


def test_export_run_with_a_support_set_serves_the_adapted_model(run_dir, tmp_path):
    learner, _ = runs.load_learner(run_dir)
    rng = np.random.default_rng(1)
    sx = rng.uniform(-5, 5, (5, 1)).astype(np.float32)
    sy = (2 * np.sin(sx - 1)).astype(np.float32)
    result = export.export_run(run_dir, tmp_path, name="adapted", formats="savedmodel",
                               support=(sx, sy))
    fn = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    qx = np.linspace(-5, 5, 11, dtype=np.float32)[:, None]
    np.testing.assert_allclose(fn(x=tf.constant(qx))["predictions"].numpy(),
                               learner.adapt(sx, sy)(qx).numpy(), rtol=1e-4, atol=1e-5)


def test_export_run_names_a_bad_support_file(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export.export_run(run_dir, tmp_path, support=tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        export.export_run(run_dir, tmp_path, support=tmp_path / "bad.npz")
    assert not (tmp_path / "tiny").exists()
