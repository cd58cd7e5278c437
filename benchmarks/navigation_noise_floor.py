"""How well can a Gaussian policy of a given spread do on 2D navigation, even knowing the goal?

MAML-RL's adapted policy on 2D navigation is a Gaussian with a state-independent standard
deviation, and the velocity is ``clip(action_scale * action, -0.1, 0.1)``. This scores
goal-aware proportional controllers ``velocity = gain * (goal - position) + std * noise``
(the best a post-update policy with that spread can hope for) over a grid of gains, on
held-out goals of the test split, with the numpy `Navigation2DMAML` on raw velocity actions.
Reading: a target return needs a spread, in units of velocity (``std * action_scale`` for
a policy on scaled actions), at most the one whose best controller reaches it. Prints a
table and writes docs/results/navigation_noise_floor.{md,json}.

    .venv/bin/python benchmarks/navigation_noise_floor.py [--goals 1000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _record import environment, markdown_header

import keras_meta.rl as rl

OUT = Path(__file__).resolve().parents[1] / "docs" / "results"
STEM = "navigation_noise_floor"
STDS = (0.0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.42, 1.0)  # velocity units
GAINS = (0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 100.0)


class NoisyController:
    """Goal-aware proportional controller with Gaussian action noise (a `TrialAgent`)."""

    def __init__(self, gain: float, std: float) -> None:
        self.gain, self.std = gain, std
        self._goals = np.zeros((1, 2))
        self._rng = np.random.default_rng(0)

    def begin_trial(self, tasks, rng: np.random.Generator) -> None:
        self._goals, self._rng = np.asarray(tasks.goals), rng

    def act(self, time_step) -> np.ndarray:
        position = time_step.observation["observation"].astype(np.float64)
        mean = self.gain * (self._goals - position)
        noise = self.std * self._rng.normal(size=mean.shape)
        return (mean + noise).astype(np.float32)


def summary(score) -> dict:
    return {"mean": float(score.mean), "stderr": float(score.stderr)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=1000, help="held-out goals (test split)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    goals = rl.sample_navigation_tasks(args.goals, split="test")
    env = rl.Navigation2DMAML(batch_size=min(args.goals, 1000))
    table = {}
    for std in STDS:
        table[f"{std:g}"] = {
            f"{gain:g}": summary(rl.evaluate(env, NoisyController(gain, std), goals))
            for gain in GAINS}
        best = max(table[f"{std:g}"].values(), key=lambda s: s["mean"])
        print(f"std {std:g}: best {best['mean']:.2f}", flush=True)
    lines = [markdown_header("2D navigation: the return a Gaussian policy's spread allows",
                             environment(("numpy", "tf-agents"))).rstrip(), "",
             f"Mean return (± s.e.) of `action = gain * (goal - position) + std * noise` "
             f"(velocity units, clipped to [-0.1, 0.1]) on {args.goals} test goals, 100 steps, "
             "the episode ending within 0.01 of the goal on both axes. Targets of the MAML "
             "paper: -11.7 after one adaptation step, -3.3 after two.", "",
             "| std (velocity) | " + " | ".join(f"gain {g:g}" for g in GAINS) + " | best |",
             "|---" * (len(GAINS) + 2) + "|"]
    for std, row in table.items():
        best = max(s["mean"] for s in row.values())
        lines.append(f"| {std} | " + " | ".join(f"{s['mean']:.2f} ± {s['stderr']:.2f}"
                                               for s in row.values()) + f" | {best:.2f} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{STEM}.md").write_text(text)
    (args.out / f"{STEM}.json").write_text(json.dumps(
        {"environment": environment(("numpy", "tf-agents")), "returns": table}, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
