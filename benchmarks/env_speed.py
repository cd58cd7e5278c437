"""Environment steps per second of the meta-RL task families.

Steps each family (batch 400, random actions drawn in advance) through the numpy
`PyEnvironment`, through `TFPyEnvironment` eagerly, and through `TFPyEnvironment`
inside one `tf.function` (a `tf.while_loop` of steps), prints a markdown table of
env-steps/s (batch rows x steps per second, trial resets included) and writes it to
docs/results/env_speed.md.

    .venv/bin/python benchmarks/env_speed.py [--batch-size 400] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from _record import environment, markdown_header

import keras_meta.rl as rl

FAMILIES = {
    "BernoulliBanditRL2 (k=5, n=100)": lambda b: rl.BernoulliBanditRL2(5, 100, b),
    "TabularMDPRL2 (n=10)": lambda b: rl.TabularMDPRL2(10, b),
    "Navigation2DMAML (1 episode)": lambda b: rl.Navigation2DMAML(1, b),
}


def _actions(env: rl.TrialEnvironment, count: int) -> np.ndarray:
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    shape = (count, env.batch_size) + tuple(spec.shape)
    if np.issubdtype(spec.dtype, np.integer):
        return rng.integers(spec.minimum, spec.maximum, shape, endpoint=True).astype(spec.dtype)
    return rng.uniform(spec.minimum, spec.maximum, shape).astype(spec.dtype)


def _timed(run, steps: int, seconds: float) -> tuple[float, float]:
    """Repeats ``run(steps)`` for about `seconds`.

    Returns:
        Steps per wall-clock second and per CPU second of this process (all its
        threads): the second is what an idle machine would give when other jobs share
        the cores (on an idle machine the two agree for single-threaded numpy).
    """
    run(min(steps, 20))  # warm up (tracing for tf.function)
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        run(steps)
        done += steps
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu)


def measure(make, batch_size: int, seconds: float) -> dict[str, tuple[float, float]]:
    """Returns env-steps per wall second and per CPU second for three ways of stepping."""
    from tf_agents.environments import tf_py_environment  # after keras_meta.rl: quiet import

    env = make(batch_size)
    actions = _actions(env, 256)
    env.reset()

    def py_steps(n):
        for i in range(n):
            env.step(actions[i % 256])

    tf_env = tf_py_environment.TFPyEnvironment(make(batch_size))
    tf_env.reset()
    tf_actions = tf.constant(actions)

    def eager_steps(n):
        for i in range(n):
            tf_env.step(tf_actions[i % 256])

    @tf.function
    def graph_loop(n):
        def body(i, total):
            return i + 1, total + tf_env.step(tf.gather(tf_actions, i % 256)).reward

        return tf.while_loop(lambda i, _: i < n, body, (0, tf.zeros([batch_size])))[1]

    speeds = {
        "PyEnvironment": _timed(py_steps, 200, seconds),
        "TFPyEnvironment (eager)": _timed(eager_steps, 100, seconds),
        "TFPyEnvironment (tf.function)": _timed(lambda n: graph_loop(tf.constant(n)), 200, seconds),
    }
    return {name: (batch_size * wall, batch_size * cpu) for name, (wall, cpu) in speeds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    env = environment(("numpy", "tensorflow", "tf-agents"))
    load_start = os.getloadavg()[0]
    rows = {name: measure(make, args.batch_size, args.seconds) for name, make in FAMILIES.items()}
    columns = list(next(iter(rows.values())))
    lines = ["| family | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, speeds in rows.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{speeds[c][1] / 1e3:,.0f} ({speeds[c][0] / 1e3:,.0f})" for c in columns) + " |")
    text = markdown_header("Meta-RL environment speed", env) + (
        f"Thousands of env-steps per CPU second of the process, and in parentheses per wall "
        f"second (batch {args.batch_size} tasks x batched steps, random actions, trial resets "
        "with new tasks included), one numpy-vectorised batched `PyEnvironment` per family, "
        f"about {args.seconds:g} s per measurement. CPU seconds make the numbers comparable "
        "when other jobs share the cores; on an idle machine the two agree for numpy, while "
        "TensorFlow may spend CPU in more than one thread. Load average "
        f"(1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.\n\n"
        + "\n".join(lines) + "\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "env_speed.md").write_text(text)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
