"""Training runs: one directory holds everything of a run.

``<run_dir>/`` holds ``config.yaml``, ``backup/`` (exact-resume state: weights, learned step
sizes, optimizer state, step counter; the task stream position is the optimizer's step counter),
``checkpoints/final.weights.h5``, ``history.csv``, ``train.log``, ``results.json`` and the plots.
Running ``train`` again on an interrupted run directory resumes it exactly. A meta-RL config
(one that names an ``env``, `keras_meta.rl.runs`) runs the same way; its ``results.json`` holds
the learner's and the baselines' scores on held-out tasks.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import yaml

from keras_meta import config as config_lib
from keras_meta import plots
from keras_meta.evaluation import evaluate

log = logging.getLogger("keras_meta")


def train(config: dict, run_dir: str | Path, *, verbose: int = 1, callbacks=()) -> Path:
    """Meta-train as ``config`` says, writing (or resuming) ``run_dir``; returns it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.yaml"
    if saved.exists():
        previous = yaml.safe_load(saved.read_text())
        if previous != config:
            raise ValueError(f"{run_dir} holds a run with a different config; resume it with "
                             "the same config or choose a new run directory.")
    else:
        saved.write_text(yaml.safe_dump(config, sort_keys=False))
    _log_to(run_dir / "train.log")
    if (run_dir / "checkpoints" / "final.weights.h5").exists():
        log.info("%s is already trained; nothing to do", run_dir)
        return run_dir

    if config_lib.is_rl_config(config):
        from keras_meta.rl import runs as rl_runs

        learner = rl_runs.build_learner(config)
        dataset, validation = rl_runs.training_data(config, learner)
        training = config["training"]
        epochs = training["iterations"] // training["iterations_per_epoch"]
        steps_per_epoch = training["iterations_per_epoch"]
        curve_metrics = rl_runs.curve_metrics(config)
        log.info("Training %s on %s for %d iterations of %d tasks (%d epochs) in %s",
                 type(learner).__name__, config["env"]["name"], training["iterations"],
                 training["batch_size"], epochs, run_dir)
    else:
        dataset, validation, learner = _supervised_data(config)
        training = config["training"]
        epochs = training["meta_steps"] // training["steps_per_epoch"]
        steps_per_epoch = training["steps_per_epoch"]
        curve_metrics = None
        log.info("Training %s on %s for %d meta-steps (%d epochs) in %s",
                 type(learner).__name__, config["tasks"]["name"], training["meta_steps"],
                 epochs, run_dir)
    started = time.time()
    csv_logger = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)
    try:
        history = learner.fit(
            dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation,
            verbose=verbose,
            callbacks=[
                keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
                csv_logger,
                _LogEpochs(),
                *callbacks,
            ],
        )
    finally:  # an interrupted run must leave a readable history for its resumption
        csv_file = getattr(csv_logger, "csv_file", None)
        if csv_file is not None and not csv_file.closed:
            csv_file.close()
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    learner.save_weights(run_dir / "checkpoints" / "final.weights.h5")
    log.info("Trained in %.1f s; final %s", time.time() - started,
             {k: round(v[-1], 5) for k, v in history.history.items()} if history.history else {})
    plots.learning_curve(run_dir / "history.csv", run_dir / "learning_curve.png",
                         metrics=curve_metrics)
    return run_dir


def _supervised_data(config: dict):
    """``(train dataset, validation dataset or None, learner)`` of a supervised config."""
    tasks = config_lib.build_tasks(config)
    learner = config_lib.build_learner(config)
    training = config["training"]
    batch = training["meta_batch_size"]
    dataset = tasks.dataset("train", batch, seed=config["seed"],
                            start=learner.optimizer.iterations)
    validation = None
    if training.get("validation_episodes"):
        # Validation may sample other episodes than training (e.g. the test shots when
        # training uses more): ``training.validation_tasks`` overrides the task settings.
        val_tasks = config_lib.build_tasks(config, **training.get("validation_tasks", {}))
        validation = val_tasks.dataset("val", batch, seed=config["seed"],
                                       num_batches=max(1, training["validation_episodes"] // batch))
    return dataset, validation, learner


def load_learner(run_dir: str | Path):
    """The trained learner of a run directory."""
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    weights = run_dir / "checkpoints" / "final.weights.h5"
    if not weights.exists():
        weights = run_dir / "backup" / "latest.weights.h5"
    if not weights.exists():
        raise FileNotFoundError(f"{run_dir} has no trained weights (checkpoints/ or backup/).")
    if config_lib.is_rl_config(config):
        from keras_meta.rl import runs as rl_runs

        learner = rl_runs.build_learner(config)
    else:
        learner = config_lib.build_learner(config)
        learner.optimizer.build(learner.trainable_variables)
    learner.load_weights(weights)
    return learner, config


def load_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no config.yaml.")
    return yaml.safe_load(path.read_text())


def evaluate_run(run_dir: str | Path, *, episodes: int | None = None, steps=None,
                 verbose: int = 1):
    """Evaluate a run on its test split; writes ``results.json`` and the adaptation curve."""
    run_dir = Path(run_dir)
    learner, config = load_learner(run_dir)
    if config_lib.is_rl_config(config):
        from keras_meta.rl import runs as rl_runs

        if isinstance(steps, (list, tuple)):  # the adaptation path passes every step
            steps = max(steps) if steps else None
        result = rl_runs.evaluate(learner, config, tasks=episodes, steps=steps)
        result.to_json(run_dir / "results.json")
        plots.rl_adaptation_curve(result, run_dir / "adaptation_curve.png")
        log.info("%s", result)
        return result
    evaluation = config["evaluation"]
    tasks = config_lib.build_tasks(config, **evaluation.get("tasks", {}))
    result = evaluate(
        learner, tasks,
        episodes=episodes or evaluation["episodes"],
        steps=steps if steps is not None else evaluation["steps"],
        meta_batch_size=evaluation["meta_batch_size"],
        seed=int(config["seed"]) + 1000,
        verbose=verbose,
        allow_few_episodes=episodes is not None,
    )
    result.protocol["config"] = config.get("name")
    result.to_json(run_dir / "results.json")
    plots.adaptation_curve(result, run_dir / "adaptation_curve.png")
    if tasks.spec.is_classification:
        ep = tasks.episodes("test", 1, seed=int(config["seed"]) + 1000)
        logits = learner(ep.inputs(), training=False)[0]
        plots.episode(ep.support_x[0], ep.support_y[0], ep.query_x[0], ep.query_y[0],
                      run_dir / "episode.png", predictions=np.asarray(logits))
    log.info("%s", result)
    return result


class _LogEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        log.info("epoch %d: %s", epoch + 1, json.dumps({k: round(float(v), 5)
                                                         for k, v in (logs or {}).items()}))


def _log_to(path: Path) -> None:
    log.setLevel(logging.INFO)
    if not any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in log.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
