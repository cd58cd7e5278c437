"""RL^2 on Bernoulli bandits (k=5, n=10): held-out score against the classical baselines.

Trains `keras_meta.rl.learners.RL2` (GRU(64), PPO + GAE, trials played inside the graph)
for `--iterations` PPO iterations of `--batch` trials each, once per training seed; scores
the trained policy on the same held-out tasks as the baselines (test split, seed 0) with
`keras_meta.rl.evaluate` in the numpy environment (sampled actions, and the most likely
action); writes docs/results/rl2.md with the learning curve, wall times and environment
steps.

    .venv/bin/python benchmarks/rl2_bandits.py [--iterations 300] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import keras
import tensorflow as tf
from _record import environment, markdown_header

import keras_meta.rl as rl
from keras_meta.rl.baselines.bandits import BEST_UCB1_C
from keras_meta.rl.learners import RL2, RL2Agent, task_batch

CONFIG = {"hidden_units": 64, "discount": 1.0, "gae_lambda": 0.3, "clip_ratio": 0.2,
          "ppo_epochs": 4, "num_minibatches": 4, "entropy_coefficient": 0.01,
          "value_coefficient": 0.5, "max_grad_norm": 1.0}


def train(seed: int, args: argparse.Namespace, env: rl.BernoulliBanditRL2, tasks) -> dict:
    """Trains one RL^2 agent; returns its curve, final scores and timings."""
    keras.utils.set_random_seed(seed)
    rl2 = RL2(rl.BernoulliBanditRL2(args.arms, args.pulls), **CONFIG)
    rl2.compile(keras.optimizers.Adam(args.learning_rate))
    data = rl2.dataset(args.batch, seed=seed)
    curve: list[tuple[int, int, float, float]] = []
    first: list[float] = []
    start = time.perf_counter()

    class Checkpoints(keras.callbacks.Callback):
        """Times the first (tracing) step; scores the held-out tasks at the checkpoints."""

        def on_train_batch_end(self, batch, logs=None):
            if not first:
                first.append(time.perf_counter() - start)

        def on_epoch_end(self, epoch, logs=None):
            done = (epoch + 1) * args.checkpoint_every
            if done in args.checkpoints or done == args.iterations:
                curve.append((done, int(rl2.env_steps.numpy()), time.perf_counter() - start,
                              rl.evaluate(env, RL2Agent(rl2), tasks).mean))

    # One `fit` call: Keras keeps the dataset's iterator across epochs, so the task stream
    # is never restarted.
    rl2.fit(data, steps_per_epoch=args.checkpoint_every,
            epochs=args.iterations // args.checkpoint_every, verbose=0,
            callbacks=[Checkpoints()])
    train_s = time.perf_counter() - start
    sampled = rl.evaluate(env, RL2Agent(rl2), tasks)
    greedy = rl.evaluate(env, RL2Agent(rl2, deterministic=True), tasks)
    return {"seed": seed, "first_step_s": first[0], "train_s": train_s,
            "rollout_steps_per_s": rollout_speed(rl2),
            "env_steps": int(rl2.env_steps.numpy()), "curve": curve, "sampled": sampled,
            "mode": greedy}


def rollout_speed(rl2: RL2, batch: int = 1024, repeats: int = 5) -> float:
    """Environment steps per second of in-graph rollouts alone (policy + dynamics)."""
    tasks = task_batch(rl2.dynamics, rl2.dynamics.sample_tasks(batch, split="train"))
    play = tf.function(lambda seed: rl2.collect(tasks, seed).returns())
    play(tf.constant([0, 0])).numpy()
    start = time.perf_counter()
    for i in range(repeats):
        play(tf.constant([i, 1])).numpy()
    return repeats * batch * rl2.dynamics.trial_length / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch", type=int, default=256, help="trials per PPO iteration")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", type=int, default=1000, help="held-out test tasks")
    parser.add_argument("--checkpoint-every", type=int, default=25,
                        help="iterations per Keras epoch (must divide --iterations)")
    parser.add_argument("--checkpoints", type=int, nargs="*", default=[25, 50, 100, 200],
                        help="iterations after which the held-out score is recorded")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    if args.iterations % args.checkpoint_every:
        parser.error("--checkpoint-every must divide --iterations")
    record = environment(("numpy", "tensorflow", "keras", "tf-agents"))
    load_start = os.getloadavg()[0]
    start = time.perf_counter()

    k, n = args.arms, args.pulls
    tasks = rl.sample_bandit_tasks(args.tasks, k, split="test")
    env = rl.BernoulliBanditRL2(k, n, batch_size=args.tasks)
    baselines = {
        "Random": rl.evaluate(env, rl.RandomAgent(env.action_spec()), tasks),
        "Greedy": rl.evaluate(env, rl.GreedyBandit(), tasks),
        "Greedy, random ties": rl.evaluate(env, rl.GreedyBandit(tie_break="random"), tasks),
        f"UCB1 (c={BEST_UCB1_C.get(n, 0.2)})": rl.evaluate(
            env, rl.UCB1Bandit(BEST_UCB1_C.get(n, 0.2)), tasks),
        "Thompson": rl.evaluate(env, rl.ThompsonBandit(), tasks),
    }
    if n <= 12:
        baselines["Bayes-optimal policy"] = rl.evaluate(env, rl.BayesOptimalBandit(k, n), tasks)
    runs = []
    for seed in args.seeds:
        runs.append(train(seed, args, env, tasks))
        r = runs[-1]
        print(f"seed {seed}: {r['sampled']} (sampled), {r['mode']} (most likely action), "
              f"{r['train_s']:.0f} s, {r['env_steps']} env steps")
    total = time.perf_counter() - start

    rows = ["| agent | held-out score (mean ± s.e.) |", "|---|---|"]
    rows += [f"| {name} | {score} |" for name, score in baselines.items()]
    for r in runs:
        rows.append(f"| **RL^2, seed {r['seed']}, sampled actions** | **{r['sampled']}** |")
        rows.append(f"| RL^2, seed {r['seed']}, most likely action | {r['mode']} |")
    timing = ["| seed | first step (trace) s | training s | env steps | env steps/s, training "
              "| env steps/s, rollouts only |", "|---|---|---|---|---|---|"]
    for r in runs:
        timing.append(f"| {r['seed']} | {r['first_step_s']:.1f} | {r['train_s']:.0f} | "
                      f"{r['env_steps']:,} | {r['env_steps'] / r['train_s']:,.0f} | "
                      f"{r['rollout_steps_per_s']:,.0f} |")
    curve = ["| seed | iteration | env steps | wall s | held-out score (sampled) |",
             "|---|---|---|---|---|"]
    for r in runs:
        curve += [f"| {r['seed']} | {i} | {s:,} | {w:.0f} | {score:.2f} |"
                  for i, s, w, score in r["curve"]]
    config = ", ".join(f"{key}={value}" for key, value in CONFIG.items())
    text = markdown_header(f"RL^2 on Bernoulli bandits (k={k}, n={n})", record) + (
        f"Held-out tasks: {args.tasks} tasks of the test split (seed 0), the same tasks and "
        "environment seed for every agent, played in the numpy `BernoulliBanditRL2` with "
        "`keras_meta.rl.evaluate`; score = total reward of the n-pull trial. Training: "
        f"`RL2({config})`, Adam({args.learning_rate}), {args.iterations} PPO iterations of "
        f"{args.batch} trials from the train split, trials played inside the graph "
        "(`BanditDynamics` fused with the GRU policy in a `tf.while_loop`); the held-out "
        "evaluations at the checkpoints are included in the training wall time. "
        f"Total wall time {total:.0f} s; load average (1 min) {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other jobs shared the 2 cores; the runs used "
        "`nice -n 19`, so wall times are upper bounds).\n\n## Scores\n\n"
        + "\n".join(rows) + "\n\n## Wall time and environment steps\n\n"
        "Training: PPO iterations including the rollouts, the 4 x 4 minibatch updates and "
        "the checkpoint evaluations. Rollouts only: the trained policy playing 1024 trials "
        "in one compiled `tf.while_loop` (no update).\n\n" + "\n".join(timing)
        + "\n\n## Learning curve\n\n" + "\n".join(curve) + "\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rl2.md").write_text(text)
    print("\n".join(rows))
    print(f"wrote {out / 'rl2.md'} in {total:.0f} s")


if __name__ == "__main__":
    main()
