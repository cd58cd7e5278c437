"""RL^2 on Bernoulli bandits (k arms, n pulls): held-out score against the classical baselines.

Trains `keras_meta.rl.learners.RL2` (GRU, PPO + GAE, trials played inside the graph) for
`--iterations` PPO iterations of `--batch` trials each (or until `--max-minutes`), once per
training seed; scores the trained policy on the same held-out tasks as the baselines (test
split, seed 0, the same environment seed) with `keras_meta.rl.evaluate` in the numpy
environment. The reported score is the one of *sampled* actions (the policy as trained);
the most likely action and the paired difference from the target baseline (UCB1 of
the baseline table) are reported alongside. Writes the cell ``k=<k>, n=<n>`` of
docs/results/rl2.json and re-renders docs/results/rl2.md from all cells there.

    .venv/bin/python benchmarks/rl2_bandits.py --arms 5 --pulls 10 [--iterations 1000] \
        [--final-learning-rate 0] [--final-entropy-coefficient 0] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import keras
import tensorflow as tf
from _record import environment, markdown_header

import keras_meta.rl as rl
from keras_meta.rl.baselines.bandits import BEST_UCB1_C
from keras_meta.rl.learners import RL2, RL2Agent, task_batch
from keras_meta.rl.learners.returns import masked_mean
from keras_meta.rl.learners.rl2 import POLICY_INPUTS, RL2Policy

UCB1_SWEEP = (0.05, 0.1, 0.2, 0.3)


def add_training_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """The RL^2 / PPO / schedule arguments shared by the bandit and MDP benchmarks."""
    add = parser.add_argument
    add("--iterations", type=int, default=defaults.get("iterations", 1000))
    add("--batch", type=int, default=defaults.get("batch", 256), help="trials per iteration")
    add("--learning-rate", type=float, default=defaults.get("learning_rate", 3e-3))
    add("--final-learning-rate", type=float, default=defaults.get("final_learning_rate"),
        help="decay the learning rate linearly to this over --iterations (default: constant)")
    add("--hidden-units", type=int, default=defaults.get("hidden_units", 64))
    add("--encoder-units", type=int, nargs="+", default=[], metavar="N",
        help="ReLU layers of these widths between the step inputs and the GRU (and the "
             "separate critic's GRU); none by default, as in the RL^2 paper")
    add("--previous-observation", action="store_true",
        help="also feed the previous step's observation, so each input is a whole "
             "transition (s, a, r, s'); useful for MDPs, where rewards and transitions "
             "depend on the (state, action) pair")
    add("--discount", type=float, default=defaults.get("discount", 1.0))
    add("--gae-lambda", type=float, default=defaults.get("gae_lambda", 0.3))
    add("--ppo-epochs", type=int, default=defaults.get("ppo_epochs", 4))
    add("--minibatches", type=int, default=defaults.get("minibatches", 4))
    add("--clip-ratio", type=float, default=defaults.get("clip_ratio", 0.2))
    add("--entropy-coefficient", type=float, default=defaults.get("entropy_coefficient", 0.01))
    add("--final-entropy-coefficient", type=float,
        default=defaults.get("final_entropy_coefficient"),
        help="decay the entropy weight linearly to this over --iterations (default: constant)")
    add("--reward-scale", type=float, default=defaults.get("reward_scale", 1.0),
        help="factor on the rewards for the advantages and the critic")
    add("--critic", choices=("shared", "separate"), default="shared",
        help="the value head on the policy's GRU, or a GRU of its own")
    add("--time-aware-critic", action="store_true",
        help="feed the separate critic the fraction of the trial still to come")
    add("--task-aware-critic", action="store_true",
        help="feed the separate critic the task's parameters (arm probabilities, MDP "
             "rewards and transitions): an asymmetric actor-critic")
    add("--expected-rewards", action="store_true",
        help="advantages and critic targets from each pull's expected reward (the arm's "
             "probability, an MDP's mean reward) instead of the sampled one; also in "
             "pre-training")
    add("--task-inference-coefficient", type=float, default=0.0,
        help="weight of an auxiliary loss: a head on the policy's GRU predicts the task's "
             "parameters (arm probabilities, MDP rewards and transitions) at every step; "
             "also in pre-training and the curriculum (default 0: off)")
    add("--outer-step", choices=("ppo", "trpo"), default="ppo",
        help="PPO, or the paper's TRPO step on the policy (needs --critic separate; the "
             "optimizer then fits the critic on the --ppo-epochs x --minibatches updates)")
    add("--max-kl", type=float, default=0.01, help="TRPO's trust region")
    add("--fisher-fraction", type=float, default=1.0,
        help="fraction of the trials for TRPO's Fisher-vector products")
    add("--pretrain-pulls", type=int, default=None,
        help="first train on trials of this many pulls (bandits only), then copy the weights")
    add("--pretrain-iterations", type=int, default=200)
    add("--curriculum-pulls", type=int, nargs="+", default=[],
        help="with --pretrain-pulls: after the pre-training, train on trials of each of "
             "these lengths in turn (e.g. 30), with the main configuration at a constant "
             "learning rate and entropy weight, before the main run")
    add("--curriculum-iterations", type=int, default=100,
        help="PPO iterations of each --curriculum-pulls stage")
    add("--pretrain-final-entropy-coefficient", type=float, default=0.0,
        help="with --pretrain-pulls: the pre-training's entropy weight decays linearly from "
             f"{PRETRAIN_CONFIG['entropy_coefficient']} to this")
    add("--imitate-ucb1", type=int, default=0, metavar="ITERATIONS",
        help="bandits only, instead of --pretrain-pulls: first train the policy for this many "
             "iterations to pull the arm UCB1 would pull after its own history (behaviour "
             "cloning with the policy's own trials, as DAgger; UCB1's c of the baseline "
             "table) and the critic on those trials, then run PPO from it: a diagnostic of "
             "whether the GRU can hold UCB1 and whether PPO keeps it (default 0: off)")
    add("--imitate-batch", type=int, default=512, help="trials per --imitate-ucb1 iteration")
    add("--imitate-learning-rate", type=float, default=None,
        help="Adam's learning rate for --imitate-ucb1 (default: --learning-rate)")
    add("--initial-policy", default=None, metavar="PATH",
        help="start from this saved policy (a .keras file of --save-policies, e.g. the "
             "'-before-ppo' one of an --imitate-ucb1 run) instead of a fresh one; its "
             "architecture must match the policy options given here")
    add("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add("--tasks", type=int, default=1000, help="held-out test tasks")
    add("--checkpoint-every", type=int, default=defaults.get("checkpoint_every", 50),
        help="iterations per Keras epoch (the held-out score is recorded after each)")
    add("--max-minutes", type=float, default=None,
        help="stop a seed's training after the first checkpoint past this wall time")
    add("--label", default="",
        help="a variant's name: stored as its own cell next to the main one")
    add("--out", default="docs/results")
    add("--save-policies", default=None, metavar="DIR",
        help="also save each seed's trained policy as DIR/k<K>-n<N>[-<label>]-seed<S>.keras "
             "(for analyses after the run; not written by default), and after a "
             "pre-training or imitation stage the policy PPO starts from, with the suffix "
             "'-before-ppo'")


def rl2_config(args: argparse.Namespace) -> dict:
    config = {"hidden_units": args.hidden_units, "discount": args.discount,
              "gae_lambda": args.gae_lambda, "clip_ratio": args.clip_ratio,
              "ppo_epochs": args.ppo_epochs, "num_minibatches": args.minibatches,
              "entropy_coefficient": args.entropy_coefficient, "value_coefficient": 0.5,
              "max_grad_norm": 1.0}
    if args.encoder_units:
        config["encoder_units"] = list(args.encoder_units)
    if args.previous_observation:
        config["previous_observation"] = True
    if args.reward_scale != 1.0:
        config["reward_scale"] = args.reward_scale
    if args.critic != "shared":
        config["critic"] = args.critic
    if args.time_aware_critic:
        config["time_aware_critic"] = True
    if args.task_aware_critic:
        config["task_aware_critic"] = True
    if args.expected_rewards:
        config["expected_rewards"] = True
    if args.task_inference_coefficient:
        config["task_inference_coefficient"] = args.task_inference_coefficient
    if args.outer_step != "ppo":
        config.update(outer_step=args.outer_step, max_kl=args.max_kl,
                      fisher_fraction=args.fisher_fraction)
    if args.final_entropy_coefficient is not None:
        config["entropy_decay_iterations"] = args.iterations
        config["final_entropy_coefficient"] = args.final_entropy_coefficient
    return config


def optimizer_text(args: argparse.Namespace) -> str:
    if args.final_learning_rate is None:
        return f"Adam({args.learning_rate})"
    return (f"Adam, learning rate decayed linearly from {args.learning_rate} to "
            f"{args.final_learning_rate} over {args.iterations} iterations")


#: Pre-training on short trials (`--pretrain-pulls`): the k=5, n=10 configuration.
PRETRAIN_CONFIG = {"hidden_units": 64, "discount": 1.0, "gae_lambda": 0.3, "clip_ratio": 0.2,
                   "ppo_epochs": 4, "num_minibatches": 4, "entropy_coefficient": 0.02,
                   "value_coefficient": 0.5, "max_grad_norm": 1.0,
                   "final_entropy_coefficient": 0.0}
PRETRAIN_BATCH = 1024
PRETRAIN_LEARNING_RATE = 3e-3


def pretrain_config(args: argparse.Namespace) -> dict:
    """`PRETRAIN_CONFIG` with the trained agent's size and critic (its weights are copied)."""
    config = dict(PRETRAIN_CONFIG, hidden_units=args.hidden_units, critic=args.critic,
                  time_aware_critic=args.time_aware_critic,
                  task_aware_critic=args.task_aware_critic,
                  expected_rewards=args.expected_rewards,
                  entropy_decay_iterations=args.pretrain_iterations,
                  final_entropy_coefficient=args.pretrain_final_entropy_coefficient)
    if args.encoder_units:
        config["encoder_units"] = list(args.encoder_units)
    if args.previous_observation:
        config["previous_observation"] = True
    if args.task_inference_coefficient:  # the task head's weights are copied too
        config["task_inference_coefficient"] = args.task_inference_coefficient
    return config


