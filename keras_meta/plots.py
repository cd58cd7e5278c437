"""Plots a user wants to see: learning curves and adaptation curves (PNG)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve(history_csv: str | Path, out: str | Path,
                   metrics: Sequence[str] | None = None) -> Path | None:
    """Training and validation metrics per epoch, one panel per metric (all the history's,
    or those of `metrics` that it has, in that order)."""
    history_csv = Path(history_csv)
    if not history_csv.exists():
        return None
    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    names = [k for k in rows[0] if k != "epoch" and not k.startswith("val_")]
    if metrics is not None:
        names = [k for k in metrics if k in names] or names
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    for ax, name in zip(axes[0], names):
        ax.plot(*_series(rows, epochs, name), label=f"train {name}")
        if f"val_{name}" in rows[0]:
            ax.plot(*_series(rows, epochs, f"val_{name}"), label=f"val {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        if name == "loss":
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def _series(rows, epochs, name):
    """Epochs and values of a column, skipping CSVLogger's "NA" (metric absent that epoch)."""
    points = [(e, float(r[name])) for e, r in zip(epochs, rows) if r.get(name) not in (None, "NA")]
    return [p[0] for p in points], [p[1] for p in points]


def adaptation_curve(result, out: str | Path) -> Path | None:
    """Each metric (mean and 95% CI) against the number of adaptation steps."""
    steps = sorted(result.metrics)
    if len(steps) < 2:
        return None
    names = list(result.metrics[steps[0]])
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        means = [result.metrics[s][name][0] for s in steps]
        cis = [result.metrics[s][name][1] for s in steps]
        ax.errorbar(steps, means, yerr=cis, marker="o", capsize=3)
        ax.set_xlabel("adaptation steps")
        ax.set_ylabel(f"{name} (95% CI)")
        ax.set_title(f"{result.protocol.get('learner')} on {result.protocol.get('tasks')}, "
                     f"{result.protocol.get('episodes')} episodes", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def rl_adaptation_curve(result, out: str | Path) -> Path | None:
    """A meta-RL learner's held-out return (mean and 95% CI) against adaptation steps, with
    the baselines as horizontal lines; None for a learner that adapts within its trials."""
    if "adaptation_steps" not in result.protocol:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    learner = [result.scores[k] for k in result.learner_keys]
    ax.errorbar(range(len(learner)), [s.mean for s in learner],
                yerr=[1.96 * s.stderr for s in learner], marker="o", capsize=3,
                label=result.protocol.get("learner"))
    for i, (name, score) in enumerate((k, v) for k, v in result.scores.items()
                                      if k not in result.learner_keys):
        ax.axhline(score.mean, ls="--", color=f"C{i + 1}", label=name)
    ax.set_xticks(range(len(learner)))
    ax.set_xlabel("adaptation steps")
    ax.set_ylabel("held-out return (95% CI)")
    ax.set_title(f"{result.protocol.get('learner')} on {result.protocol['env']['name']}, "
                 f"{result.protocol.get('tasks')} held-out tasks", fontsize=9)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.05 * (high - low))  # a baseline at the top stays visible
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def regression_fits(learner, episodes, out: str | Path, steps=(1, 10)) -> Path:
    """For a few 1-D regression tasks: support points, the task's true curve (its many query
    points), and the model's predictions before and after adapting for each of ``steps``."""
    import numpy as np

    plt = _pyplot()
    count = len(episodes.support_x)
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 3.3), squeeze=False)
    for ax, sx, sy, qx, qy in zip(axes[0], *episodes):
        order = np.argsort(qx[:, 0])
        grid = qx[order]
        ax.plot(grid[:, 0], qy[order][:, 0], "k-", lw=2, alpha=0.35, label="task")
        ax.plot(grid[:, 0], learner.model.predict(grid, verbose=0)[:, 0], "--", label="before")
        for s in steps:
            adapted = learner.adapt(sx, sy, steps=s)
            ax.plot(grid[:, 0], adapted.predict(grid, verbose=0)[:, 0],
                    label=f"after {s} step{'s' * (s != 1)}")
        ax.plot(sx[:, 0], sy[:, 0], "k^", ms=8, label=f"{len(sx)} support points")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def episode(support_x, support_y, query_x, query_y, out: str | Path, predictions=None,
            max_queries: int = 20) -> Path:
    """One classification episode: the support set by class, then query images titled with
    predicted / true labels (green when right, red when wrong)."""
    import numpy as np

    plt = _pyplot()
    ways = int(np.max(support_y)) + 1
    shots = len(support_y) // ways
    queries = min(len(query_y), max_queries)
    cols = max(ways * shots, 10)
    rows = 1 + -(-queries // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")

    def show(ax, image):
        image = np.asarray(image, dtype=np.float32)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")

    for i, order in enumerate(np.argsort(support_y, kind="stable")):
        show(axes[0][i], support_x[order])
        axes[0][i].set_title(f"class {support_y[order]}", fontsize=7)
    predicted = None if predictions is None else np.argmax(predictions, axis=-1)
    for j in range(queries):
        ax = axes[1 + j // cols][j % cols]
        show(ax, query_x[j])
        if predicted is None:
            ax.set_title(f"true {query_y[j]}", fontsize=7)
        else:
            ok = predicted[j] == query_y[j]
            ax.set_title(f"{predicted[j]} / {query_y[j]}", fontsize=7,
                         color="green" if ok else "red")
    fig.suptitle("support (top) and query: predicted / true", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
