"""Classical baselines of the meta-RL task families on held-out tasks.

Evaluates every baseline of `keras_meta.rl.baselines` on the test split (seed 0) of each
family: Bernoulli bandits (k in {5, 10, 50} x n in {10, 100, 500}), random tabular MDPs
(n in {10, 25, 50, 100} episodes), 2D navigation (40 goals, and 10,000 for precise
values); sweeps UCB1's exploration constant; prints the tables (mean ± s.e. of the
trial score, the reference of shared/notes/meta-rl.md in parentheses) and writes
docs/results/rl_baselines.md and rl_baselines.json.

    .venv/bin/python benchmarks/rl_baselines.py [--bandit-tasks 5000] [--mdp-tasks 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _record import environment, markdown_header

import keras_meta.rl as rl
from keras_meta.rl.baselines.bandits import BEST_UCB1_C

BANDIT_REFERENCE = {  # (n, k): random, greedy, ucb1 (best c), thompson, bayes-optimal
    (10, 5): (4.98, 6.57, 6.66, 5.84, 6.66),
    (10, 10): (4.99, 6.58, 6.73, 5.56, 6.71),
    (10, 50): (5.01, 6.61, 6.71, 5.15, 6.71),
    (100, 5): (50.1, 74.8, 78.4, 74.9, None),
    (100, 10): (50.1, 77.7, 83.4, 77.1, None),
    (100, 50): (49.9, 78.2, 84.8, 64.5, None),
    (500, 5): (250.7, 382.2, 407.0, 402.4, None),
    (500, 10): (250.4, 399.6, 439.6, 431.1, None),
    (500, 50): (250.1, 403.5, 457.1, 426.5, None),
}
MDP_REFERENCE = {  # n: random, psrl, posterior mean, oracle
    10: (100.4, 134.3, 150.1, 218.0),
    25: (250.5, 404.3, 425.6, 545.2),
    50: (499.9, 902.4, 899.0, 1090.6),
    100: (1001.1, 1942.7, 1856.4, 2182.1),
}
NAVIGATION_REFERENCE = {"Stand still": -38.3, "Goal oracle": -2.29}
UCB1_SWEEP = (0.02, 0.05, 0.1, 0.2, 0.3)


def _cell(score: rl.Score, reference: float | None = None) -> str:
    digits = 2 if abs(score.mean) < 20 else 1
    text = f"{score.mean:.{digits}f} ± {score.stderr:.{digits}f}"
    return text if reference is None else f"{text} ({reference})"


def bandits(num_tasks: int, log: list[str]) -> tuple[list[str], list[str], dict]:
    """Bandit table and UCB1 sweep (20,000 tasks at n=10, `num_tasks` otherwise)."""
    table = ["| n | k | tasks | Random | Greedy | Greedy, random ties | ε-greedy 0.1 | UCB1 (c) "
             "| Thompson | Bayes-optimal policy | Bayes-optimal exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    sweep = ["| n | k | " + " | ".join(f"c={c}" for c in UCB1_SWEEP) + " | best c |",
             "|---|---|" + "---|" * (len(UCB1_SWEEP) + 1)]
    results = {}
    for n in (10, 100, 500):
        for k in (5, 10, 50):
            start = time.perf_counter()
            count = 20000 if n == 10 else num_tasks
            tasks = rl.sample_bandit_tasks(count, k, split="test")
            env = rl.BernoulliBanditRL2(k, n, batch_size=count)
            ref = BANDIT_REFERENCE[(n, k)]
            scores = {
                "random": rl.evaluate(env, rl.RandomAgent(env.action_spec()), tasks),
                "greedy": rl.evaluate(env, rl.GreedyBandit(), tasks),
                "greedy_random_ties": rl.evaluate(env, rl.GreedyBandit(tie_break="random"), tasks),
                "epsilon_greedy": rl.evaluate(env, rl.EpsilonGreedyBandit(0.1), tasks),
                "ucb1": rl.evaluate(env, rl.UCB1Bandit(BEST_UCB1_C[n]), tasks),
                "thompson": rl.evaluate(env, rl.ThompsonBandit(), tasks),
            }
            bayes, exact = "–", "–"
            if n == 10:
                scores["bayes_optimal"] = rl.evaluate(env, rl.BayesOptimalBandit(k, n), tasks)
                bayes = _cell(scores["bayes_optimal"], ref[4])
                exact = f"{rl.bayes_optimal_bandit_value(k, n):.3f}"
            table.append(
                f"| {n} | {k} | {count} | {_cell(scores['random'], ref[0])} "
                f"| {_cell(scores['greedy'], ref[1])} | {_cell(scores['greedy_random_ties'])} "
                f"| {_cell(scores['epsilon_greedy'])} "
                f"| {_cell(scores['ucb1'], ref[2])} c={BEST_UCB1_C[n]} "
                f"| {_cell(scores['thompson'], ref[3])} | {bayes} | {exact} |")
            swept = {c: rl.evaluate(env, rl.UCB1Bandit(c), tasks) for c in UCB1_SWEEP}
            best = max(swept, key=lambda c: swept[c].mean)
            sweep.append(f"| {n} | {k} | " + " | ".join(_cell(s) for s in swept.values())
                         + f" | {best} |")
            results[f"n{n}_k{k}"] = {name: [s.mean, s.stderr] for name, s in scores.items()} | {
                "ucb1_sweep": {str(c): [s.mean, s.stderr] for c, s in swept.items()}}
            log.append(f"bandits n={n} k={k}: {time.perf_counter() - start:.1f} s")
            print(table[-1], flush=True)
    return table, sweep, results


def mdps(num_tasks: int, log: list[str]) -> tuple[list[str], dict]:
    """Tabular MDP table over `num_tasks` held-out MDPs."""
    table = ["| n | Random | PSRL | Posterior-mean planning | Oracle (knows the MDP) "
             "| Oracle exact |", "|---|---|---|---|---|---|"]
    tasks = rl.sample_mdp_tasks(num_tasks, split="test")
    results = {}
    for n, ref in MDP_REFERENCE.items():
        start = time.perf_counter()
        env = rl.TabularMDPRL2(n, batch_size=num_tasks)
        agents = {"random": rl.RandomAgent(env.action_spec()), "psrl": rl.PSRL(),
                  "posterior_mean": rl.PosteriorMeanMDP(), "oracle": rl.OracleMDP()}
        scores = {name: rl.evaluate(env, agent, tasks) for name, agent in agents.items()}
        exact = rl.Score.from_scores(rl.oracle_mdp_values(tasks, 10, n))
        table.append(f"| {n} | " + " | ".join(_cell(s, r) for s, r in zip(scores.values(), ref))
                     + f" | {_cell(exact)} |")
        results[f"n{n}"] = {name: [s.mean, s.stderr] for name, s in scores.items()} | {
            "oracle_exact": [exact.mean, exact.stderr]}
        log.append(f"MDPs n={n}: {time.perf_counter() - start:.1f} s")
        print(table[-1], flush=True)
    return table, results


def navigation(log: list[str]) -> tuple[list[str], dict]:
    """Navigation table on the 40 meta-test goals and on 10,000 goals."""
    table = ["| goals | Stand still | Goal oracle | Random velocity |", "|---|---|---|---|"]
    results = {}
    start = time.perf_counter()
    for count in (40, 10000):
        tasks = rl.sample_navigation_tasks(count, split="test")
        env = rl.Navigation2DMAML(batch_size=count)
        scores = {"Stand still": rl.evaluate(env, rl.StandStill(), tasks),
                  "Goal oracle": rl.evaluate(env, rl.GoalOracle(), tasks),
                  "Random velocity": rl.evaluate(env, rl.RandomAgent(env.action_spec()), tasks)}
        table.append(f"| {count} | " + " | ".join(
            _cell(s, NAVIGATION_REFERENCE.get(name)) for name, s in scores.items()) + " |")
        results[str(count)] = {name: [s.mean, s.stderr] for name, s in scores.items()}
        print(table[-1], flush=True)
    log.append(f"navigation: {time.perf_counter() - start:.1f} s")
    return table, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bandit-tasks", type=int, default=5000,
                        help="held-out bandit tasks per cell at n=100 and 500 (20,000 at n=10)")
    parser.add_argument("--mdp-tasks", type=int, default=2000)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    env = environment(("numpy", "tensorflow", "tf-agents"))
    log: list[str] = []
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    bandit_table, sweep_table, bandit_results = bandits(args.bandit_tasks, log)
    mdp_table, mdp_results = mdps(args.mdp_tasks, log)
    nav_table, nav_results = navigation(log)
    total = time.perf_counter() - start
    text = markdown_header("Meta-RL classical baselines on held-out tasks", env) + (
        "Trial score (undiscounted total reward of a trial) as mean ± standard error over the "
        "held-out tasks (test split, seed 0); in parentheses the reference of "
        "shared/notes/meta-rl.md (itself a simulation with its own error of similar size). "
        f"Wall time {total:.0f} s ({'; '.join(log)}); load average (1 min) {load_start:.1f} at "
        f"the start, {os.getloadavg()[0]:.1f} at the end.\n\n"
        "## Bernoulli bandits (RL^2 protocol)\n\n"
        "Greedy, ε-greedy and UCB1 estimate arms by the Beta(1, 1) posterior mean and break ties "
        "by the lowest arm index, as the reference does; 'random ties' breaks them at random. "
        "UCB1 index: mean + c sqrt(log(t + 1) / (pulls + 1)). Bayes-optimal: exact dynamic "
        "programme over Beta(1, 1) beliefs (n=10) and a simulation of its policy.\n\n"
        + "\n".join(bandit_table) + "\n\nUCB1 exploration constant (same tasks):\n\n"
        + "\n".join(sweep_table) + "\n\n## Random tabular MDPs (RL^2 protocol)\n\n"
        f"{args.mdp_tasks} held-out MDPs (S=10, A=5, horizon 10). PSRL: Normal(1, 1) prior on "
        "R(s, a) with unit noise, Dirichlet(1) on transitions, one posterior MDP per episode, "
        "finite-horizon value iteration. Posterior-mean planning: the same posteriors, planning "
        "on their means. Oracle exact: n V*_10(0) of the true MDP, no sampling.\n\n"
        + "\n".join(mdp_table) + "\n\n## 2D navigation (MAML protocol)\n\n"
        "Return of one 100-step episode. The reference oracle (-2.29) is the MAML authors' "
        "*trained* goal-conditioned Gaussian policy; `GoalOracle` moves straight to the goal at "
        "maximal speed (the optimum). Random velocity: uniform in [-0.1, 0.1]^2.\n\n"
        + "\n".join(nav_table) + "\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rl_baselines.md").write_text(text)
    (out / "rl_baselines.json").write_text(json.dumps(
        {"bandits": bandit_results, "mdps": mdp_results, "navigation": nav_results,
         "wall_s": total, "env": env}, indent=2))
    print("\n".join(sweep_table))
    print(f"wrote {out / 'rl_baselines.md'} in {total:.0f} s")


if __name__ == "__main__":
    main()
