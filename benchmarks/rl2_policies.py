"""Saved RL^2 bandit policies on many held-out tasks, paired with UCB1 and with each other.

On n=100 bandits a score over `rl2_bandits.py`'s 1000 held-out tasks has a standard error of
about 0.4, and its paired difference from UCB1 about 0.3: too coarse to rank policies that
differ by less than a point, or to tell a gap of one point from none. This script plays
policies saved by ``rl2_bandits.py --save-policies`` and the baselines on ``--tasks``
held-out tasks (test split, seed 0, one environment seed for all, so equal actions draw
equal rewards) and reports each score, its paired difference from UCB1 (the c of the
baseline table), the paired difference of every pair of policies, and where the policies
part from UCB1 (by the task's best arm, and pull by pull: how often each agent pulls the
best arm; with a picture). Writes the cell
``--label`` of docs/results/rl2_policies.json and re-renders rl2_policies.md from all cells.

    .venv/bin/python benchmarks/rl2_policies.py --arms 10 --pulls 100 --tasks 20000 \\
        "GRU 128, seed 0=runs/policies/k10-n100-...-seed0.keras" runs/policies/other.keras
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _record import environment, markdown_header
from rl2_bandits import bandit_order, read_policy, write_results

import keras_meta.rl as rl
from keras_meta.rl.baselines.bandits import BEST_UCB1_C
from keras_meta.rl.learners import RL2Agent, RL2Policy

BLOCK = 5000  # tasks played at once (the environment's batch); `play` still keeps every
# step of all the tasks: about 50 MB at 20,000 tasks x 100 pulls


def parse_policy(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its file name without the extension)."""
    name, _, path = text.rpartition("=")
    path = Path(path)
    return (name or path.stem), path


def load_policy(path: Path, arms: int) -> RL2Policy:
    policy = read_policy(path, "policy")
    if policy.prev_action_size != arms:
        raise SystemExit(f"error: {path} is a policy for {policy.prev_action_size} arms, "
                         f"not --arms {arms}")
    return policy


def text(score: rl.Score, signed: bool = False) -> str:
    return f"{score.mean:{'+' if signed else ''}.2f} ± {score.stderr:.2f}"


