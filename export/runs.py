"""Export the trained learner of a run directory (what ``keras-meta export`` does)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from export.exporter import ExportResult


def export_run(run_dir: str | Path, base_path: str | Path = "exports", *,
               name: str | None = None, formats: str | Sequence[str] = "savedmodel,onnx",
               version: int | None = None, overwrite: bool = False,
               quantization: str | Sequence[str] = (),
               support: tuple[Any, Any] | str | Path | None = None,
               tolerance: float = 1e-4, seed: int = 0) -> ExportResult:
    """Exports the learner of `run_dir` as one checked version in TF Serving's layout.

    The run's own evaluation tasks give the example episode (checks, warm-up requests, the
    static shape of the ONNX adapt graph); its training tasks calibrate static int8.

    Args:
        run_dir: a run directory written by `keras_meta.runs.train`.
        base_path: TF Serving's model base folder.
        name: model name (default: the run's config name).
        formats, version, overwrite, tolerance: as `export_learner`.
        quantization: int8 modes, ``"dynamic"`` and/or ``"static"`` (list or comma-separated).
        support: ``(support_x, support_y)`` or an ``.npz`` file holding them:
            serving_default then predicts with the model adapted to this support set.
        seed: seed of the test episode used for checks and warm-up requests.

    Returns:
        The `ExportResult`.

    Raises:
        FileNotFoundError, ValueError: for a missing run or support file, or bad arguments.
    """
    from export.exporter import export_learner
    from keras_meta import config as config_lib
    from keras_meta import runs

    if isinstance(support, (str, Path)):  # a bad file fails before the run is loaded
        support = load_support(support)
    learner, config = runs.load_learner(run_dir)
    if config_lib.is_rl_config(config):
        return _export_rl_run(learner, config, run_dir, base_path, name=name, formats=formats,
                              version=version, overwrite=overwrite, quantization=quantization,
                              support=support, tolerance=tolerance)
    tasks = config_lib.build_tasks(config, **config["evaluation"].get("tasks", {}))
    test = tasks.episodes("test", 1, seed=seed)
    if isinstance(quantization, str):
        quantization = [m.strip() for m in quantization.split(",") if m.strip()]
    quantization = list(quantization)
    calibration = None
    if "static" in quantization:
        calibration = list(tasks.episodes("train", 16, seed=seed).query_x)
    return export_learner(
        learner, base_path, name or config["name"], spec=tasks.spec, formats=formats,
        version=version, overwrite=overwrite, support=support,
        examples=(test.support_x[0], test.support_y[0], test.query_x[0]),
        quantization=quantization, calibration=calibration, tolerance=tolerance,
        metadata={"run_dir": str(Path(run_dir).resolve()), "config": config.get("name")})


def _export_rl_run(learner, config, run_dir, base_path, *, name, formats, version, overwrite,
                   quantization, support, tolerance) -> ExportResult:
    """An RL^2 run: the policy's recurrent step (`export.rl.export_policy`)."""
    from export.rl import export_policy
    from keras_meta.rl.learners import RL2

    if not isinstance(learner, RL2):
        raise ValueError(f"Exporting a {type(learner).__name__} run is not supported: only "
                         "RL^2 runs export (their policy step holds the adaptation). A MAML-RL "
                         "policy adapts by policy-gradient steps on sampled trajectories, which "
                         "no exported signature runs yet.")
    if quantization:
        raise ValueError("`quantization`: an RL^2 policy exports in float only. "
                         f"Received: quantization={quantization!r}")
    if support is not None:
        raise ValueError("`support`: an RL^2 policy adapts within its trials from the "
                         "observations it is fed; it takes no support set.")
    return export_policy(learner.policy, base_path, name or config["name"], formats=formats,
                         version=version, overwrite=overwrite, tolerance=tolerance,
                         metadata={"run_dir": str(Path(run_dir).resolve()),
                                   "config": config.get("name"), "env": config["env"]})


def load_support(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(support_x, support_y)`` from an ``.npz`` file, or an error naming what is wrong."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"`support`: {path} does not exist.")
    try:
        data = np.load(path)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for a bad file
        raise ValueError(f"`support`: {path} is not a readable .npz file: {e}") from e
    missing = {"support_x", "support_y"} - set(data.files)
    if missing:
        raise ValueError(f"`support`: {path} lacks {sorted(missing)}; it has {data.files}.")
    return data["support_x"], data["support_y"]
