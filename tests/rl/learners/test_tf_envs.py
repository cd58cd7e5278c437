"""The TensorFlow trial dynamics reproduce the numpy environments step for step."""

import numpy as np
import pytest
import tensorflow as tf

from keras_meta.rl import NavigationTasks
from keras_meta.rl.envs import sampler
from keras_meta.rl.learners import (
    BanditDynamics,
    MDPDynamics,
    NavigationDynamics,
    rollout,
    task_batch,
    tf_envs,
    trial_dataset,
)


def _bandit_noise(rng, b):  # the draws BernoulliBanditRL2 makes per step, in order
    return rng.random(b)


def _mdp_noise(rng, b):  # TabularMDPRL2: reward noise, then the transition uniform
    return rng.standard_normal(b), rng.random((b, 1))


def _navigation_goals(b):
    goals = sampler.draw_tasks(lambda r, n: NavigationTasks(r.uniform(-0.2, 0.2, (n, 2))),
                               0, "test", 0, b).goals
    goals[0] = [0.1, 0.0]  # reached by the first step of `_actions` in row 0: absorbing
    return NavigationTasks(goals)


def _actions(name, rng, b, t):
    if name.startswith("navigation"):  # beyond the speed limit half of the time: clipping
        scale = 10.0 if name == "navigation-normalized" else 1.0
        a = rng.uniform(-0.2, 0.2, (b, 2)).astype(np.float32)
        if t == 0:
            a[0] = [0.1, 0.0]
        return a * np.float32(scale)
    return rng.integers(0, 3, b).astype(np.int32)


FAMILIES = [
    ("bandit", BanditDynamics(num_arms=3, num_pulls=6), _bandit_noise),
    ("mdp", MDPDynamics(num_episodes=3, num_states=4, num_actions=3, horizon=4), _mdp_noise),
    ("navigation", NavigationDynamics(num_episodes=2, max_steps=6), lambda rng, b: ()),
    ("navigation-normalized", NavigationDynamics(num_episodes=2, max_steps=6, action_scale=0.1),
     lambda rng, b: ()),
]


@pytest.mark.parametrize("name,dynamics,draw_noise", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_steps_equal_the_numpy_environment(name, dynamics, draw_noise):
    b = 8
    tasks = (_navigation_goals(b) if name.startswith("navigation")
             else dynamics.sample_tasks(b, split="test", seed=1))
    env = dynamics.environment(seed=3, tasks=tasks)
    noise_rng = sampler.noise_generator(3, "train")  # a replica of the environment's noise
    action_rng = np.random.default_rng(0)
    tensors = task_batch(dynamics, tasks)
    step = env.reset()
    state, observation = dynamics.reset(tensors)
    step_fn = tf.function(dynamics.step)
    absorbed = 0
    for t in range(dynamics.trial_length):
        for key in step.observation:
            np.testing.assert_array_equal(observation[key].numpy(), step.observation[key],
                                          err_msg=f"{key} at step {t}")
        action = _actions(name, action_rng, b, t)
        noise = tf.nest.map_structure(tf.constant, draw_noise(noise_rng, b))
        step = env.step(action)
        state, observation, reward = step_fn(tensors, state, tf.constant(action), noise)
        np.testing.assert_array_equal(reward.numpy(), step.reward, err_msg=f"step {t}")
        absorbed += int((step.observation["active"] == 0).sum())
    assert step.is_last().all() and int(state.t) == dynamics.trial_length
    if name.startswith("navigation"):
        assert absorbed > 0  # the absorbing rule was exercised


def test_get_and_config_round_trip():
    for dynamics in (f[1] for f in FAMILIES):
        again = tf_envs.get(dynamics.get_config())
        assert type(again) is type(dynamics) and again.get_config() == dynamics.get_config()
        assert tf_envs.get(dynamics.environment(batch_size=2)).get_config() == \
            dynamics.get_config()
    with pytest.raises(ValueError, match=r"`dynamics` must be a TrialDynamics.*Received: "
                                         r"dynamics='cartpole'"):
        tf_envs.get("cartpole")
    with pytest.raises(ValueError, match=r"`num_arms` must be an integer >= 2. Received: "
                                         r"num_arms=1"):
        BanditDynamics(num_arms=1)


def test_task_arrays_validate_like_the_environment():
    dynamics = BanditDynamics(num_arms=3, num_pulls=2)
    with pytest.raises(ValueError, match=r"`probs` must have shape \('n', 3\)"):
        dynamics.task_arrays(dynamics.environment().sample_tasks(2)._replace(
            probs=np.zeros((2, 4))))


def test_trial_dataset_draws_the_task_stream_with_repeats():
    dynamics = BanditDynamics(num_arms=4, num_pulls=2)
    first = list(trial_dataset(dynamics, 6, seed=5, repeat_tasks=3).take(2))
    again = list(trial_dataset(dynamics, 6, seed=5, repeat_tasks=3).take(2))
    expected = dynamics.sample_tasks(4, split="train", seed=5).probs
    probs = np.concatenate([e["tasks"]["probs"].numpy() for e in first])
    np.testing.assert_array_equal(probs, np.repeat(expected, 3, axis=0))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["seed"].numpy(), b["seed"].numpy())
    assert not np.array_equal(first[0]["seed"].numpy(), first[1]["seed"].numpy())
    with pytest.raises(ValueError, match=r"`batch_size` must be a multiple of `repeat_tasks`. "
                                         r"Received: batch_size=5, repeat_tasks=2"):
        trial_dataset(dynamics, 5, repeat_tasks=2)