def curriculum_config(args: argparse.Namespace) -> dict:
    """The main configuration without its entropy decay (curriculum stages keep the
    initial weight)."""
    config = rl2_config(args)
    config.pop("entropy_decay_iterations", None)
    config.pop("final_entropy_coefficient", None)
    return config


def pretrain(seed: int, args: argparse.Namespace, short_env) -> tuple[RL2, float, int]:
    """RL^2 on the short trials of `short_env` (`pretrain_config`, learning rate decayed
    linearly to 0 over `args.pretrain_iterations`), then on each `--curriculum-pulls`
    length in turn (`curriculum_config`, the weights copied from stage to stage); returns
    the last stage's agent, the policy's entropy over its last iteration and the
    environment steps of all stages."""
    short = RL2(short_env, **pretrain_config(args))
    short.compile(keras.optimizers.Adam(keras.optimizers.schedules.PolynomialDecay(
        PRETRAIN_LEARNING_RATE, args.pretrain_iterations * 16, 0.0)))
    history = short.fit(short.dataset(PRETRAIN_BATCH, seed=seed + 1000),
                        steps_per_epoch=args.pretrain_iterations, epochs=1, verbose=0)
    steps = int(short.env_steps.numpy())
    for stage, pulls in enumerate(args.curriculum_pulls, 1):
        longer = RL2(rl.BernoulliBanditRL2(short_env.num_arms, pulls),
                     **curriculum_config(args))
        longer.policy.set_weights(short.policy.get_weights())
        longer.compile(keras.optimizers.Adam(args.learning_rate))
        history = longer.fit(longer.dataset(args.batch, seed=seed + 1000 + stage),
                             steps_per_epoch=args.curriculum_iterations, epochs=1, verbose=0)
        steps += int(longer.env_steps.numpy())
        short = longer
    return short, float(history.history["entropy"][-1]), steps


