"""`evaluate` and `play`: chunking over the environment's batch, determinism, restored state,
the step-by-step record."""

import numpy as np
import pytest

from keras_meta.rl import (
    BanditTasks,
    BernoulliBanditRL2,
    GreedyBandit,
    RandomAgent,
    Score,
    TabularMDPRL2,
    UCB1Bandit,
    evaluate,
    play,
    sample_bandit_tasks,
    sample_mdp_tasks,
)


def test_chunks_and_padding_keep_task_order():
    probs = np.zeros((7, 3))
    probs[np.arange(7), np.arange(7) % 3] = 1.0  # the paying arm of task i is i % 3
    probs[:, 0] = np.linspace(0, 1, 7) >= 0.5  # tasks 3..6 also pay on arm 0
    tasks = BanditTasks(probs)

    class AlwaysArm0:
        def begin_trial(self, tasks, rng):
            pass

        def act(self, time_step):
            return np.zeros(len(time_step.step_type), np.int32)

    score = evaluate(BernoulliBanditRL2(3, 4, batch_size=3), AlwaysArm0(), tasks)
    np.testing.assert_array_equal(score.scores, 4.0 * probs[:, 0])
    assert score.mean == pytest.approx(4 * probs[:, 0].mean())


def test_deterministic_and_restores_fixed_tasks():
    tasks = sample_bandit_tasks(300, 5, split="test")
    fixed = sample_bandit_tasks(100, 5, split="validation")
    env = BernoulliBanditRL2(5, 20, batch_size=100, tasks=fixed)
    a = evaluate(env, GreedyBandit(tie_break="random"), tasks, seed=4)
    b = evaluate(env, GreedyBandit(tie_break="random"), tasks, seed=4)
    np.testing.assert_array_equal(a.scores, b.scores)
    c = evaluate(env, GreedyBandit(tie_break="random"), tasks, seed=5)
    assert not np.array_equal(a.scores, c.scores)
    assert env.fixed_tasks is not None
    np.testing.assert_array_equal(env.fixed_tasks.probs, fixed.probs)


def test_score():
    score = Score.from_scores([1.0, 2.0, 3.0])
    assert score.mean == 2.0 and score.stderr == pytest.approx(1 / np.sqrt(3))
    assert str(score) == "2.00 ± 0.58"


def test_expected_score_sums_the_chosen_arms_probabilities():
    tasks = sample_bandit_tasks(500, 4, split="test")

    class AlwaysArm2:
        def begin_trial(self, tasks, rng):
            pass

        def act(self, time_step):
            return np.full(len(time_step.step_type), 2, np.int32)

    score = evaluate(BernoulliBanditRL2(4, 30, batch_size=200), AlwaysArm2(), tasks)
    np.testing.assert_allclose(score.expected.scores, 30 * tasks.probs[:, 2])
    # The same mean: the two differ by the coin flips alone (variance 30 p (1 - p) a task).
    p = tasks.probs[:, 2]
    flips = np.sqrt(np.sum(30 * p * (1 - p))) / len(p)
    assert abs(score.mean - score.expected.mean) < 4 * flips


def test_paired_difference():
    a = Score.from_scores([3.0, 5.0, 4.0], expected=[2.5, 4.5, 4.0])
    b = Score.from_scores([1.0, 4.0, 4.0], expected=[2.0, 4.0, 3.0])
    diff = a.minus(b)
    np.testing.assert_array_equal(diff.scores, [2.0, 1.0, 0.0])
    np.testing.assert_array_equal(diff.expected.scores, [0.5, 0.5, 1.0])
    assert Score.from_scores([1.0, 2.0, 3.0]).minus(b).expected is None
    with pytest.raises(ValueError, match="same tasks"):
        a.minus(Score.from_scores([1.0, 2.0]))
    with pytest.raises(ValueError, match="one score per task"):
        Score.from_scores([1.0, 2.0], expected=[1.0])


def test_random_agent_covers_the_action_space():
    env = BernoulliBanditRL2(4, 1, batch_size=4000)
    agent = RandomAgent(env.action_spec())
    agent.begin_trial(None, np.random.default_rng(0))
    counts = np.bincount(agent.act(env.reset()), minlength=4)
    assert counts.min() > 900


def test_empty_tasks():
    with pytest.raises(ValueError, match="at least one task. Received: 0 tasks"):
        evaluate(BernoulliBanditRL2(3, 2), GreedyBandit(), BanditTasks(np.zeros((0, 3))))


def test_play_records_each_step_in_task_order_and_evaluate_sums_it():
    probs = np.zeros((7, 3))
    probs[np.arange(7), np.arange(7) % 3] = 1.0  # task i pays on arm i % 3 only

    class CycleArms:  # arm t % 3 at step t: the pays line up with the task's arm
        def begin_trial(self, tasks, rng):
            self.t = 0

        def act(self, time_step):
            self.t += 1
            return np.full(len(time_step.step_type), (self.t - 1) % 3, np.int32)

    env = BernoulliBanditRL2(3, 5, batch_size=3)  # 7 tasks: chunks of 3, the last padded
    trials = play(env, CycleArms(), BanditTasks(probs))
    assert trials.actions.shape == (7, 5) and trials.rewards.shape == (7, 5)
    np.testing.assert_array_equal(trials.actions, np.tile(np.arange(5) % 3, (7, 1)))
    paid = (np.arange(5)[None] % 3 == np.arange(7)[:, None] % 3).astype(float)
    np.testing.assert_array_equal(trials.rewards, paid)
    np.testing.assert_array_equal(trials.expected_rewards, paid)
    score = evaluate(env, CycleArms(), BanditTasks(probs))
    np.testing.assert_array_equal(score.scores, paid.sum(1))


def test_play_matches_evaluate_on_random_tasks_and_mdps():
    tasks = sample_bandit_tasks(250, 5, split="test")
    env = BernoulliBanditRL2(5, 30, batch_size=100)
    trials = play(env, UCB1Bandit(0.2), tasks, seed=3)
    score = evaluate(env, UCB1Bandit(0.2), tasks, seed=3)
    np.testing.assert_array_equal(trials.rewards.sum(1), score.scores)
    np.testing.assert_allclose(trials.expected_rewards.sum(1), score.expected.scores)
    chosen = np.take_along_axis(tasks.probs, trials.actions, axis=1)
    np.testing.assert_allclose(trials.expected_rewards, chosen)  # a pull's mean: its arm's p

    mdps = sample_mdp_tasks(20, split="test")
    mdp_env = TabularMDPRL2(num_episodes=2, batch_size=8)
    agent = RandomAgent(mdp_env.action_spec())
    mdp_trials = play(mdp_env, agent, mdps)
    assert mdp_trials.rewards.shape == (20, 2 * mdp_env.horizon)
    np.testing.assert_allclose(mdp_trials.rewards.sum(1),
                               evaluate(mdp_env, agent, mdps).scores)
