"""Every benchmark script imports against the current package and explains itself with --help.

The benchmarks are how the numbers in docs/ are reproduced; this catches a script that an API
change has broken long before someone reruns it.
"""

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_benchmarks_are_found():
    assert {"omniglot.py", "rl2_bandits.py", "sampler_speed.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    description = out.split("\n\n")[1].strip()  # argparse: usage, description, options
    assert description and not description.startswith("options:"), out


def test_rl2_bandits_ucb1_choices_are_ucb1s(monkeypatch):
    """--imitate-ucb1's labels: the arm UCB1Bandit pulls after each history, computed in the
    graph from the one-hot previous actions and rewards an RL^2 policy reads."""
    import numpy as np
    import tensorflow as tf

    import keras_meta.rl as rl

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    ucb1_choices = runpy.run_path(str(BENCHMARKS / "rl2_bandits.py"))["ucb1_choices"]
    k, n, b = 10, 100, 200
    tasks = rl.sample_bandit_tasks(b, k, split="test")
    trials = rl.play(rl.BernoulliBanditRL2(k, n, batch_size=b), rl.UCB1Bandit(0.2), tasks)
    actions, rewards = trials.actions.T, trials.rewards.T  # [T, B]
    prev_action = np.concatenate([np.zeros((1, b, k)), np.eye(k)[actions[:-1]]])
    prev_reward = np.concatenate([np.zeros((1, b)), rewards[:-1]])[..., None]
    choices = ucb1_choices({"prev_action": tf.constant(prev_action, tf.float32),
                            "prev_reward": tf.constant(prev_reward, tf.float32)}, 0.2)
    np.testing.assert_array_equal(choices.numpy(), actions)
    assert len(np.unique(actions)) == k  # every arm is tried: the check covers the bonus


def test_rl2_bandits_initial_policy_round_trip_and_mismatch(monkeypatch, tmp_path):
    """--save-policies writes a policy that --initial-policy loads back weight for weight;
    a policy of other widths, or a missing file, stops with an error naming the file."""
    import argparse

    import numpy as np

    import keras_meta.rl as rl
    from keras_meta.rl.learners import RL2

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    script = runpy.run_path(str(BENCHMARKS / "rl2_bandits.py"))
    env = rl.BernoulliBanditRL2(3, 5)
    trained = RL2(env, hidden_units=8)
    args = argparse.Namespace(label="a b", arms=3, pulls=5, save_policies=str(tmp_path))
    path = script["save_policy"](trained, args, 1, "-before-ppo")
    assert path.name == "k3-n5-a-b-seed1-before-ppo.keras"

    fresh = RL2(env, hidden_units=8)
    assert not np.array_equal(fresh.policy.get_weights()[0], trained.policy.get_weights()[0])
    script["load_initial_policy"](fresh, path)
    for got, want in zip(fresh.policy.get_weights(), trained.policy.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(SystemExit, match=r"k3-n5-a-b-seed1-before-ppo\.keras has weights"):
        script["load_initial_policy"](RL2(env, hidden_units=4), path)
    with pytest.raises(SystemExit, match="no such file"):
        script["load_initial_policy"](fresh, tmp_path / "missing.keras")
