"""Side-by-side MAML speed: keras-meta against its peers, in one run on one machine.

Runs every (framework, configuration) in its own process (so peak memory is per run) and
prints a table of meta-steps/s (median of repeats), peak RSS, and the ratio to keras-meta.
Peers live in their own environments (benchmarks/peers/setup.sh), never as dependencies.
Writes docs/results/speed.md and speed.json.

    .venv/bin/python benchmarks/speed.py            # all configurations
    .venv/bin/python benchmarks/speed.py --only sinusoid
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _record import environment, markdown_header

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / "peers"

# (label, config, order, inner steps, frameworks)
CASES = [
    ("sinusoid, 2nd order, 1 step", "sinusoid", 2, 1, ("keras-meta", "jax", "learn2learn")),
    ("conv 5-way 1-shot, 2nd order, 1 step", "conv", 2, 1, ("keras-meta", "jax", "learn2learn")),
    ("conv 5-way 1-shot, 1st order, 1 step", "conv", 1, 1, ("keras-meta", "jax", "learn2learn")),
    ("conv 5-way 1-shot, 2nd order, 5 steps", "conv", 2, 5, ("keras-meta", "learn2learn")),
]
# keras-meta settings compared on the sinusoid case (which one is fastest decides the defaults).
VARIANTS = [
    ("XLA, vectorized over tasks, 100 steps/execution, fused blocks (default)", []),
    ("XLA, vectorized, 1000 steps/execution, fused blocks", ["--steps-per-execution", "1000"]),
    ("XLA, vectorized, 100 steps/execution, Keras' loop (one launch per step)",
     ["--keras-loop"]),
    ("XLA, tf.map_fn over tasks, 100 steps/execution", ["--task-batching", "map"]),
    ("no XLA, vectorized, 100 steps/execution", ["--jit", "off"]),
    ("XLA, vectorized, 1 step/execution", ["--steps-per-execution", "1"]),
    ("XLA, vectorized, 100 steps/execution, tasks sampled live in tf.data", ["--live-tasks"]),
]
FRAMEWORKS = {
    "keras-meta": (ROOT / ".venv/bin/python", ROOT / "benchmarks/maml_speed.py"),
    "jax": (PEERS / ".venv-jax/bin/python", PEERS / "jax_maml.py"),
    "learn2learn": (PEERS / ".venv-torch/bin/python", PEERS / "l2l_maml.py"),
}
# Per framework and configuration: extra flags and the timed / warm-up steps per repeat.
EXTRA = {
    ("keras-meta", "conv"): ["--task-chunk-size", "1"],  # sequential tasks: least memory
    # vmap turns each conv into a 32-group convolution that XLA:CPU runs ~20x slower.
    ("jax", "conv"): ["--task-loop", "unroll"],
}
STEPS = {
    ("keras-meta", "sinusoid"): (5000, 1000), ("jax", "sinusoid"): (5000, 1000),
    ("learn2learn", "sinusoid"): (100, 5),
}


def run(framework, config, order, inner, extra, repeats, timeout):
    python, script = FRAMEWORKS[framework]
    if not python.exists():
        return {"error": f"{python} missing: run benchmarks/peers/setup.sh"}
    steps, warmup = STEPS.get((framework, config), (2, 1))
    cmd = [str(python), str(script), "--config", config, "--order", str(order),
           "--inner-steps", str(inner), "--repeats", str(repeats), "--steps", str(steps),
           "--warmup", str(warmup), *EXTRA.get((framework, config), []), *extra]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["sinusoid", "conv"], default=None)
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    env = environment(("tensorflow", "keras"))
    results = []
    for label, config, order, inner, frameworks in CASES:
        if args.only and config != args.only:
            continue
        for framework in [f for f in frameworks if f in args.frameworks]:
            r = run(framework, config, order, inner, [], args.repeats, args.timeout)
            results.append({"case": label, "framework": framework, **r})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    variant_lines = []
    if args.only in (None, "sinusoid") and "keras-meta" in args.frameworks:
        variant_lines = ["| keras-meta setting (sinusoid, 2nd order, 1 step) | meta-steps/s | "
                         "peak RSS (GB) |", "|---|---|---|"]
        for label, extra in VARIANTS:
            r = run("keras-meta", "sinusoid", 2, 1, extra, args.repeats, args.timeout)
            print(json.dumps({"variant": label, **r}), file=sys.stderr, flush=True)
            variant_lines.append(
                f"| {label} | error: {r['error']} | |" if "error" in r else
                f"| {label} | {r['meta_steps_per_s']:.3g} | {r['peak_rss_gb']:.2f} |")
    lines = ["| case | framework | meta-steps/s (median of runs) | peak RSS (GB) | "
             "keras-meta speed ratio |", "|---|---|---|---|---|"]
    for r in results:
        ours = next((o for o in results if o["case"] == r["case"]
                     and o["framework"] == "keras-meta" and "meta_steps_per_s" in o), None)
        if "error" in r:
            lines.append(f"| {r['case']} | {r['framework']} | error: {r['error']} | | |")
            continue
        ratio = f"{ours['meta_steps_per_s'] / r['meta_steps_per_s']:.2f}x" if ours else ""
        lines.append(f"| {r['case']} | {r['framework']} | {r['meta_steps_per_s']:.3g} "
                     f"({', '.join(f'{x:.3g}' for x in r['runs'])}) | {r['peak_rss_gb']:.2f} | "
                     f"{ratio} |")
    table = "\n".join(lines) + ("\n\n" + "\n".join(variant_lines) if variant_lines else "")
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text(markdown_header("MAML speed, side by side", env) + (
        "Same math in every framework (see benchmarks/maml_speed.py and benchmarks/peers/). "
        "Each run is its own process; sinusoid times 5000 meta-steps per repeat after 1000 "
        "warm-up steps (learn2learn 100 after 5), conv 2 (after 1 warm-up step, which "
        "includes compilation). JAX conv unrolls the task loop (vmap is ~20x slower on "
        "CPU); keras-meta conv accumulates the meta-gradient "
        "task by task (`task_chunk_size=1`). "
        "The ratio is keras-meta's speed over that row's (above 1: keras-meta is faster). "
        "Peak RSS is the whole process (TensorFlow's runtime alone is about 0.56 GB after "
        "import and model build).\n\n" + table + "\n"))
    (out / "speed.json").write_text(json.dumps({"env": env, "results": results}, indent=2))


if __name__ == "__main__":
    main()
