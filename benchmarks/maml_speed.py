"""Meta-steps per second and peak memory of keras-meta MAML (one configuration per process).

Configurations (the same math as the peers in benchmarks/peers/):
- sinusoid: MLP 1-40-40-1, meta-batch 25, K=10 support + 10 query, inner SGD 0.01, Adam 1e-3.
- conv: Conv-4 (64 filters, batch norm, 28x28x1), 5-way 1-shot, 15 queries per class,
  meta-batch 32, inner SGD 0.4, Adam 1e-3; synthetic images (speed only).

Prints one JSON line: {"framework", "config", "order", "inner_steps", "meta_steps_per_s" (median
of repeats), "runs", "peak_rss_gb", "versions", "settings"}.

    .venv/bin/python benchmarks/maml_speed.py --config sinusoid --order 2 --inner-steps 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import _record  # noqa: F401  (puts this checkout's keras_meta first on the path)
import keras
import numpy as np
import tensorflow as tf

import keras_meta
from keras_meta import learners, models


def sinusoid_setup(args):
    net = models.mlp((1,), (40, 40), 1)
    tasks = keras_meta.tasks.Sinusoid(shots=10)
    if args.live_tasks:
        dataset = tasks.dataset("train", 25, seed=args.seed)
    else:  # as the peers: a fixed pool of 50 meta-batches, made before timing, cycled
        pool = tasks.episodes("train", 50 * 25, seed=args.seed, meta_batch_size=25)
        inputs, y = (p.reshape((50, 25) + p.shape[1:]) for p in pool.inputs().values()), \
            pool.query_y.reshape((50, 25, 10, 1))
        sx, sy, qx = inputs
        dataset = tf.data.Dataset.from_tensor_slices(
            ({"support_x": sx, "support_y": sy, "query_x": qx}, y)).cache().repeat().prefetch(8)
    return net, "mse", 0.01, dataset


def conv_setup(args):
    net = models.conv4((28, 28, 1), ways=5)
    rng = np.random.default_rng(args.seed)
    pool = 4  # distinct meta-batches, cycled: speed does not depend on the pixel values
    sx = rng.random((pool, 32, 5, 28, 28, 1), dtype=np.float32)
    qx = rng.random((pool, 32, 75, 28, 28, 1), dtype=np.float32)
    sy = np.tile(np.arange(5, dtype=np.int32), (pool, 32, 1))
    qy = np.tile(np.repeat(np.arange(5, dtype=np.int32), 15), (pool, 32, 1))
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"support_x": sx, "support_y": sy, "query_x": qx}, qy)).repeat().prefetch(2)
    return net, keras.losses.SparseCategoricalCrossentropy(from_logits=True), 0.4, dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["sinusoid", "conv"], default="sinusoid")
    parser.add_argument("--order", type=int, choices=[1, 2], default=2)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="timed meta-steps per repeat")
    parser.add_argument("--warmup", type=int, default=None, help="untimed meta-steps (compile)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit", choices=["on", "off"], default=None,
                        help="XLA (default: on for sinusoid, off for conv, where it is slower)")
    parser.add_argument("--steps-per-execution", type=int, default=None)
    parser.add_argument("--task-batching", choices=["auto", "map", "vectorize"], default="auto")
    parser.add_argument("--task-chunk-size", type=int, default=None)
    parser.add_argument("--keras-loop", action="store_true",
                        help="Keras' own steps_per_execution loop (one XLA launch per step) "
                        "instead of keras-meta's fused blocks")
    parser.add_argument("--live-tasks", action="store_true",
                        help="sinusoid: sample new tasks in the tf.data pipeline every step "
                        "(default: cycle a fixed pool of 50 meta-batches, as the peers do)")
    args = parser.parse_args()
    sinusoid = args.config == "sinusoid"
    steps = args.steps or (2000 if sinusoid else 3)
    warmup = args.warmup or (200 if sinusoid else 1)
    jit = (args.jit or ("on" if sinusoid else "off")) == "on"
    spe = args.steps_per_execution or (100 if sinusoid else 1)

    keras.utils.set_random_seed(args.seed)
    net, loss, inner_lr, dataset = (sinusoid_setup if sinusoid else conv_setup)(args)
    learner = learners.MAML(net, loss=loss, update_rule=inner_lr, inner_steps=args.inner_steps,
                            first_order=args.order == 1, task_batching=args.task_batching,
                            task_chunk_size=args.task_chunk_size)
    learner.compile(keras.optimizers.Adam(1e-3, epsilon=1e-7), jit_compile=jit,
                    steps_per_execution=spe)
    if args.keras_loop:  # bypass MetaLearner's fused-step override
        learner.make_train_function = lambda force=False: keras.Model.make_train_function(
            learner, force)
    learner.fit(dataset, steps_per_epoch=max(warmup, spe), verbose=0)
    runs = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        learner.fit(dataset, steps_per_epoch=steps, verbose=0)
        runs.append(steps / (time.perf_counter() - started))
    print(json.dumps({
        "framework": "keras-meta",
        "config": args.config,
        "order": args.order,
        "inner_steps": args.inner_steps,
        "meta_steps_per_s": statistics.median(runs),
        "runs": runs,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "settings": {"jit_compile": jit, "steps_per_execution": spe,
                     "task_batching": args.task_batching,
                     "task_chunk_size": args.task_chunk_size,
                     "live_tasks": args.live_tasks, "keras_loop": args.keras_loop},
    }))


if __name__ == "__main__":
    main()
