"""Omniglot few-shot classification: train a config, test at several ways, record the table.

Trains (or resumes) the run of a config from configs/omniglot/, then evaluates it on the test
classes for each requested number of ways (ProtoNets: one model per shot count, tested 5-way
and 20-way), with 1000 episodes and 95% CIs, and appends the rows, with the protocol, wall time,
machine and command, to docs/results/omniglot.md.

    .venv/bin/python benchmarks/omniglot.py configs/omniglot/protonet_5way_1shot.yaml --ways 5 20
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import time
from pathlib import Path

from _record import environment, markdown_header

from keras_meta import config as config_lib
from keras_meta import evaluate, runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--ways", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--runs", default="runs/benchmarks")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    env = environment()
    config = config_lib.load(args.config, args.overrides)
    run_dir = Path(args.runs) / config["name"]
    started = time.time()
    runs.train(config, run_dir, verbose=0)
    wall = time.time() - started
    learner, _ = runs.load_learner(run_dir)
    shots = config["evaluation"]["tasks"].get("shots", config["tasks"]["shots"])
    rows = []
    for ways in args.ways:
        tasks = config_lib.build_tasks(config, ways=ways, shots=shots, queries=15)
        result = evaluate(learner, tasks, episodes=args.episodes,
                          steps=config["evaluation"]["steps"], seed=int(config["seed"]) + 1000,
                          verbose=0)
        rows.append((ways, result))
        print(result, flush=True)
    p = rows[0][1].protocol
    table = ["| config | test | accuracy (95% CI) | macro F1 | split | train episodes | "
             "inner steps train/test | batch norm | train wall time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ways, result in rows:
        last = result.reported_steps  # the protocol's test step count (eval_inner_steps)
        table.append(
            f"| {config['name']} | {ways}-way {shots}-shot, {args.episodes} episodes | "
            f"{100 * result.mean('accuracy', last):.2f} ± {100 * result.ci95('accuracy', last):.2f}"
            f" | {100 * result.mean('f1', last):.2f} | {config['tasks'].get('split')} "
            f"({config['tasks'].get('train_subset', 'train')} classes for training) | "
            f"{config['training']['meta_steps'] * config['training']['meta_batch_size']} of "
            f"{config['tasks']['ways']}-way | {p['inner_steps_train']}/{p['inner_steps_test']} | "
            f"{p['bn_policy']} | {wall / 60:.0f} min |")
    table += adaptation_table(rows, p) + progress_table(run_dir, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "omniglot.md"
    header = "" if md.exists() else markdown_header("Omniglot few-shot classification", env)
    with open(md, "a") as f:
        f.write(header + f"\n## {config['name']} ({env['date']}, {env['machine']})\n\n"
                f"Command: `{env['command']}`\n\n" + "\n".join(table) + "\n")
    with open(out / "omniglot.jsonl", "a") as f:
        for ways, result in rows:
            f.write(json.dumps({"config": config["name"], "ways": ways, "train_wall_s": wall,
                                "env": env, **result.to_dict()}) + "\n")
    print("\n".join(table))


def adaptation_table(rows, protocol) -> list[str]:
    """Accuracy against the number of adaptation steps (gradient-based learners)."""
    steps = sorted(rows[0][1].metrics)
    if len(steps) < 2:
        return []
    lines = ["", f"Test accuracy (95% CI) against adaptation steps (trained with "
             f"{protocol['inner_steps_train']}):", "",
             "| test | " + " | ".join(f"{s} steps" for s in steps) + " |",
             "|---|" + "---|" * len(steps)]
    for ways, result in rows:
        lines.append(f"| {ways}-way | " + " | ".join(
            f"{100 * result.mean('accuracy', s):.2f} ± {100 * result.ci95('accuracy', s):.2f}"
            for s in steps) + " |")
    return lines


def progress_table(run_dir: Path, config: dict) -> list[str]:
    """What the run reached at which meta-step and wall time (history.csv, train.log)."""
    history = run_dir / "history.csv"
    log = run_dir / "train.log"
    if not history.exists() or not log.exists():
        return []
    with open(history) as f:
        epochs = list(csv.DictReader(f))
    stamps = [datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
              for line in log.read_text().splitlines() if " INFO epoch " in line]
    starts = [datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
              for line in log.read_text().splitlines() if " INFO Training " in line]
    if not starts or len(stamps) < len(epochs):
        return []
    per_epoch = config["training"]["steps_per_epoch"]
    lines = ["", "Progress (train: the meta-training batches of the epoch; val: "
             f"{config['training'].get('validation_episodes', 0)} episodes of the validation "
             "classes after the epoch; wall time from the first start, resumptions included):",
             "", "| meta-steps | wall min | train accuracy | val accuracy |", "|---|---|---|---|"]
    for i, row in enumerate(epochs):
        val = row.get("val_accuracy", "NA")
        lines.append(f"| {(i + 1) * per_epoch} | {(stamps[i] - starts[0]).total_seconds() / 60:.0f}"
                     f" | {100 * float(row['accuracy']):.1f} | "
                     f"{'' if val in ('NA', '', None) else f'{100 * float(val):.1f}'} |")
    return lines


if __name__ == "__main__":
    main()