def ucb1_choices(observations: dict[str, tf.Tensor], c: float) -> tf.Tensor:
    """The arm `UCB1Bandit(c)` pulls at each step of time-major bandit trials, from the
    pulls and successes before it (the ``prev_action`` one-hots and ``prev_reward``s the
    policy read): int32 ``[T, B]``, ties to the lowest arm."""
    pulls = tf.cumsum(observations["prev_action"], axis=0)
    wins = tf.cumsum(observations["prev_action"] * observations["prev_reward"], axis=0)
    t = tf.reduce_sum(pulls, axis=-1, keepdims=True)
    scores = rl.UCB1Bandit(c).scores(pulls, wins, t, math=tf.math)
    return tf.argmax(scores, axis=-1, output_type=tf.int32)


def imitation_learning_rate(args: argparse.Namespace) -> float:
    return (args.learning_rate if args.imitate_learning_rate is None
            else args.imitate_learning_rate)


def imitate_ucb1(rl2: RL2, seed: int, args: argparse.Namespace, c: float
                 ) -> tuple[float, int]:
    """`--imitate-ucb1` iterations of behaviour cloning: each plays a batch of trials with
    the current policy (sampled actions, so that it learns UCB1's choice on the histories
    its own mistakes lead to, as DAgger does) and takes one Adam step on the
    cross-entropy of UCB1's choices plus the critic's squared error on the trials' GAE
    targets. Returns the policy's entropy on the last batch and the environment steps."""
    policy, dist = rl2.policy, rl2.dynamics.distribution
    optimizer = keras.optimizers.Adam(imitation_learning_rate(args))
    variables = policy.trainable_variables
    optimizer.build(variables)

    @tf.function
    def step(tasks, rollout_seed):
        trials = rl2.collect(tasks, rollout_seed)
        labels = ucb1_choices(trials.observations, c)
        _, targets = rl2.advantages(trials)
        inputs = {k: trials.observations[k] for k in POLICY_INPUTS}
        with tf.GradientTape() as tape:
            params = tf.cast(policy.action_params(inputs), tf.float32)
            cross_entropy = masked_mean(-dist.log_prob(params, labels), trials.active)
            values = tf.cast(policy.critic_values(inputs), tf.float32)
            value_loss = tf.reduce_mean(tf.square(values - targets))
            loss = cross_entropy + rl2.value_coefficient * value_loss
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        if rl2.max_grad_norm is not None:
            grads, _ = tf.clip_by_global_norm(grads, rl2.max_grad_norm)
        optimizer.apply(grads, variables)
        agreement = masked_mean(tf.cast(tf.equal(trials.actions, labels), tf.float32),
                                trials.active)
        return (cross_entropy, agreement, masked_mean(dist.entropy(params), trials.active),
                tf.reduce_mean(trials.returns()))

    steps = 0
    data = rl2.dataset(args.imitate_batch, seed=seed + 2000).take(args.imitate_ucb1)
    for i, element in enumerate(data, 1):
        cross_entropy, agreement, entropy, returns = (
            float(v) for v in step(element["tasks"], element["seed"]))
        steps += args.imitate_batch * rl2.dynamics.trial_length
        if i % 50 == 0 or i == args.imitate_ucb1:
            print(f"  seed {seed} imitation {i}: cross-entropy {cross_entropy:.3f}, "
                  f"agreement {agreement:.3f}, trial return {returns:.2f}", flush=True)
    return entropy, steps