def where_it_differs(trials: dict[str, rl.Trials], probs, policies: list[str],
                     reference: str, out: Path, key: str) -> tuple[list, list, Path]:
    """Tables of where in the task space and in the trial each policy gains or loses
    against `reference`, and a picture of the second."""
    best, best_arm = probs.max(1), probs.argmax(1)
    ref = trials[reference].expected_rewards
    pulls = ref.shape[1]
    edges = np.quantile(best, np.linspace(0, 1, 6))
    bins = np.clip(np.searchsorted(edges, best, side="right") - 1, 0, 4)
    by_best = ["| best arm's probability | tasks | " + " | ".join(policies)
               + f" | {reference}'s regret |", "|---" * (len(policies) + 3) + "|"]
    for b in range(5):
        rows = bins == b
        cells = [text(rl.Score.from_scores(trials[name].expected_rewards[rows].sum(1)
                                           - ref[rows].sum(1)), True) for name in policies]
        regret = (pulls * best[rows] - ref[rows].sum(1)).mean()
        by_best.append(f"| {edges[b]:.2f}-{edges[b + 1]:.2f} | {rows.sum()} | "
                       + " | ".join(cells) + f" | {regret:.1f} |")
    on_best = {name: (t.actions == best_arm[:, None]).mean(0) for name, t in trials.items()}
    gained = {name: np.cumsum((trials[name].expected_rewards - ref).mean(0))
              for name in policies}
    marks = sorted({max(1, round(pulls * f)) for f in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)})
    over_trial = ["| pull t | " + " | ".join(f"best arm, {name}" for name in trials)
                  + " | " + " | ".join(f"gain to t, {name}" for name in policies) + " |",
                  "|---" * (1 + len(trials) + len(policies)) + "|"]
    for t in marks:
        over_trial.append(f"| {t} | " + " | ".join(f"{on_best[name][t - 1]:.2f}"
                                                     for name in trials)
                          + " | " + " | ".join(f"{gained[name][t - 1]:+.2f}"
                                               for name in policies) + " |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    steps = np.arange(1, pulls + 1)
    colour = {name: f"C{i}" for i, name in enumerate(on_best)}  # one colour a name, both panels
    for name, share in on_best.items():
        left.plot(steps, share, label=name, color=colour[name],
                  lw=2 if name == reference else 1.2,
                  ls="-" if name in policies or name == reference else ":")
    left.set(xlabel="pull", ylabel="trials pulling the best arm", title=key)
    for name in policies:
        right.plot(steps, gained[name], label=name, color=colour[name])
    right.axhline(0, color="black", lw=0.8)
    right.set(xlabel="pull t", ylabel=f"expected reward minus {reference}, pulls 1..t",
              title="paired, mean over tasks")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    slug = "".join(ch if ch.isalnum() else "-" for ch in key).strip("-")
    picture = out / f"rl2_policies_{slug}.png"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(picture, dpi=100)
    plt.close(fig)
    return by_best, over_trial, picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policies", nargs="+", metavar="[NAME=]PATH",
                        help="saved RL2Policy files (.keras), optionally named")
    parser.add_argument("--arms", type=int, required=True)
    parser.add_argument("--pulls", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=20000, help="held-out test tasks")
    parser.add_argument("--label", help="the cell's name (default: k=<k>, n=<n>, <tasks> tasks)")
    parser.add_argument("--notes", default="", help="text written under the cell's header, "
                        "e.g. which rl2_bandits.py cells trained the policies")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    if args.tasks < 2:
        parser.error(f"--tasks must be >= 2 (a standard error needs two), got {args.tasks}")
    named = [parse_policy(p) for p in args.policies]
    if len({name for name, _ in named}) != len(named):
        parser.error("two policies have the same name; name them with NAME=PATH")
    policies = {name: load_policy(path, args.arms) for name, path in named}

    record = environment(("numpy", "tensorflow", "keras", "tf-agents"))
    k, n = args.arms, args.pulls
    tasks = rl.sample_bandit_tasks(args.tasks, k, split="test")
    env = rl.BernoulliBanditRL2(k, n, batch_size=min(args.tasks, BLOCK))
    c = BEST_UCB1_C.get(n, 0.2)
    reference = f"UCB1 (c={c})"
    start = time.perf_counter()
    agents = {reference: rl.UCB1Bandit(c), "Thompson": rl.ThompsonBandit(),
              "Greedy": rl.GreedyBandit()}
    agents.update((name, RL2Agent(policy)) for name, policy in policies.items())
    trials, scores = {}, {}
    for name, agent in agents.items():
        trials[name] = rl.play(env, agent, tasks)
        scores[name] = rl.Score.from_scores(trials[name].rewards.sum(1),
                                            trials[name].expected_rewards.sum(1))
        print(f"{name}: {text(scores[name])}", flush=True)
    seconds = time.perf_counter() - start

    rows = [f"| agent | score | expected score | minus {reference}, paired | expected, paired |",
            "|---|---|---|---|---|"]
    for name, score in scores.items():
        diff = score.minus(scores[reference])
        bold = "**" if name in policies else ""
        rows.append(f"| {bold}{name}{bold} | {text(score)} | {text(score.expected)} | "
                    f"{bold}{text(diff, True)}{bold} | {text(diff.expected, True)} |")
    names = list(policies)
    pairs = [(a, b) for i, b in enumerate(names) for a in names[i + 1:]]
    pair_rows = ["| policy | minus | paired difference | expected, paired |", "|---|---|---|---|"]
    for a, b in pairs:
        diff = scores[a].minus(scores[b])
        pair_rows.append(f"| {a} | {b} | {text(diff, True)} | {text(diff.expected, True)} |")
    key = args.label or f"k={k}, n={n}, {args.tasks} tasks"
    by_best, over_trial, picture = where_it_differs(trials, tasks.probs, list(policies), reference,
                                                    Path(args.out), key)
    files = "\n".join(f"- {name}: `{path.name}`" for name, path in named)
    markdown = (
        markdown_header(key, record).replace("# ", "## ", 1)
        + f"Held-out tasks: {args.tasks} tasks of the test split (seed 0), played in chunks of "
        f"{min(args.tasks, BLOCK)} in the numpy `BernoulliBanditRL2` with "
        "`keras_meta.rl.play` (the trials `evaluate` scores; environment seed 0 for every "
        "agent); score = total reward "
        "of the n-pull trial, mean ± s.e. over tasks; RL^2 policies with sampled actions; "
        "expected score: the same trials scored by the chosen arms' success probabilities. "
        f"{seconds:.0f} s for all agents.{(' ' + args.notes) if args.notes else ''}\n\n"
        f"Policies:\n\n{files}\n\n### Scores\n\n" + "\n".join(rows) + "\n"
        + ("\n### Policies against each other (paired, task by task)\n\n"
           + "\n".join(pair_rows) + "\n" if pairs else "")
        + "\n### Where the policies part from UCB1\n\n"
        "By the task's best arm (its success probability, in fifths of the held-out tasks): "
        f"each policy's expected score minus {reference}'s, paired, and {reference}'s regret "
        "(n x the best arm's probability minus its expected score).\n\n"
        + "\n".join(by_best) + "\n\nOver the trial: the fraction of trials pulling the best "
        "arm at pull t, and each policy's expected reward minus UCB1's, summed over pulls "
        f"1..t (paired). Picture: `{picture.name}`.\n\n" + "\n".join(over_trial) + "\n")
    data = {"record": record, "tasks": args.tasks, "arms": k, "pulls": n,
            "policies": {name: str(path) for name, path in named},
            "scores": {name: [s.mean, s.stderr] for name, s in scores.items()},
            "minus_reference": {name: [d.mean, d.stderr] for name, d in
                                ((name, s.minus(scores[reference])) for name, s in
                                 scores.items())},
            "best_arm_share": {name: (t.actions == tasks.probs.argmax(1)[:, None]).mean(0)
                               .round(4).tolist() for name, t in trials.items()},
            "pairs": [[a, b, scores[a].minus(scores[b]).mean,
                       scores[a].minus(scores[b]).stderr] for a, b in pairs],
            "markdown": markdown}
    intro = ("Saved RL^2 bandit policies scored on many held-out tasks, paired with UCB1 and "
             "with each other. Written by `benchmarks/rl2_policies.py`; the policies come from "
             "the `rl2_bandits.py` cells of `rl2.md` (trained with `--save-policies`).")
    write_results(Path(args.out), "rl2_policies", "RL^2 bandit policies on many held-out tasks",
                  intro, key, data, bandit_order)
    print("\n".join(rows + ([""] + pair_rows if pairs else [])))


if __name__ == "__main__":
    main()