def test_trial_dataset_resumes_at_start():
    """A run restored at iteration k continues the stream (tasks and rollout seeds) there."""
    dynamics = BanditDynamics(num_arms=3, num_pulls=2)
    whole = list(trial_dataset(dynamics, 4, seed=1, repeat_tasks=2).take(5))
    position = {"iteration": 0}
    resumed = trial_dataset(dynamics, 4, seed=1, repeat_tasks=2,
                            start=lambda: position["iteration"])
    position["iteration"] = 3  # read when iteration begins, not when the dataset is built
    for a, b in zip(whole[3:], resumed.take(2)):
        np.testing.assert_array_equal(a["tasks"]["probs"].numpy(), b["tasks"]["probs"].numpy())
        np.testing.assert_array_equal(a["seed"].numpy(), b["seed"].numpy())
    with pytest.raises(ValueError, match="`start` must be"):
        trial_dataset(dynamics, 4, start=-1)


def test_rollout_records_one_trial():
    dynamics = BanditDynamics(num_arms=3, num_pulls=5)
    probs = np.array([[0.0, 1.0, 0.0]] * 4)  # arm 1 always pays, the others never
    tasks = task_batch(dynamics, dynamics.environment(tasks=None).sample_tasks(4)._replace(
        probs=probs))
    logits = tf.constant([[0.0, 3.0, -1.0]])

    def policy(observation, carry):
        b = tf.shape(observation["observation"])[0]
        return tf.tile(logits, [b, 1]), tf.zeros([b]), carry + 1.0

    trials = tf.function(rollout)(dynamics, policy, tasks, tf.zeros([4, 1]), tf.constant([1, 2]))
    assert trials.rewards.shape == (5, 4) and trials.params.shape == (5, 4, 3)
    np.testing.assert_array_equal(trials.rewards.numpy(), (trials.actions.numpy() == 1))
    np.testing.assert_allclose(trials.log_probs.numpy(),
                               tf.nn.log_softmax(logits)[0].numpy()[trials.actions.numpy()],
                               rtol=1e-6)
    # The observation each action was chosen from: the previous action and reward.
    np.testing.assert_array_equal(trials.observations["prev_action"][1:].numpy().argmax(-1),
                                  trials.actions[:-1].numpy())
    np.testing.assert_array_equal(trials.observations["prev_reward"][1:, :, 0].numpy(),
                                  trials.rewards[:-1].numpy())
    greedy = tf.function(rollout)(dynamics, policy, tasks, tf.zeros([4, 1]), tf.constant([1, 2]),
                                  deterministic=True)
    np.testing.assert_array_equal(greedy.returns().numpy(), 5.0)
    assert trials.expected_rewards is None  # only when asked for
    both = tf.function(rollout)(dynamics, policy, tasks, tf.zeros([4, 1]), tf.constant([1, 2]),
                                expected_rewards=True)
    np.testing.assert_array_equal(both.rewards.numpy(), trials.rewards.numpy())  # unchanged
    np.testing.assert_array_equal(both.expected_rewards.numpy(), trials.rewards.numpy())


@pytest.mark.parametrize("name,dynamics,draw_noise", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_expected_reward_is_the_mean_of_the_sampled_reward(name, dynamics, draw_noise):
    """Over many copies of each task, the sampled reward of an action minus its
    `expected_reward` averages to 0, from the first state and from later (random) ones;
    where the family has no reward noise the two are equal."""
    b, copies = 4, 2000
    tasks = (_navigation_goals(b) if name.startswith("navigation")
             else dynamics.sample_tasks(b, split="test", seed=1))
    tensors = task_batch(dynamics, tasks, repeat_tasks=copies)  # copies of a task: consecutive
    state, _ = dynamics.reset(tensors)
    rng = np.random.default_rng(0)
    for t in range(3):
        action = tf.constant(np.repeat(_actions(name, rng, b, t + 1), copies, axis=0))
        expected = dynamics.expected_reward(tensors, state, action).numpy()
        assert expected.shape == (b * copies,) and expected.dtype == np.float32
        noise = tf.nest.map_structure(tf.constant, draw_noise(rng, b * copies))
        state, _, reward = dynamics.step(tensors, state, action, noise)
        residual = (reward.numpy() - expected).reshape(b, copies)
        if name.startswith("navigation"):
            np.testing.assert_array_equal(residual, 0.0)
        else:
            assert residual.std(axis=1).min() > 0.1  # the sampled rewards are noisy...
            error = residual.std(axis=1) / np.sqrt(copies)  # ...and unbiased around it
            assert np.all(np.abs(residual.mean(axis=1)) < 5 * error)
        if name == "bandit":
            np.testing.assert_allclose(
                expected, np.repeat(np.asarray(tasks.probs), copies, axis=0)[
                    np.arange(b * copies), action.numpy()], rtol=1e-6)
