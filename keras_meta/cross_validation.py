"""k-fold cross-validation over disjoint groups of classes (for Omniglot: alphabets)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from keras_meta.datasets.class_images import ClassImages
from keras_meta.evaluation import EvaluationResult, evaluate
from keras_meta.tasks.image_classes import ImageClassTasks


@dataclasses.dataclass
class CrossValidationResult:
    """One `EvaluationResult` per fold, and the spread of each metric across folds."""

    folds: list[EvaluationResult]
    held_out_groups: list[list[str]]

    def spread(self, metric: str, steps: int | None = None) -> tuple[float, float]:
        """Mean and standard deviation across folds of the fold means."""
        values = np.array([fold.mean(metric, steps) for fold in self.folds])
        return float(values.mean()), float(values.std(ddof=1) if len(values) > 1 else 0.0)

    def __str__(self) -> str:
        names = list(next(iter(self.folds[0].metrics.values())))
        parts = [f"{n} {m:.4f} ± {s:.4f} (std over {len(self.folds)} folds)"
                 for n in names for m, s in [self.spread(n)]]
        return "; ".join(parts)


def cross_validate(
    make_learner: Callable[[], object],
    pool: ClassImages,
    *,
    folds: int = 5,
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    meta_batch_size: int = 4,
    train_steps: int = 1000,
    episodes: int = 600,
    steps=None,
    seed: int = 0,
    verbose: int = 0,
) -> CrossValidationResult:
    """Train on ``folds - 1`` folds of groups and test on the held-out fold, for every fold.

    Groups (``pool.groups``; for Omniglot the alphabet of each class) are assigned to folds at
    random for ``seed``, so no group, and hence no class, is shared between the training and
    test tasks of a fold.

    Args:
        make_learner: returns a fresh, compiled learner (called once per fold).
        pool: all classes, with their groups.
        folds: number of folds (>= 2, at most the number of groups).
        ways, shots, queries: episode shape for training and testing.
        meta_batch_size, train_steps: meta-training per fold.
        episodes, steps: evaluation per fold (see `keras_meta.evaluate`).
        seed: seed of the fold assignment and of the episodes.
    """
    groups = sorted(set(pool.groups))
    if not isinstance(folds, int) or not 2 <= folds <= len(groups):
        raise ValueError(f"`folds` must be an integer in [2, {len(groups)}] (the number of "
                         f"groups). Received: folds={folds!r}")
    order = np.random.default_rng(seed).permutation(len(groups))
    assignment = {groups[g]: i % folds for i, g in enumerate(order)}
    results, held_out = [], []
    for fold in range(folds):
        test_classes = [c for c, g in enumerate(pool.groups) if assignment[g] == fold]
        train_classes = [c for c, g in enumerate(pool.groups) if assignment[g] != fold]
        tasks = ImageClassTasks({"train": pool.subset(train_classes),
                                 "test": pool.subset(test_classes)},
                                ways, shots, queries, name=f"cv-fold-{fold}")
        learner = make_learner()
        learner.fit(tasks.dataset("train", meta_batch_size, seed=seed + fold),
                    steps_per_epoch=train_steps, verbose=verbose)
        result = evaluate(learner, tasks, episodes=episodes, steps=steps, seed=seed + 1000,
                          verbose=verbose, allow_few_episodes=episodes < 600)
        result.protocol["fold"] = fold
        results.append(result)
        held_out.append(sorted({pool.groups[c] for c in test_classes}))
    return CrossValidationResult(results, held_out)
