"""MAML meta-training throughput of learn2learn (PyTorch, CPU), a peer for keras-meta.

Measures meta-steps per second of the usual learn2learn loop: for each task of the
meta-batch, ``maml.clone()``, ``adapt`` N times on the support set, then
``loss.backward()`` on the query loss; one Adam step per meta-batch.

Configs (the same math as keras-meta's benchmark and ``jax_maml.py``):

* sinusoid: MLP 1-40-40-1 ReLU, 25 tasks, K=10 support + 10 query, MSE, inner SGD 0.01.
* conv: 4 x [Conv3x3(64, same), BatchNorm (batch statistics), ReLU, MaxPool2],
  Dense(5); 5-way 1-shot, 15 queries per class, 32 tasks, cross-entropy, inner SGD 0.4.

Outer optimiser: Adam(lr=1e-3, eps=1e-7). ``--order 1`` is first-order MAML.
Prints one JSON line on stdout. ``--check-learning`` instead trains for ``--steps``
meta-steps and prints the held-out post-adaptation loss before/after to stderr.
Run with ``benchmarks/peers/.venv-torch/bin/python`` (see ``setup.sh``).
"""

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import resource
import statistics
import sys
import time
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _import_l2l_maml():
    """Return ``learn2learn.algorithms.MAML`` without running ``learn2learn/__init__``.

    The package ``__init__`` eagerly imports ``learn2learn.vision``, which needs
    torchvision; PyPI's torchvision wheels need CUDA torch and fail to import next to
    the CPU torch 2.13.0 wheel. The MAML code path (algorithms, utils, nn) needs only
    torch, so the subpackages are loaded from the installed package directly.
    """
    spec = importlib.util.find_spec("learn2learn")
    if spec is None:
        sys.exit("learn2learn is not installed: run benchmarks/peers/setup.sh")
    package = types.ModuleType("learn2learn")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["learn2learn"] = package
    from learn2learn.algorithms import MAML

    return MAML


CONFIGS = {
    "sinusoid": dict(tasks=25, inner_lr=0.01, pool=50),
    "conv": dict(tasks=32, inner_lr=0.4, pool=4, ways=5, shots=1, queries=15),
}


def sinusoid_batch(rng, tasks, k=10):
    """(x_support, y_support, x_query, y_query), each [tasks, k, 1]."""
    amp = rng.uniform(0.1, 5.0, (tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, (tasks, 1, 1))
    xs, xq = rng.uniform(-5.0, 5.0, (2, tasks, k, 1))
    return xs, amp * np.sin(xs - phase), xq, amp * np.sin(xq - phase)


def conv_batch(rng, tasks, ways, shots, queries):
    """Random images [tasks, n, 1, 28, 28] (NCHW) with balanced labels [tasks, n]."""

    def split(per_class):
        n = ways * per_class
        x = rng.standard_normal((tasks, n, 1, 28, 28))
        y = np.tile(np.repeat(np.arange(ways), per_class), (tasks, 1))
        return x, y

    return (*split(shots), *split(queries))


def to_torch(batch):
    return tuple(
        torch.from_numpy(a).float() if a.dtype.kind == "f" else torch.from_numpy(a).long()
        for a in batch
    )


def make_model(config):
    if config == "sinusoid":
        model = nn.Sequential(
            nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1)
        )
    else:
        layers, channels = [], 1
        for _ in range(4):
            layers += [
                nn.Conv2d(channels, 64, 3, padding=1),
                nn.BatchNorm2d(64, eps=1e-3, track_running_stats=False),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = 64
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(64, 5))
    for module in model.modules():  # Keras defaults: Glorot-uniform kernels, zero bias
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def meta_step(maml, optimizer, batch, loss_fn, inner_steps, train=True):
    """One meta-step over the meta-batch; returns the mean query loss (a tensor)."""
    xs, ys, xq, yq = batch
    tasks = xs.shape[0]
    optimizer.zero_grad()
    total = torch.zeros(())
    for t in range(tasks):
        learner = maml.clone()
        for _ in range(inner_steps):
            learner.adapt(loss_fn(learner(xs[t]), ys[t]))
        loss = loss_fn(learner(xq[t]), yq[t]) / tasks
        if train:
            loss.backward()
        total += loss.detach()
    if train:
        optimizer.step()
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="sinusoid")
    parser.add_argument("--order", type=int, choices=(1, 2), default=2)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-learning", action="store_true")
    args = parser.parse_args()

    cfg = CONFIGS[args.config]
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.config == "sinusoid":

        def new_batch():
            return to_torch(sinusoid_batch(rng, cfg["tasks"]))

        loss_fn = F.mse_loss
    else:

        def new_batch():
            return to_torch(
                conv_batch(rng, cfg["tasks"], cfg["ways"], cfg["shots"], cfg["queries"])
            )

        loss_fn = F.cross_entropy
    pool = [new_batch() for _ in range(cfg["pool"])]  # fixed data, made before timing

    MAML = _import_l2l_maml()
    maml = MAML(make_model(args.config), lr=cfg["inner_lr"], first_order=args.order == 1)
    optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3, eps=1e-7)
    step = 0

    def run(n, train=True):
        nonlocal step
        for _ in range(n):
            meta_step(maml, optimizer, pool[step % len(pool)], loss_fn, args.inner_steps, train)
            step += 1

    if args.check_learning:
        held_out = new_batch()
        before = meta_step(maml, optimizer, held_out, loss_fn, args.inner_steps, False)
        run(args.steps)
        after = meta_step(maml, optimizer, held_out, loss_fn, args.inner_steps, False)
        print(
            f"l2l {args.config} order {args.order}: held-out post-adaptation loss "
            f"{before.item():.4f} -> {after.item():.4f} after {args.steps} meta-steps",
            file=sys.stderr,
        )
        sys.exit(0 if after < before else 1)

    run(args.warmup)
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run(args.steps)
        runs.append(args.steps / (time.perf_counter() - start))

    print(
        json.dumps(
            {
                "framework": "learn2learn",
                "config": args.config,
                "order": args.order,
                "inner_steps": args.inner_steps,
                "task_loop": "python",
                "meta_steps_per_s": statistics.median(runs),
                "runs": runs,
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
                "versions": {
                    "learn2learn": importlib.metadata.version("learn2learn"),
                    "torch": torch.__version__,
                    "numpy": np.__version__,
                    "python": platform.python_version(),
                    "torch_threads": torch.get_num_threads(),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
