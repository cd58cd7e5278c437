"""MAML meta-training throughput of plain JAX (CPU), a peer for keras-meta.

Measures meta-steps per second of one ``jax.jit``-compiled meta-step: the inner loop
(N plain-SGD steps on the support set, unrolled) is ``jax.vmap``-ed over the tasks of
the meta-batch, the outer gradient of the mean query loss is taken with
``jax.value_and_grad`` and applied with ``optax.adam``. Each step's meta-batch is an
argument of the jitted function (nothing is constant-folded); timings end with
``jax.block_until_ready``. ``--task-loop unroll`` replaces the vmap by one copy of the
task graph per task: vmap turns the adapted per-task conv kernels into grouped
convolutions, which XLA:CPU runs several times slower (the sinusoid MLP is unaffected).

Configs (the same math as keras-meta's benchmark and ``l2l_maml.py``):

* sinusoid: MLP 1-40-40-1 ReLU, 25 tasks, K=10 support + 10 query, MSE, inner SGD 0.01.
* conv: 4 x [Conv3x3(64, same), BatchNorm (batch statistics, exact variance), ReLU,
  MaxPool2], Dense(5), NHWC; 5-way 1-shot, 15 queries per class, 32 tasks,
  cross-entropy, inner SGD 0.4.

Outer optimiser: Adam(lr=1e-3, eps=1e-7). ``--order 1`` is first-order MAML
(stop_gradient on the inner gradients). Prints one JSON line on stdout.
``--check-learning`` instead trains for ``--steps`` meta-steps and prints the
held-out post-adaptation loss before/after to stderr.
Run with ``benchmarks/peers/.venv-jax/bin/python`` (see ``setup.sh``).
"""

import argparse
import functools
import json
import platform
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from jax import lax

CONFIGS = {
    "sinusoid": dict(tasks=25, inner_lr=0.01, pool=50),
    "conv": dict(tasks=32, inner_lr=0.4, pool=4, ways=5, shots=1, queries=15),
}
BN_EPS = 1e-3  # Keras BatchNormalization default