def train(seed: int, args: argparse.Namespace, dynamics_env, env, tasks,
          pretrain_env=None) -> dict:
    """Trains one RL^2 agent; returns its curve, final held-out scores and timings."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    pre_steps, pre_entropy = 0, None
    if pretrain_env is not None:
        short, pre_entropy, pre_steps = pretrain(seed, args, pretrain_env)
    rl2 = RL2(dynamics_env, **rl2_config(args))
    if pretrain_env is not None:
        rl2.policy.set_weights(short.policy.get_weights())
    if args.initial_policy:
        load_initial_policy(rl2, Path(args.initial_policy))
    if args.imitate_ucb1:
        pre_entropy, pre_steps = imitate_ucb1(rl2, seed, args,
                                              BEST_UCB1_C.get(dynamics_env.num_pulls, 0.2))
    if args.save_policies and (pretrain_env is not None or args.imitate_ucb1):
        save_policy(rl2, args, seed, "-before-ppo")
    learning_rate = args.learning_rate
    if args.final_learning_rate is not None:
        learning_rate = keras.optimizers.schedules.PolynomialDecay(
            args.learning_rate, args.iterations * args.ppo_epochs * args.minibatches,
            args.final_learning_rate)
    rl2.compile(keras.optimizers.Adam(learning_rate))
    data = rl2.dataset(args.batch, seed=seed)
    curve: list[tuple[int, int, float, float]] = []
    if pretrain_env is not None or args.imitate_ucb1 or args.initial_policy:
        curve.append((0, pre_steps, time.perf_counter() - start,
                      rl.evaluate(env, RL2Agent(rl2), tasks).mean))
        stage = ("imitation" if args.imitate_ucb1 else
                 "pre-training" if pretrain_env is not None else "loading")
        entropy = "" if pre_entropy is None else f", entropy {pre_entropy:.3f}"
        print(f"  seed {seed} after {stage}: {curve[-1][3]:.3f} ({curve[-1][2]:.0f} s"
              f"{entropy})", flush=True)
    first: list[float] = []

    class Checkpoints(keras.callbacks.Callback):
        """Times the first (tracing) step; scores the held-out tasks after each epoch."""

        def on_train_batch_end(self, batch, logs=None):
            if not first:
                first.append(time.perf_counter() - start)

        def on_epoch_end(self, epoch, logs=None):
            done = (epoch + 1) * args.checkpoint_every
            score = rl.evaluate(env, RL2Agent(rl2), tasks).mean
            curve.append((done, pre_steps + int(rl2.env_steps.numpy()),
                          time.perf_counter() - start, score))
            print(f"  seed {seed} iteration {done}: {score:.3f} "
                  f"({curve[-1][2]:.0f} s, entropy {logs.get('entropy', 0):.3f})", flush=True)
            if args.max_minutes is not None and curve[-1][2] > 60 * args.max_minutes:
                self.model.stop_training = True

    # One `fit` call: Keras keeps the dataset's iterator across epochs, so the task stream
    # is never restarted.
    rl2.fit(data, steps_per_epoch=args.checkpoint_every,
            epochs=args.iterations // args.checkpoint_every, verbose=0,
            callbacks=[Checkpoints()])
    train_s = time.perf_counter() - start
    sampled = rl.evaluate(env, RL2Agent(rl2), tasks)
    greedy = rl.evaluate(env, RL2Agent(rl2, deterministic=True), tasks)
    if args.save_policies:
        save_policy(rl2, args, seed)
    return {"seed": seed, "first_step_s": first[0], "train_s": train_s,
            "iterations": curve[-1][0], "rollout_steps_per_s": rollout_speed(rl2),
            "env_steps": pre_steps + int(rl2.env_steps.numpy()), "curve": curve, "sampled": sampled,
            "mode": greedy, "pretrain_entropy": pre_entropy}


def save_policy(rl2: RL2, args: argparse.Namespace, seed: int, suffix: str = "") -> Path:
    """Saves the policy as ``--save-policies``/k<K>-n<N>[-<label>]-seed<S><suffix>.keras."""
    # Named by cell and seed: two cells saved into one DIR never overwrite each other.
    label = "".join(c if c.isalnum() else "-" for c in args.label).strip("-")
    name = f"k{args.arms}-n{args.pulls}" + (f"-{label}" if label else "")
    path = Path(args.save_policies) / f"{name}-seed{seed}{suffix}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    rl2.policy.save(path)
    print(f"  seed {seed}: policy saved to {path}", flush=True)
    return path


def read_policy(path: Path, what: str) -> RL2Policy:
    """The `RL2Policy` saved at `path` by ``--save-policies``; exits with an error starting
    with `what` (the option or argument that named the file) when the file is missing,
    unreadable or holds something else."""
    if not path.is_file():
        raise SystemExit(f"error: {what}: no such file: {path}")
    try:
        saved = keras.models.load_model(path)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
        raise SystemExit(f"error: {what}: cannot read {path}: {error}") from None
    if not isinstance(saved, RL2Policy):
        raise SystemExit(f"error: {what}: {path} holds a {type(saved).__name__}, not an "
                         "RL2Policy (save one with rl2_bandits.py --save-policies)")
    return saved


def load_initial_policy(rl2: RL2, path: Path) -> None:
    """Copies the weights of the saved policy at `path` into `rl2.policy`; a clear error
    when the file is missing, holds no `RL2Policy` or one of another architecture."""
    saved = read_policy(path, "--initial-policy")
    have = [tuple(w.shape) for w in saved.get_weights()]
    need = [tuple(w.shape) for w in rl2.policy.get_weights()]
    if have != need:
        raise SystemExit(f"error: --initial-policy: {path} has weights of shapes {have}; the "
                         f"policy of these options (--arms, --hidden-units, --encoder-units, "
                         f"--critic, --task-inference-coefficient) needs {need}")
    rl2.policy.set_weights(saved.get_weights())


def rollout_speed(rl2: RL2, batch: int = 1024, repeats: int = 5) -> float:
    """Environment steps per second of in-graph rollouts alone (policy + dynamics)."""
    tasks = task_batch(rl2.dynamics, rl2.dynamics.sample_tasks(batch, split="train"))
    play = tf.function(lambda seed: rl2.collect(tasks, seed).returns())
    play(tf.constant([0, 0])).numpy()
    start = time.perf_counter()
    for i in range(repeats):
        play(tf.constant([i, 1])).numpy()
    return repeats * batch * rl2.dynamics.trial_length / (time.perf_counter() - start)


def score_text(score: rl.Score | None) -> str:
    if score is None:
        return "-"
    digits = 2 if abs(score.mean) < 20 else 1
    return f"{score.mean:.{digits}f} ± {score.stderr:.{digits}f}"


def score_pair(score: rl.Score | None) -> list | None:
    """``[mean, stderr]`` of a score, for the JSON record (None without one)."""
    return None if score is None else [score.mean, score.stderr]


def run_cell(args: argparse.Namespace, *, title: str, tasks_text: str, dynamics_env, env, tasks,
             baselines: dict[str, rl.Score], target: str, notes: str = "",
             pretrain_env=None) -> tuple[str, dict]:
    """Trains every seed; returns the cell's markdown (a level-2 section) and its record.

    `target` names the baseline RL^2 must reach: each seed's score is also reported as a
    paired difference from it, task by task (all agents play the same tasks with the same
    environment seed, so equal actions draw equal rewards; on n=100 bandits the difference's
    standard error is about half that of either score). Every score is also given as an
    expected score (`rl.Score.expected`: the trial's expected rewards, e.g. the chosen arms'
    success probabilities), the same mean without the rewards' own noise."""
    record = environment(("numpy", "tensorflow", "keras", "tf-agents"))
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    runs = []
    for seed in args.seeds:
        runs.append(train(seed, args, dynamics_env, env, tasks, pretrain_env))
        r = runs[-1]
        print(f"seed {seed}: {r['sampled']} (sampled), {r['mode']} (most likely action), "
              f"{r['iterations']} iterations, {r['train_s']:.0f} s, {r['env_steps']} env steps",
              flush=True)
    total = time.perf_counter() - start

    rows = ["| agent | held-out score (mean ± s.e.) | expected score (mean ± s.e.) |",
            "|---|---|---|"]
    rows += [f"| {name} | {score_text(score)} | {score_text(score.expected)} |"
             for name, score in baselines.items()]
    for r in runs:
        rows.append(f"| **RL^2, seed {r['seed']}, sampled actions** | "
                    f"**{score_text(r['sampled'])}** | {score_text(r['sampled'].expected)} |")
        rows.append(f"| RL^2, seed {r['seed']}, most likely action | {score_text(r['mode'])} | "
                    f"{score_text(r['mode'].expected)} |")
    paired = {r["seed"]: r["sampled"].minus(baselines[target]) for r in runs}
    target_label = target.split(",")[0]  # the name without its explanation, if any
    rows += [f"| RL^2, seed {seed}, sampled, minus {target_label} (paired, task by task) | "
             f"{score_text(diff)} | {score_text(diff.expected)} |"
             for seed, diff in paired.items()]
    step = args.outer_step.upper()
    timing = [f"| seed | {step} iterations | first step (trace) s | training s | env steps "
              "| env steps/s, training | env steps/s, rollouts only |",
              "|---|---|---|---|---|---|---|"]
    for r in runs:
        timing.append(f"| {r['seed']} | {r['iterations']} | {r['first_step_s']:.1f} | "
                      f"{r['train_s']:.0f} | {r['env_steps']:,} | "
                      f"{r['env_steps'] / r['train_s']:,.0f} | "
                      f"{r['rollout_steps_per_s']:,.0f} |")
    curve = ["| seed | iteration | env steps | wall s | held-out score (sampled) |",
             "|---|---|---|---|---|"]
    for r in runs:
        curve += [f"| {r['seed']} | {i} | {s:,} | {w:.0f} | {score:.3f} |"
                  for i, s, w, score in r["curve"]]
    config = ", ".join(f"{key}={value}" for key, value in rl2_config(args).items())
    header = markdown_header(title, record).replace("# ", "## ", 1)
    stopped = ("" if args.max_minutes is None else
               f" Training of a seed stopped at the first checkpoint after {args.max_minutes} "
               "min of wall time (the iterations reached are in the table below; the "
               "schedules were set for the full run).")
    text = header + (
        f"{tasks_text} Reported: the policy as trained, with *sampled* actions (bold); the most "
        "likely action alongside. Expected score: the same trials scored by each step's "
        "expected reward (a bandit arm's success probability, an MDP's mean reward), the same "
        "mean without the rewards' own noise. Training: "
        f"`RL2({config})`, {optimizer_text(args)}, up to {args.iterations} {step} iterations of "
        f"{args.batch} trials from the train split (training seed = task-stream seed), trials "
        "played inside the graph (the family's `TrialDynamics` fused with the GRU policy in "
        f"a `tf.while_loop`); the final policy is scored, no checkpoint selection.{stopped} "
        "The held-out evaluations every "
        f"{args.checkpoint_every} iterations are included in the training wall time. "
        f"Total wall time {total:.0f} s; load average (1 min) {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores (a load above the "
        "core count means other jobs shared them, and wall times are then upper bounds)."
        f"{notes}\n\n### Scores\n\n"
        + "\n".join(rows) + "\n\n### Wall time and environment steps\n\n"
        f"Training: {step} iterations including the rollouts, "
        + ("the " if step == "PPO" else "the trust-region step, the critic's ")
        + f"{args.ppo_epochs} x {args.minibatches} minibatch updates and the checkpoint "
        "evaluations. Rollouts only: "
        "the trained policy playing 1024 trials in one compiled `tf.while_loop` (no update)."
        "\n\n" + "\n".join(timing) + "\n\n### Learning curve\n\n" + "\n".join(curve) + "\n"
        + pretrain_entropy_text(runs, "imitation" if args.imitate_ucb1 else "pre-training"))
    data = {"record": record, "config": rl2_config(args), "optimizer": optimizer_text(args),
            "batch": args.batch, "total_s": total, "target": target,
            "baselines": {name: score_pair(s) for name, s in baselines.items()},
            "baselines_expected": {name: score_pair(s.expected) for name, s in baselines.items()},
            "runs": [{"seed": r["seed"], "iterations": r["iterations"],
                      "sampled": score_pair(r["sampled"]),
                      "sampled_expected": score_pair(r["sampled"].expected),
                      "most_likely": score_pair(r["mode"]),
                      "minus_target": score_pair(paired[r["seed"]]),
                      "minus_target_expected": score_pair(paired[r["seed"]].expected),
                      "train_s": r["train_s"], "first_step_s": r["first_step_s"],
                      "env_steps": r["env_steps"], "pretrain_entropy": r["pretrain_entropy"],
                      "rollout_steps_per_s": r["rollout_steps_per_s"],
                      "curve": r["curve"]} for r in runs],
            "markdown": text}
    print("\n".join(rows))
    return text, data


