"""Protocol-faithful evaluation: many test episodes, mean and 95% confidence interval."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_meta.tasks.distribution import TaskDistribution, check_split

MIN_EPISODES = 600


@dataclasses.dataclass
class EvaluationResult:
    """Per-step metrics over test episodes, with the protocol that produced them.

    ``metrics[steps][name] = (mean, ci95)``, where ``ci95 = 1.96 * std / sqrt(episodes)``
    (the convention of the MAML and ProtoNet papers). ``per_episode[steps][name]`` holds the raw
    values. `mean` and `ci95` without ``steps`` report the protocol's test step count
    (``protocol["inner_steps_test"]``) when it was evaluated, else the largest count.
    """

    metrics: dict
    protocol: dict
    per_episode: dict = dataclasses.field(repr=False, default_factory=dict)

    def mean(self, metric: str, steps: int | None = None) -> float:
        return self.metrics[self._steps(steps)][metric][0]

    def ci95(self, metric: str, steps: int | None = None) -> float:
        return self.metrics[self._steps(steps)][metric][1]

    @property
    def reported_steps(self) -> int:
        """The step count `mean` and `ci95` report by default."""
        # The protocol's test step count is the number a paper reports; the largest count
        # evaluated is only a fallback for results without one.
        protocol_steps = self.protocol.get("inner_steps_test")
        return protocol_steps if protocol_steps in self.metrics else max(self.metrics)

    def _steps(self, steps):
        if steps is None:
            return self.reported_steps
        if steps not in self.metrics:
            raise KeyError(f"No result for steps={steps}; evaluated: {sorted(self.metrics)}")
        return steps

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "metrics": {
                str(s): {k: {"mean": m, "ci95": c} for k, (m, c) in v.items()}
                for s, v in self.metrics.items()
            },
        }

    def to_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    def __str__(self) -> str:
        names = list(next(iter(self.metrics.values())))
        p = self.protocol
        head = (f"{p.get('learner', '')} on {p.get('tasks', '')} [{p.get('split')} split, "
                f"{p.get('episodes')} episodes, inner steps train/test "
                f"{p.get('inner_steps_train')}/{p.get('inner_steps_test')}, "
                f"batch norm {p.get('bn_policy')}]")
        rows = ["steps | " + " | ".join(names)]
        for steps, values in sorted(self.metrics.items()):
            rows.append(f"{steps:>5} | " + " | ".join(
                f"{values[n][0]:.4f} ± {values[n][1]:.4f}" for n in names))
        return head + "\n" + "\n".join(rows)


def confidence_interval(values) -> tuple[float, float]:
    """``(mean, 1.96 * std / sqrt(n))`` of per-episode values."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(1.96 * values.std() / math.sqrt(len(values)))


def evaluate(
    learner,
    tasks: TaskDistribution,
    *,
    split: str = "test",
    episodes: int = MIN_EPISODES,
    steps: Sequence[int] | int | None = None,
    seed: int = 1234,
    meta_batch_size: int = 50,
    verbose: int = 1,
    allow_few_episodes: bool = False,
) -> EvaluationResult:
    """Adapt to ``episodes`` held-out tasks and report metrics after each number of steps.

    Regression reports the query MSE; classification reports accuracy and macro precision,
    recall and F1 (per episode, then averaged). Each is given as mean and 95% confidence
    interval over episodes.

    Args:
        learner: a `MetaLearner`.
        tasks: the task distribution.
        split: which split's tasks to use (default ``"test"``).
        episodes: number of episodes; at least 600 unless ``allow_few_episodes``.
        steps: adaptation steps to report (default: the learner's ``eval_inner_steps``).
            Learners without steps (metric learners) report step 0 only.
        seed: seed of the test episodes (the same seed gives the same episodes).
        meta_batch_size: tasks evaluated together.
        verbose: 1 shows a progress bar.
        allow_few_episodes: permit fewer than 600 episodes (for quick checks; never for a
            reported result).

    Returns:
        An `EvaluationResult`.
    """
    check_split(split)
    if episodes < MIN_EPISODES and not allow_few_episodes:
        raise ValueError(
            f"`episodes` must be >= {MIN_EPISODES} for a reported result (the papers' protocol). "
            f"Received: episodes={episodes}. Pass allow_few_episodes=True for a quick check."
        )
    if steps is None:
        steps = [learner.eval_inner_steps]
    steps = sorted({int(s) for s in np.atleast_1d(steps)})
    if steps[0] < 0:
        raise ValueError(f"`steps` must be non-negative. Received: {steps}")
    max_steps = steps[-1]
    spec = tasks.spec
    meta_batch_size = min(meta_batch_size, episodes)

    @tf.function
    def trajectories(inputs):
        sx, sy, qx = inputs["support_x"], inputs["support_y"], inputs["query_x"]
        return learner.map_tasks(
            lambda a, b, c: learner.adaptation_trajectory(a, b, c, max_steps),
            (sx, sy, qx), tf.TensorSpec(None, learner.output_dtype),
        )

    batches = -(-episodes // meta_batch_size)
    dataset = tasks.dataset(split, meta_batch_size, seed=seed, num_batches=batches)
    progress = keras.utils.Progbar(episodes, unit_name="episode") if verbose else None
    collected: dict = {}
    seen = 0
    for inputs, query_y in dataset:
        traj = trajectories(inputs).numpy()  # [tasks, recorded steps, Q, ...]
        take = min(meta_batch_size, episodes - seen)
        traj, labels = traj[:take], query_y.numpy()[:take]
        recorded = traj.shape[1]
        for s in steps if recorded > 1 else [0]:
            values = _episode_metrics(traj[:, min(s, recorded - 1)], labels, spec.num_classes)
            for name, v in values.items():
                collected.setdefault(s, {}).setdefault(name, []).append(v)
        seen += take
        if progress is not None:
            progress.update(seen)
    per_episode = {s: {k: np.concatenate(v) for k, v in d.items()} for s, d in collected.items()}
    metrics = {s: {k: confidence_interval(v) for k, v in d.items()}
               for s, d in per_episode.items()}
    protocol = {
        **learner.protocol(),
        "tasks": tasks.name,
        "task_config": tasks.get_config(),
        "split": split,
        "episodes": episodes,
        "support_size": spec.support_size,
        "query_size": spec.query_size,
        "ways": spec.num_classes,
        "steps_reported": sorted(metrics),
        "seed": seed,
        "ci": "95% = 1.96 * std / sqrt(episodes)",
    }
    return EvaluationResult(metrics=metrics, protocol=protocol, per_episode=per_episode)


def _episode_metrics(predictions, labels, num_classes) -> dict:
    """Per-episode metrics for a batch of episodes: ``{name: [tasks]}``."""
    if num_classes is None:
        err = (predictions.astype(np.float64) - labels.astype(np.float64)) ** 2
        return {"mse": err.reshape(len(err), -1).mean(axis=1)}
    predicted = predictions.argmax(axis=-1)
    accuracy = (predicted == labels).mean(axis=1)
    precision, recall, f1 = [], [], []
    for pred, true in zip(predicted, labels):
        p, r, f = _macro_prf(pred, true, num_classes)
        precision.append(p)
        recall.append(r)
        f1.append(f)
    return {"accuracy": accuracy, "precision": np.array(precision), "recall": np.array(recall),
            "f1": np.array(f1)}


def _macro_prf(pred, true, num_classes):
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (true, pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision.mean(), recall.mean(), f1.mean()
