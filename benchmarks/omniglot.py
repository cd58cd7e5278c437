"""Omniglot few-shot classification: train a config, test at several ways, record the table.

Trains (or resumes) the run of a config from configs/omniglot/, then evaluates it on the test
classes for each requested number of ways (ProtoNets: one model per shot count, tested 5-way
and 20-way), with 1000 episodes and 95% CIs, and appends the rows, with the protocol, wall time,
machine and command, to docs/results/omniglot.md.

    .venv/bin/python benchmarks/omniglot.py configs/omniglot/protonet_5way_1shot.yaml --ways 5 20
"""

from __future__ import annotations

import argparse
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
        last = max(result.metrics)
        table.append(
            f"| {config['name']} | {ways}-way {shots}-shot, {args.episodes} episodes | "
            f"{100 * result.mean('accuracy', last):.2f} ± {100 * result.ci95('accuracy', last):.2f}"
            f" | {100 * result.mean('f1', last):.2f} | {config['tasks'].get('split')} "
            f"({config['tasks'].get('train_subset', 'train')} classes for training) | "
            f"{config['training']['meta_steps'] * config['training']['meta_batch_size']} of "
            f"{config['tasks']['ways']}-way | {p['inner_steps_train']}/{p['inner_steps_test']} | "
            f"{p['bn_policy']} | {wall / 60:.0f} min |")
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


if __name__ == "__main__":
    main()
