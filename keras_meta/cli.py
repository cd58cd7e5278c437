"""The ``keras-meta`` command line."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

EPILOG = """examples:
  keras-meta demo
  keras-meta train configs/sinusoid_maml.yaml --set training.meta_steps=20000
  keras-meta evaluate runs/sinusoid-maml --steps 0 1 5 10
  keras-meta train configs/rl/rl2_bandits_k5_n10.yaml
  keras-meta export runs/sinusoid-maml --format savedmodel,onnx,tflite
  keras-meta serve exports/
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="keras-meta",
        description="Meta-learning for Keras: train learners that adapt to new tasks from a "
        "few examples, evaluate them with the papers' protocols, and run a demonstration.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="meta-train a learner from a YAML config",
                       description="Meta-train a learner as a YAML config says (few-shot "
                       "learning: configs/*.yaml and configs/omniglot/; meta-RL with RL^2 and "
                       "MAML-RL: configs/rl/). Everything of "
                       "the run (config, checkpoints, logs, history, results, plots) goes into "
                       "one run directory; running the same command again on an interrupted "
                       "run resumes it exactly.")
    p.add_argument("config", help="YAML config file (see configs/)")
    p.add_argument("--run-dir", help="run directory (default: runs/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set learner.inner_steps=5 "
                   "(repeatable; values are parsed as YAML)")
    p.add_argument("--no-evaluate", action="store_true",
                   help="skip the test-split evaluation after training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("evaluate", help="evaluate a trained run on held-out tasks",
                       description="Adapt the trained learner of a run directory to held-out "
                       "test tasks and report mean and 95%% confidence interval per number of "
                       "adaptation steps; writes results.json and adaptation_curve.png. "
                       "A meta-RL run reports its return on held-out tasks beside the config's "
                       "baselines on the same tasks: RL^2 plays one trial per task, MAML-RL "
                       "samples trajectories after each adaptation step.")
    p.add_argument("run_dir", help="a run directory written by `keras-meta train`")
    p.add_argument("--episodes", type=int, help="test episodes (default: the config's, >= 600); "
                   "for a meta-RL run, held-out tasks")
    p.add_argument("--steps", type=int, nargs="+",
                   help="adaptation steps to report (MAML-RL: every step up to the largest; "
                   "not for RL^2, which adapts within trials)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    from export import cli as export_cli

    p = sub.add_parser("export", help="export a trained run for TF Serving, ONNX and LiteRT",
                       description=export_cli.DESCRIPTION, epilog=export_cli.EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    export_cli.add_arguments(p)

    from serving import cli as serving_cli

    p = sub.add_parser("serve", help="serve exports with TF Serving's REST and gRPC APIs",
                       description=serving_cli.DESCRIPTION, epilog=serving_cli.EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    serving_cli.add_arguments(p)

    p = sub.add_parser("demo", help="a short demonstration of the product",
                       description="Meta-train MAML on sinusoid regression tasks, adapt to "
                       "600 unseen tasks from 5 examples each and compare the error before and "
                       "after adaptation with a model pretrained on all tasks; then train a "
                       "Prototypical Network on Omniglot and classify characters of alphabets "
                       "it never saw from one example each (a few minutes on 2 cores).")
    p.add_argument("--run-dir", default="runs/demo", help="where to write the demo runs")
    p.add_argument("--meta-steps", type=int, default=10000,
                   help="sinusoid meta-training steps")
    p.add_argument("--omniglot-steps", type=int, default=400,
                   help="Omniglot meta-batches of 4 episodes (0 skips the Omniglot part)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    args = parser.parse_args(argv)
    if args.command == "serve":
        # Before anything imports TensorFlow: the ONNX backend runs without it.
        return serving_cli.run(args)
    import tensorflow as tf

    # TensorFlow's Python logger warns about retracing when Keras builds its evaluation
    # function per validation run; the warning is about TF internals, not the user's run.
    tf.get_logger().setLevel("ERROR")
    try:
        commands = {"train": _train, "evaluate": _evaluate, "demo": _demo,
                    "export": export_cli.run}
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"keras-meta {args.command}: error: {e}", file=sys.stderr)
        return 2


def _train(args) -> int:
    from keras_meta import config as config_lib
    from keras_meta import runs

    config = config_lib.load(args.config, args.overrides)
    run_dir = Path(args.run_dir or Path("runs") / config["name"])
    runs.train(config, run_dir, verbose=0 if args.quiet else 1)
    print(f"Run directory: {run_dir}")
    if not args.no_evaluate:
        print(runs.evaluate_run(run_dir, verbose=0 if args.quiet else 1))
    return 0


def _evaluate(args) -> int:
    from keras_meta import runs

    print(runs.evaluate_run(args.run_dir, episodes=args.episodes, steps=args.steps,
                            verbose=0 if args.quiet else 1))
    return 0


DEMO_OMNIGLOT = {
    "name": "demo-omniglot-protonet",
    "seed": 0,
    "tasks": {"name": "omniglot", "split": "vinyals", "ways": 5, "shots": 1, "queries": 5},
    "model": {"name": "conv4", "input_shape": [28, 28, 1], "ways": 0},
    "learner": {"name": "protonet", "bn_policy": "running"},
    "loss": "sparse_categorical_crossentropy_from_logits",
    "metrics": ["accuracy"],
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
    "training": {"meta_batch_size": 4, "meta_steps": 400, "steps_per_epoch": 100,
                 "steps_per_execution": 10, "validation_episodes": 40},
    "evaluation": {"episodes": 600, "steps": [0], "meta_batch_size": 50,
                   "tasks": {"queries": 15}},
}

DEMO_CONFIG = {
    "name": "demo-sinusoid-maml",
    "seed": 0,
    "tasks": {"name": "sinusoid", "shots": 10},
    "model": {"name": "mlp", "hidden": [40, 40], "outputs": 1},
    "learner": {"name": "maml", "update_rule": 0.001, "inner_steps": 1,
                "eval_inner_steps": 10},
    "loss": "mse",
    "optimizer": {"name": "adam", "learning_rate": 1e-3, "epsilon": 1e-7},
    "training": {"meta_batch_size": 25, "meta_steps": 10000, "steps_per_epoch": 1000,
                 "steps_per_execution": 100, "jit_compile": True, "validation_episodes": 100},
    "evaluation": {"episodes": 600, "steps": [0, 1, 5, 10], "meta_batch_size": 100,
                   "tasks": {"shots": 5}},
}


def _demo(args) -> int:
    from keras_meta import config as config_lib
    from keras_meta import plots, runs, tasks

    verbose = 0 if args.quiet else 1
    results = {}
    for label, learner in (("MAML", {}), ("pretrained on all tasks", {"inner_steps": 0})):
        config = config_lib.merge(config_lib.merge(config_lib.DEFAULTS, DEMO_CONFIG),
                                  {"learner": learner})
        config["training"]["meta_steps"] = args.meta_steps
        config["training"]["steps_per_epoch"] = math.gcd(args.meta_steps, 1000)
        config["name"] = "demo-sinusoid-" + ("maml" if not learner else "pretrained")
        run_dir = Path(args.run_dir) / config["name"]
        results[label] = _train_and_evaluate(
            config, run_dir, verbose,
            f"{label}: meta-training {args.meta_steps} steps on sinusoid tasks",
            "evaluating on 600 unseen tasks")
        learner, _ = runs.load_learner(run_dir)
        examples = tasks.Sinusoid(shots=5, queries=200).episodes("test", 3, seed=7)
        plots.regression_fits(learner, examples, run_dir / "fits.png")
    steps = sorted(next(iter(results.values())).metrics)
    print("\nSinusoid regression, 5-shot, 600 held-out tasks: query MSE (95% CI) after N "
          "gradient steps on the 5 support points")
    print(f"{'model':<26}" + "".join(f"{f'{s} steps':>18}" for s in steps))
    for label, result in results.items():
        print(f"{label:<26}" + "".join(
            f"{result.mean('mse', s):>10.3f} ± {result.ci95('mse', s):.3f}" for s in steps))
    print("(MAML paper, 5-shot: 0.67 / 0.38 / 0.35 after 1 / 5 / 10 steps after 70,000 "
          "meta-steps; pretrained 2.41 / 2.23 / 2.19)")
    print(f"Plots and logs: {args.run_dir}/*/ (fits.png, adaptation_curve.png, "
          "learning_curve.png)")
    _demo_export(Path(args.run_dir) / "demo-sinusoid-maml", Path(args.run_dir) / "exports")
    if args.omniglot_steps:
        _demo_omniglot(args, verbose)
    print(f"\nServe the exports: keras-meta serve {Path(args.run_dir) / 'exports'}")
    return 0


def _demo_export(run_dir: Path, base: Path) -> None:
    """Export a demo run for TF Serving, ONNX and LiteRT, checked against the model."""
    from export import export_run

    print(f"\n== Exporting {run_dir.name} (SavedModel for TF Serving, ONNX, LiteRT) -> {base}")
    print(export_run(run_dir, base, formats="savedmodel,onnx,litert", version=1,
                     overwrite=True))


def _train_and_evaluate(config, run_dir, verbose, what, evaluating):
    """Train (or resume) one demo run, then evaluate it on its test split."""
    from keras_meta import config as config_lib
    from keras_meta import runs

    config_lib.validate(config)
    print(f"\n== {what} -> {run_dir}")
    started = time.time()
    runs.train(config, run_dir, verbose=verbose)
    print(f"   trained in {time.time() - started:.0f} s; {evaluating}")
    return runs.evaluate_run(run_dir, verbose=verbose)


def _demo_omniglot(args, verbose) -> None:
    from keras_meta import config as config_lib

    config = config_lib.merge(config_lib.DEFAULTS, DEMO_OMNIGLOT)
    config["training"]["meta_steps"] = args.omniglot_steps
    config["training"]["steps_per_epoch"] = math.gcd(args.omniglot_steps, 100)
    run_dir = Path(args.run_dir) / config["name"]
    result = _train_and_evaluate(
        config, run_dir, verbose,
        f"Prototypical Network on Omniglot (Vinyals split): {args.omniglot_steps} meta-batches "
        "of 4 episodes, 5-way 1-shot",
        "testing on 600 episodes of the 1692 held-out classes")
    print(f"\nOmniglot 5-way 1-shot, classes never seen in training: accuracy "
          f"{100 * result.mean('accuracy'):.1f}% ± {100 * result.ci95('accuracy'):.1f} (95% CI; "
          "chance 20%; ProtoNets paper after full training: 98.8%)")
    print(f"Plots: {run_dir}/episode.png (one test episode with predictions), "
          "learning_curve.png")
    _demo_export(run_dir, Path(args.run_dir) / "exports")


if __name__ == "__main__":
    sys.exit(main())