def write_results(out: Path, stem: str, title: str, intro: str, key: str, data: dict,
                  order) -> None:
    """Stores cell `key` in ``<stem>.json`` and renders ``<stem>.md`` from all cells."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    cells = json.loads(path.read_text())["cells"] if path.exists() else {}
    cells[key] = data
    cells = dict(sorted(cells.items(), key=lambda item: order(item[0])))
    path.write_text(json.dumps({"cells": cells}, indent=1) + "\n")
    (out / f"{stem}.md").write_text(f"# {title}\n\n{intro}\n\n"
                                    + "\n".join(c["markdown"] for c in cells.values()))
    print(f"wrote {path} and {out / f'{stem}.md'} (cell {key!r})")


def bandit_order(key: str) -> tuple:
    """Cells by n, then k; the main cell of (k, n) first, then its variants; cells not
    named ``k=.., n=..`` (a summary) before all."""
    if not key.startswith("k="):
        return (0, 0, False, key)
    fields = dict(part.strip().split("=") for part in key.split(",")[:2])
    return (int(fields["n"]), int(fields["k"]), key.count(",") > 1, key)


def pretrain_entropy_text(runs: list[dict], stage: str = "pre-training") -> str:
    entropies = [f"seed {r['seed']}: {r['pretrain_entropy']:.3f}" for r in runs
                 if r["pretrain_entropy"] is not None]
    if not entropies:
        return ""
    return (f"\nEntropy of the policy (nats per step) over the last {stage} iteration, "
            "the start of the curve above: " + ", ".join(entropies) + ".\n")


def pretrain_text(args: argparse.Namespace) -> str:
    initial = ""
    if args.initial_policy:
        initial = (f" Started from the saved policy `{Path(args.initial_policy).name}` (its "
                   "own training is recorded in its cell and not counted here); iteration 0 "
                   "of the learning curve is that policy.")
    if args.imitate_ucb1:
        c, config = BEST_UCB1_C.get(args.pulls, 0.2), rl2_config(args)
        return initial + (
            f" Imitation of UCB1 first: {args.imitate_ucb1} iterations of "
            f"{args.imitate_batch} trials of the same k and n (task stream seed + 2000), "
            "each played by the policy itself (sampled actions) and followed by one Adam "
            f"step ({imitation_learning_rate(args)}, global-norm clip "
            f"{config['max_grad_norm']}) on the "
            f"cross-entropy of the arm UCB1 (c={c}) would pull after each "
            "history (behaviour cloning on the policy's own histories, as DAgger) plus "
            f"{config['value_coefficient']} x the critic's squared error on the trials' GAE "
            "targets; iteration 0 of "
            "the learning curve is the imitating policy, before any PPO; its environment "
            "steps and wall time are included in the totals.")
    if args.pretrain_pulls is None:
        return initial
    config = ", ".join(f"{key}={value}" for key, value in pretrain_config(args).items())
    return (f" Pre-training (curriculum): each seed first trains an RL^2 agent of the same "
            f"size and critic on trials of {args.pretrain_pulls} pulls of the same k "
            f"(`RL2({config})`, Adam with the learning "
            f"rate decayed linearly from {PRETRAIN_LEARNING_RATE} to 0, "
            f"{args.pretrain_iterations} iterations of {PRETRAIN_BATCH} trials, task stream "
            "seed + 1000), then copies its weights into the agent trained above; iteration 0 "
            "of the learning curve is the copied policy; the pre-training's environment steps "
            "and wall time are included in the totals (and in the 'first step' column, "
            "timed from the start of pre-training)." + curriculum_text(args))


def curriculum_text(args: argparse.Namespace) -> str:
    if not args.curriculum_pulls:
        return ""
    config = ", ".join(f"{key}={value}" for key, value in curriculum_config(args).items())
    lengths = ", then ".join(str(p) for p in args.curriculum_pulls)
    return (f" Between the pre-training and the main run, a curriculum: trials of {lengths} "
            f"pulls, {args.curriculum_iterations} iterations each of {args.batch} trials "
            f"(`RL2({config})`, Adam({args.learning_rate}) constant, task stream seed + 1000 "
            "+ stage), the weights copied from stage to stage; its environment steps and "
            "wall time are counted with the pre-training's, and the entropy given for the "
            "pre-training is that of the last stage's last iteration.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=10)
    add_training_arguments(parser)
    args = parser.parse_args()
    if args.iterations % args.checkpoint_every:
        parser.error("--checkpoint-every must divide --iterations")
    if args.curriculum_pulls and args.pretrain_pulls is None:
        parser.error("--curriculum-pulls needs --pretrain-pulls (the stages follow it)")
    if args.imitate_ucb1 and args.pretrain_pulls is not None:
        parser.error("--imitate-ucb1 replaces --pretrain-pulls: give one of them")
    if args.imitate_ucb1 < 0 or args.imitate_batch < 1:
        parser.error("--imitate-ucb1 must be >= 0 and --imitate-batch >= 1")
    if args.initial_policy and args.pretrain_pulls is not None:
        parser.error("--initial-policy replaces --pretrain-pulls: give one of them")
    if args.initial_policy and not Path(args.initial_policy).is_file():
        parser.error(f"--initial-policy: no such file: {args.initial_policy}")
    if args.curriculum_iterations < 1:
        parser.error(f"--curriculum-iterations must be >= 1, got {args.curriculum_iterations}")
    k, n = args.arms, args.pulls
    tasks = rl.sample_bandit_tasks(args.tasks, k, split="test")
    env = rl.BernoulliBanditRL2(k, n, batch_size=args.tasks)
    start = time.perf_counter()
    best_c = BEST_UCB1_C.get(n, 0.2)
    target = f"UCB1 (c={best_c}), the c of the baseline table"
    baselines = {
        "Random": rl.evaluate(env, rl.RandomAgent(env.action_spec()), tasks),
        "Greedy": rl.evaluate(env, rl.GreedyBandit(), tasks),
        "Greedy, random ties": rl.evaluate(env, rl.GreedyBandit(tie_break="random"), tasks),
    }
    for c in sorted(set(UCB1_SWEEP) | {best_c}):
        name = target if c == best_c else f"UCB1 (c={c})"
        baselines[name] = rl.evaluate(env, rl.UCB1Bandit(c), tasks)
    baselines["Thompson"] = rl.evaluate(env, rl.ThompsonBandit(), tasks)
    if n <= 12:
        baselines["Bayes-optimal policy"] = rl.evaluate(env, rl.BayesOptimalBandit(k, n), tasks)
    baseline_s = time.perf_counter() - start
    tasks_text = (
        f"Held-out tasks: {args.tasks} tasks of the test split (seed 0), the same tasks and "
        "environment seed for every agent, played in the numpy `BernoulliBanditRL2` with "
        "`keras_meta.rl.evaluate`; score = total reward of the n-pull trial. Baselines as in "
        f"`rl_baselines.md` (ties to the lowest arm unless marked), {baseline_s:.0f} s.")
    key = f"k={k}, n={n}" + (f", {args.label}" if args.label else "")
    text, data = run_cell(args, title=key, tasks_text=tasks_text,
                          dynamics_env=rl.BernoulliBanditRL2(k, n), env=env, tasks=tasks,
                          baselines=baselines, target=target, notes=pretrain_text(args),
                          pretrain_env=(None if args.pretrain_pulls is None else
                                        rl.BernoulliBanditRL2(k, args.pretrain_pulls)))
    intro = ("RL^2 (`keras_meta.rl.learners.RL2`) on Bernoulli bandits of the RL^2 protocol "
             "(shared/notes/meta-rl.md), scored on held-out tasks against the classical "
             "baselines on the same tasks. Written by `benchmarks/rl2_bandits.py`, one "
             "section per (k, n) cell; the raw numbers are in `rl2.json`.")
    write_results(Path(args.out), "rl2", "RL^2 on Bernoulli bandits", intro, key, data,
                  bandit_order)


if __name__ == "__main__":
    main()
