"""Meta-RL runs from configs: train, resume, evaluate beside baselines, export, bad configs."""

import json

import keras
import numpy as np
import pytest

from keras_meta import cli, runs
from keras_meta import config as config_lib
from keras_meta.rl import runs as rl_runs

TINY = {
    "name": "tiny-rl2",
    "seed": 2,
    "env": {"name": "bernoulli_bandit", "num_arms": 5, "num_pulls": 10},
    "learner": {"name": "rl2", "hidden_units": 16, "discount": 1.0, "gae_lambda": 0.3,
                "ppo_epochs": 2, "num_minibatches": 2},
    "optimizer": {"name": "adam", "learning_rate": 3e-3, "final_learning_rate": 1e-3},
    "training": {"batch_size": 16, "iterations": 4, "iterations_per_epoch": 2,
                 "validation_tasks": 8},
    "evaluation": {"tasks": 20, "baselines": ["random", "greedy"]},
}


def tiny_config(**sections):
    config = config_lib.merge(config_lib.merge(rl_runs.DEFAULTS, TINY), sections)
    config_lib.validate(config)
    return config


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def weights_and_optimizer(run_dir):
    learner, _ = runs.load_learner(run_dir)
    return [v.numpy() for v in learner.weights] + [v.numpy() for v in learner.optimizer.variables]


def test_interrupted_run_resumes_exactly(tmp_path):
    config = tiny_config()
    runs.train(config, tmp_path / "whole", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, tmp_path / "cut", verbose=0, callbacks=[Interrupt()])
    assert not (tmp_path / "cut" / "checkpoints").exists()
    runs.train(config, tmp_path / "cut", verbose=0)
    whole, cut = weights_and_optimizer(tmp_path / "whole"), weights_and_optimizer(tmp_path / "cut")
    assert len(whole) == len(cut)
    for a, b in zip(whole, cut):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    rows = (tmp_path / "cut" / "history.csv").read_text().splitlines()
    assert len(rows) == 3  # header and one row per epoch, none repeated
    learner, _ = runs.load_learner(tmp_path / "cut")
    assert int(learner.env_steps.numpy()) == 4 * 16 * 10


def test_cli_trains_a_learner_that_beats_random_then_exports_it(tmp_path, capsys):
    """k=5, n=10 bandits, 60 iterations of 256 trials: RL^2 above Random on held-out tasks."""
    config = tmp_path / "rl2.yaml"
    config.write_text(json.dumps(config_lib.merge(TINY, {
        "learner": {"hidden_units": 32, "ppo_epochs": 4, "num_minibatches": 4},
        "optimizer": {"learning_rate": 6e-3, "final_learning_rate": 1e-3},
        "training": {"batch_size": 256, "iterations": 60, "iterations_per_epoch": 20,
                     "validation_tasks": 256},
        "evaluation": {"tasks": 400, "baselines": ["random", {"name": "ucb1", "c": 0.05}]},
    })))  # JSON is YAML
    run_dir = tmp_path / "run"
    assert cli.main(["train", str(config), "--run-dir", str(run_dir), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "400 held-out tasks" in printed and "ucb1 (c=0.05)" in printed

    results = json.loads((run_dir / "results.json").read_text())
    scores = results["scores"]
    assert list(scores) == ["RL^2, sampled actions", "RL^2, most likely action", "random",
                            "ucb1 (c=0.05)"]
    assert results["protocol"]["split"] == "test" and results["protocol"]["tasks"] == 400
    # Random scores about 5.0 here and UCB1 6.8 (each ± 0.1).
    assert scores["RL^2, sampled actions"]["mean"] > scores["random"]["mean"] + 0.5, scores
    assert scores["ucb1 (c=0.05)"]["mean"] > 6.4
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"trial_return", "val_trial_return", "entropy", "env_steps"} <= set(header)

    # The same held-out tasks on re-evaluation: the baselines' scores repeat exactly.
    assert cli.main(["evaluate", str(run_dir), "--quiet"]) == 0
    again = json.loads((run_dir / "results.json").read_text())["scores"]
    assert again["random"] == scores["random"]
    assert cli.main(["evaluate", str(run_dir), "--steps", "1"]) == 2
    assert "`steps`: an RL^2 run adapts within its trials" in capsys.readouterr().err

    exports = tmp_path / "exports"
    assert cli.main(["export", str(run_dir), "--base-path", str(exports)]) == 0
    version = exports / "tiny-rl2" / "1"
    assert (version / "saved_model.pb").exists()
    assert list(version.rglob("*.onnx"))
    assert cli.main(["export", str(run_dir), "--base-path", str(exports),
                     "--quantize", "dynamic"]) == 2
    assert "exports in float only" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"env": {"name": "maze"}}, "Unknown env 'maze'; expected one of"),
    ({"env": {"num_arms": 1}}, "`num_arms` must be"),
    ({"env": {"arms": 5}}, "`env`: .*arms"),
    ({"learner": {"name": "maml_rl"}}, "Unknown meta-RL learner 'maml_rl'"),
    ({"training": {"iterations": 5}}, "multiple of `training.iterations_per_epoch`"),
    ({"training": {"batch_size": 0}}, "`training.batch_size` must be"),
    ({"evaluation": {"baselines": ["psrl"]}},
     "Baseline 'psrl' plays tabular_mdp tasks, not 'bernoulli_bandit'"),
    ({"evaluation": {"baselines": ["ucb"]}}, "Unknown baseline 'ucb'"),
    ({"evaluation": {"baselines": [{"name": "ucb1", "c": -1}]}}, "`c` must be >= 0"),
    ({"evaluation": {"baselines": [{"name": "greedy", "eps": 0.1}]}},
     "Baseline 'greedy' in `evaluation.baselines`: .*eps"),
    ({"evaluation": {"baselines": "random"}}, "`evaluation.baselines` must be a list"),
])
def test_bad_configs_name_what_is_wrong(change, message, tmp_path):
    config = config_lib.merge(TINY, change)
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        config_lib.load(path)


def test_supervised_sections_are_refused_and_learner_arguments_checked(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({**TINY, "model": {"name": "mlp"}}))
    with pytest.raises(ValueError, match="takes no `model` section"):
        config_lib.load(path)
    config = tiny_config(learner={"hidden": 8})
    with pytest.raises(ValueError, match="`learner`: .*hidden"):
        runs.train(config, tmp_path / "run", verbose=0)


def test_mdp_config_scores_the_mdp_baselines():
    config = tiny_config(env={"name": "tabular_mdp", "num_episodes": 2},
                         evaluation={"tasks": 30, "baselines": ["random", "oracle"]})
    learner = rl_runs.build_learner(config)
    result = rl_runs.evaluate(learner, config)
    assert list(result.scores)[2:] == ["random", "oracle"]
    # The known-MDP optimum far above random play on the same tasks.
    assert result.scores["oracle"].mean > result.scores["random"].mean + 10
    assert "30 held-out tasks of" in str(result)