def sinusoid_batch(rng, tasks, k=10):
    """(x_support, y_support, x_query, y_query), each [tasks, k, 1]."""
    amp = rng.uniform(0.1, 5.0, (tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, (tasks, 1, 1))
    xs, xq = rng.uniform(-5.0, 5.0, (2, tasks, k, 1))
    return xs, amp * np.sin(xs - phase), xq, amp * np.sin(xq - phase)


def conv_batch(rng, tasks, ways, shots, queries):
    """Random images [tasks, n, 28, 28, 1] (NHWC) with balanced labels [tasks, n]."""

    def split(per_class):
        n = ways * per_class
        x = rng.standard_normal((tasks, n, 28, 28, 1))
        y = np.tile(np.repeat(np.arange(ways), per_class), (tasks, 1))
        return x, y

    return (*split(shots), *split(queries))


def to_device(batch):
    return tuple(jnp.asarray(a, jnp.float32 if a.dtype.kind == "f" else jnp.int32) for a in batch)


def glorot(key, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def init_mlp(key):
    sizes = [1, 40, 40, 1]
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": glorot(k, (i, o), i, o), "b": jnp.zeros(o)}
        for k, i, o in zip(keys, sizes[:-1], sizes[1:])
    ]


def apply_mlp(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def init_conv(key):
    keys = jax.random.split(key, 5)
    blocks = [
        {
            "w": glorot(k, (3, 3, c, 64), 9 * c, 9 * 64),
            "b": jnp.zeros(64),
            "gamma": jnp.ones(64),
            "beta": jnp.zeros(64),
        }
        for k, c in zip(keys[:4], [1, 64, 64, 64])
    ]
    return {"blocks": blocks, "dense": {"w": glorot(keys[4], (64, 5), 64, 5), "b": jnp.zeros(5)}}


def apply_conv(params, x):
    for blk in params["blocks"]:
        x = lax.conv_general_dilated(
            x, blk["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        x = x + blk["b"]
        mean = x.mean(axis=(0, 1, 2))
        var = ((x - mean) ** 2).mean(axis=(0, 1, 2))
        x = (x - mean) * lax.rsqrt(var + BN_EPS) * blk["gamma"] + blk["beta"]
        x = jax.nn.relu(x)
        x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    x = x.reshape(x.shape[0], -1)
    return x @ params["dense"]["w"] + params["dense"]["b"]


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def cross_entropy(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def make_fns(config, order, inner_steps, inner_lr, optimizer, task_loop="vmap"):
    apply, loss = (apply_mlp, mse) if config == "sinusoid" else (apply_conv, cross_entropy)

    def objective(params, x, y):
        return loss(apply(params, x), y)

    def task_loss(params, xs, ys, xq, yq):
        for _ in range(inner_steps):
            grads = jax.grad(objective)(params, xs, ys)
            if order == 1:
                grads = lax.stop_gradient(grads)
            params = jax.tree.map(lambda p, g: p - inner_lr * g, params, grads)
        return objective(params, xq, yq)

    def outer_loss(params, batch):
        if task_loop == "vmap":
            losses = jax.vmap(task_loss, in_axes=(None, 0, 0, 0, 0))(params, *batch)
        else:  # "unroll": one copy of the task graph per task, no batched kernels
            losses = jnp.stack(
                [task_loss(params, *(a[t] for a in batch)) for t in range(batch[0].shape[0])]
            )
        return losses.mean()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, batch):
        value, grads = jax.value_and_grad(outer_loss)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return train_step, jax.jit(outer_loss)


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
    parser.add_argument(
        "--task-loop",
        choices=("vmap", "unroll"),
        default="vmap",
        help="vmap over tasks (default), or unroll the tasks in the "
        "jitted graph (much faster for conv on XLA:CPU, slower compile)",
    )
    args = parser.parse_args()

    cfg = CONFIGS[args.config]
    rng = np.random.default_rng(args.seed)
    key = jax.random.PRNGKey(args.seed)
    if args.config == "sinusoid":

        def new_batch():
            return to_device(sinusoid_batch(rng, cfg["tasks"]))

        params = init_mlp(key)
    else:

        def new_batch():
            return to_device(
                conv_batch(rng, cfg["tasks"], cfg["ways"], cfg["shots"], cfg["queries"])
            )

        params = init_conv(key)
    pool = [new_batch() for _ in range(cfg["pool"])]  # fixed data, made before timing

    optimizer = optax.adam(1e-3, eps=1e-7)
    opt_state = optimizer.init(params)
    train_step, eval_loss = make_fns(
        args.config, args.order, args.inner_steps, cfg["inner_lr"], optimizer, args.task_loop
    )
    step = 0

    def run(n):
        nonlocal params, opt_state, step
        for _ in range(n):
            params, opt_state, _ = train_step(params, opt_state, pool[step % len(pool)])
            step += 1
        jax.block_until_ready((params, opt_state))

    if args.check_learning:
        held_out = new_batch()
        before = float(eval_loss(params, held_out))
        run(args.steps)
        after = float(eval_loss(params, held_out))
        print(
            f"jax ({args.task_loop}) {args.config} order {args.order}: held-out "
            f"post-adaptation loss {before:.4f} -> {after:.4f} after {args.steps} meta-steps",
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
                "framework": "jax",
                "config": args.config,
                "order": args.order,
                "inner_steps": args.inner_steps,
                "task_loop": args.task_loop,
                "meta_steps_per_s": statistics.median(runs),
                "runs": runs,
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
                "versions": {
                    "jax": jax.__version__,
                    "jaxlib": jaxlib.__version__,
                    "optax": optax.__version__,
                    "numpy": np.__version__,
                    "python": platform.python_version(),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
