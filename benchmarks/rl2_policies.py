"""Saved RL^2 bandit policies on many held-out tasks, paired with UCB1 and with each other.

On n=100 bandits a score over `rl2_bandits.py`'s 1000 held-out tasks has a standard error of
about 0.4, and its paired difference from UCB1 about 0.3: too coarse to rank policies that
differ by less than a point, or to tell a gap of one point from none. This script plays
policies saved by ``rl2_bandits.py --save-policies`` and the baselines on ``--tasks``
held-out tasks (test split, seed 0, one environment seed for all, so equal actions draw
equal rewards) and reports each score, its paired difference from UCB1 (the c of the
baseline table) and the paired difference of every pair of policies. Writes the cell
``--label`` of docs/results/rl2_policies.json and re-renders rl2_policies.md from all cells.

    .venv/bin/python benchmarks/rl2_policies.py --arms 10 --pulls 100 --tasks 20000 \\
        "GRU 128, seed 0=runs/policies/k10-n100-...-seed0.keras" runs/policies/other.keras
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
from _record import environment, markdown_header

import keras_meta.rl as rl
from keras_meta.rl.baselines.bandits import BEST_UCB1_C
from keras_meta.rl.learners import RL2Agent, RL2Policy

BLOCK = 5000  # tasks played at once: memory stays bounded for any --tasks


def parse_policy(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its file name without the extension)."""
    name, _, path = text.rpartition("=")
    path = Path(path)
    return (name or path.stem), path


def load_policy(path: Path, arms: int) -> RL2Policy:
    if not path.is_file():
        raise SystemExit(f"error: policy file not found: {path}")
    policy = keras.models.load_model(path)
    if not isinstance(policy, RL2Policy):
        raise SystemExit(f"error: {path} holds a {type(policy).__name__}, not an RL2Policy "
                         "(save one with rl2_bandits.py --save-policies)")
    if policy.prev_action_size != arms:
        raise SystemExit(f"error: {path} is a policy for {policy.prev_action_size} arms, "
                         f"not --arms {arms}")
    return policy


def text(score: rl.Score, signed: bool = False) -> str:
    return f"{score.mean:{'+' if signed else ''}.2f} ± {score.stderr:.2f}"


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
    scores = {reference: rl.evaluate(env, rl.UCB1Bandit(c), tasks),
              "Thompson": rl.evaluate(env, rl.ThompsonBandit(), tasks),
              "Greedy": rl.evaluate(env, rl.GreedyBandit(), tasks)}
    for name, policy in policies.items():
        scores[name] = rl.evaluate(env, RL2Agent(policy), tasks)
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
    files = "\n".join(f"- {name}: `{path.name}`" for name, path in named)
    markdown = (
        markdown_header(key, record).replace("# ", "## ", 1)
        + f"Held-out tasks: {args.tasks} tasks of the test split (seed 0), played in chunks of "
        f"{min(args.tasks, BLOCK)} in the numpy `BernoulliBanditRL2` with "
        "`keras_meta.rl.evaluate` (environment seed 0 for every agent); score = total reward "
        "of the n-pull trial, mean ± s.e. over tasks; RL^2 policies with sampled actions; "
        "expected score: the same trials scored by the chosen arms' success probabilities. "
        f"{seconds:.0f} s for all agents.{(' ' + args.notes) if args.notes else ''}\n\n"
        f"Policies:\n\n{files}\n\n### Scores\n\n" + "\n".join(rows) + "\n"
        + ("\n### Policies against each other (paired, task by task)\n\n"
           + "\n".join(pair_rows) + "\n" if pairs else ""))
    data = {"record": record, "tasks": args.tasks, "arms": k, "pulls": n,
            "policies": {name: str(path) for name, path in named},
            "scores": {name: [s.mean, s.stderr] for name, s in scores.items()},
            "minus_reference": {name: [d.mean, d.stderr] for name, d in
                                ((name, s.minus(scores[reference])) for name, s in
                                 scores.items())},
            "pairs": [[a, b, scores[a].minus(scores[b]).mean,
                       scores[a].minus(scores[b]).stderr] for a, b in pairs],
            "markdown": markdown}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "rl2_policies.json"
    cells = json.loads(path.read_text())["cells"] if path.exists() else {}
    cells[key] = data
    path.write_text(json.dumps({"cells": cells}, indent=1) + "\n")
    intro = ("Saved RL^2 bandit policies scored on many held-out tasks, paired with UCB1 and "
             "with each other. Written by `benchmarks/rl2_policies.py`; the policies come from "
             "the `rl2_bandits.py` cells of `rl2.md` (trained with `--save-policies`).")
    (out / "rl2_policies.md").write_text("# RL^2 bandit policies on many held-out tasks\n\n"
                                         f"{intro}\n\n"
                                         + "\n".join(c["markdown"] for c in cells.values()))
    print("\n".join(rows + [""] + pair_rows))
    print(f"wrote {path} and {out / 'rl2_policies.md'} (cell {key!r})")


if __name__ == "__main__":
    main()
