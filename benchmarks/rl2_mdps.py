"""RL^2 on random tabular MDPs (S=10, A=5, horizon 10, n episodes): held-out score.

Trains `keras_meta.rl.learners.RL2` (GRU, PPO + GAE, trials of n episodes played inside the
graph) as `benchmarks/rl2_bandits.py` does, and scores it on the held-out MDPs (test split,
seed 0, the same environment seed) against Random, PSRL, posterior-mean planning and the
oracle that knows the MDP, all played in the numpy `TabularMDPRL2`. Reported: sampled
actions (the policy as trained); the most likely action and the paired difference from PSRL
alongside. Writes the cell
``n=<n>`` of docs/results/rl2_mdps.json and re-renders docs/results/rl2_mdps.md.

    .venv/bin/python benchmarks/rl2_mdps.py --episodes 10 [--iterations 1000] \
        [--hidden-units 128] [--reward-scale 0.1] [--max-minutes 20] [--seeds 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rl2_bandits import add_training_arguments, run_cell, write_results

import keras_meta.rl as rl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10, help="episodes per trial (n)")
    add_training_arguments(parser, hidden_units=128, discount=0.99, gae_lambda=0.3,
                           reward_scale=0.1)
    args = parser.parse_args()
    if args.iterations % args.checkpoint_every:
        parser.error("--checkpoint-every must divide --iterations")
    if args.pretrain_pulls is not None or args.curriculum_pulls or args.imitate_ucb1:
        parser.error("--pretrain-pulls, --curriculum-pulls and --imitate-ucb1 are for bandits "
                     "(rl2_bandits.py)")
    n = args.episodes
    tasks = rl.sample_mdp_tasks(args.tasks, split="test")
    env = rl.TabularMDPRL2(n, batch_size=args.tasks)
    start = time.perf_counter()
    baselines = {
        "Random": rl.evaluate(env, rl.RandomAgent(env.action_spec()), tasks),
        "PSRL": rl.evaluate(env, rl.PSRL(), tasks),
        "Posterior-mean planning": rl.evaluate(env, rl.PosteriorMeanMDP(), tasks),
        "Oracle (knows the MDP)": rl.evaluate(env, rl.OracleMDP(), tasks),
        "Oracle exact (n V*_10(0))": rl.Score.from_scores(rl.oracle_mdp_values(tasks, 10, n)),
    }
    baseline_s = time.perf_counter() - start
    tasks_text = (
        f"Held-out tasks: {args.tasks} MDPs of the test split (seed 0), the same MDPs and "
        "environment seed for every agent, played in the numpy `TabularMDPRL2` with "
        "`keras_meta.rl.evaluate`; score = total reward of the trial of "
        f"{n} episodes of 10 steps. Baselines as in `rl_baselines.md`, {baseline_s:.0f} s.")
    key = f"n={n}" + (f", {args.label}" if args.label else "")
    title = f"n={n} episodes" + (f", {args.label}" if args.label else "")
    _, data = run_cell(args, title=title, tasks_text=tasks_text,
                       dynamics_env=rl.TabularMDPRL2(n), env=env, tasks=tasks,
                       baselines=baselines, target="PSRL")
    intro = ("RL^2 (`keras_meta.rl.learners.RL2`) on random tabular MDPs of the RL^2 protocol "
             "(shared/notes/meta-rl.md: S=10, A=5, R ~ N(1, 1) with unit observation noise, "
             "Dirichlet(1) transitions, episodes of 10 steps from state 0), scored on held-out "
             "MDPs against the classical baselines on the same MDPs. Written by "
             "`benchmarks/rl2_mdps.py`, one section per n; the raw numbers are in "
             "`rl2_mdps.json`.")
    write_results(Path(args.out), "rl2_mdps", "RL^2 on random tabular MDPs", intro, key,
                  data, mdp_order)


def mdp_order(key: str) -> tuple:
    """Cells by n, the main cell first; cells not named ``n=..`` (a summary) before all."""
    return (int(key.split(",")[0].split("=")[1]), key) if key.startswith("n=") else (0, key)


if __name__ == "__main__":
    main()
