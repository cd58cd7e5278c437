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


#: MAML-RL on short navigation episodes; TRPO leaves the optimizer untouched, so only the
#: learner's own iteration counter can tell a resumed run where its task stream stands.
TINY_MAML = {
    "name": "tiny-maml-rl",
    "seed": 1,
    "env": {"name": "navigation_2d", "max_steps": 10, "action_scale": 0.1},
    "learner": {"name": "maml_rl", "hidden_units": [16], "trajectories_per_task": 4,
                "update_rule": 0.1, "outer_step": "trpo", "first_order": True},
    "training": {"batch_size": 3, "iterations": 4, "iterations_per_epoch": 2,
                 "validation_tasks": 4},
    "evaluation": {"tasks": 6, "batch_size": 4, "adaptation_steps": 2,
                   "trajectories_per_task": 8, "baselines": ["stand_still", "goal_oracle"]},
}


def tiny_config(base=TINY, **sections):
    config = config_lib.merge(config_lib.merge(rl_runs.DEFAULTS, base), sections)
    config_lib.validate(config)
    return config


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def weights_and_optimizer(run_dir):
    learner, _ = runs.load_learner(run_dir)
    return [v.numpy() for v in learner.weights] + [v.numpy() for v in learner.optimizer.variables]


@pytest.mark.parametrize("base", [TINY, TINY_MAML], ids=["rl2", "maml_rl"])
def test_interrupted_run_resumes_exactly(base, tmp_path):
    config = tiny_config(base)
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
    assert int(learner.meta_iterations.numpy()) == 4
    if base is TINY:
        assert int(learner.env_steps.numpy()) == 4 * 16 * 10
    else:  # goals x trajectories x steps, before and after the inner step
        assert int(learner.env_steps.numpy()) == 4 * 3 * 4 * 10 * 2


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
    assert not (run_dir / "adaptation_curve.png").exists()  # RL^2 adapts within its trials
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
    ({"learner": {"name": "lstm"}}, "Unknown meta-RL learner 'lstm'"),
    ({"evaluation": {"adaptation_steps": 2}},
     "`evaluation.adaptation_steps`: RL\\^2 adapts within its trials"),
    ({"env": {"name": "navigation_2d"}, "evaluation": {"baselines": ["greedy"]}},
     "Baseline 'greedy' plays bernoulli_bandit tasks, not 'navigation_2d'"),
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


def test_maml_rl_run_trains_evaluates_per_adaptation_step_and_refuses_export(tmp_path, capsys):
    config = tmp_path / "maml.yaml"
    config.write_text(json.dumps(TINY_MAML))
    run_dir = tmp_path / "run"
    assert cli.main(["train", str(config), "--run-dir", str(run_dir), "--quiet"]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    scores = results["scores"]
    assert list(scores) == ["MAML-RL, 0 steps", "MAML-RL, 1 step", "MAML-RL, 2 steps",
                            "stand_still", "goal_oracle"]
    protocol = results["protocol"]
    assert protocol["tasks"] == 6 and protocol["adaptation_steps"] == 2
    assert protocol["trajectories_per_task"] == 8  # the evaluation's, not training's 4
    # Ten steps of 0.1 reach goals within 0.5: the oracle far above standing still.
    assert scores["goal_oracle"]["mean"] > scores["stand_still"]["mean"] + 1.0
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"return_before", "return_after", "val_return_after", "kl", "accepted"} <= set(header)
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    assert (run_dir / "adaptation_curve.png").stat().st_size > 0

    assert cli.main(["evaluate", str(run_dir), "--steps", "0", "1", "--episodes", "5"]) == 0
    again = json.loads((run_dir / "results.json").read_text())["scores"]
    assert list(again)[:2] == ["MAML-RL, 0 steps", "MAML-RL, 1 step"] and len(again) == 4
    capsys.readouterr()
    assert cli.main(["export", str(run_dir), "--base-path", str(tmp_path / "exports")]) == 2
    assert "Exporting a MAMLRL run is not supported" in capsys.readouterr().err


def test_maml_rl_scores_are_the_learners_adaptation_on_the_same_goals():
    """The run's scores are `evaluate_adaptation` on the test goals, block by block."""
    config = tiny_config(TINY_MAML)
    learner = rl_runs.build_learner(config)
    result = rl_runs.evaluate(learner, config, steps=1)
    evaluator = rl_runs.MAMLRL.from_config({**learner.get_config(), "trajectories_per_task": 8})
    evaluator.policy.set_weights(learner.policy.get_weights())
    env = rl_runs.build_env(config)
    direct = [s.scores for s in evaluator.evaluate_adaptation(
        env.sample_tasks(4, split="test"), steps=1, seed=0)]
    rest = [s.scores for s in evaluator.evaluate_adaptation(
        env.sample_tasks(2, split="test", start=4), steps=1, seed=0)]
    for step in range(2):
        label = f"MAML-RL, {step} step{'' if step == 1 else 's'}"
        np.testing.assert_allclose(result.scores[label].scores,
                                   np.concatenate([direct[step], rest[step]]), rtol=1e-6)


def test_maml_rl_evaluation_adapts_with_the_learned_step_sizes():
    config = tiny_config(TINY_MAML, learner={
        "outer_step": "ppo", "update_rule": {"name": "learned_step_sizes",
                                             "initial_learning_rate": 0.1}},
        evaluation={"trajectories_per_task": None, "adaptation_steps": 1})
    learner = rl_runs.build_learner(config)
    # As if meta-training had moved them: the evaluation must adapt with these.
    learner.update_rule.set_weights([np.full_like(w, 0.5) for w in
                                     learner.update_rule.get_weights()])
    result = rl_runs.evaluate(learner, config)
    tasks = rl_runs.build_env(config).sample_tasks(6, split="test")
    direct = learner.evaluate_adaptation(tasks, steps=1, seed=0, batch_size=4)
    np.testing.assert_allclose(result.scores["MAML-RL, 1 step"].scores, direct[1].scores,
                               rtol=1e-6)


@pytest.mark.parametrize("rule, message", [
    ("fast", "`evaluation.update_rule`: `update_rule` must be"),
    ({"name": "adam"}, "`evaluation.update_rule`: Unknown update rule 'adam'"),
    ([0.1, -0.05], "`evaluation.update_rule`: `learning_rate` must be a positive number"),
])
def test_a_bad_evaluation_update_rule_fails_before_training(rule, message, tmp_path):
    path = tmp_path / "bad.yaml"
    config = config_lib.merge(TINY_MAML, {"evaluation": {"update_rule": rule}})
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        config_lib.load(path)


def test_trpo_runs_refuse_a_learning_rate_schedule(tmp_path):
    config = tiny_config(TINY_MAML, optimizer={"final_learning_rate": 1e-4})
    with pytest.raises(ValueError, match="`optimizer.final_learning_rate`: .*TRPO"):
        runs.train(config, tmp_path / "run", verbose=0)
