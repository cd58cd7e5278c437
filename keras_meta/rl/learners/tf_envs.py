"""Pure-TensorFlow trial dynamics of the meta-RL task families, for in-graph rollouts.

Each family's `TrialDynamics` mirrors its numpy `TrialEnvironment` (the reference, and the
evaluation path) step for step: same tasks, same actions and the same noise give the same
observations and rewards (``tests/rl/learners/test_tf_envs.py`` checks it against the
`PyEnvironment`). Trial semantics are those of `keras_meta.rl.envs.trial`: a rollout is
exactly one trial of ``trial_length`` lock-step steps; inner-episode boundaries restart
the task's episode and set ``done``; absorbed rows (2D navigation at its goal) have
``active=0`` and zero reward.

The dynamics are pure functions of tensors, so a policy and the environment fuse into one
`tf.while_loop` (see `keras_meta.rl.learners.rollout`):

* ``tasks`` is a dict of float64 task arrays with a leading batch axis, made on the host
  by `TrialDynamics.task_arrays` from the family's tasks tuple (drawn by the seeded
  samplers of `keras_meta.rl.envs`);
* ``reset(tasks) -> (state, observation)`` and
  ``step(tasks, state, action, noise) -> (state, observation, reward)``;
* the environment noise of a step is explicit: `noise` draws it from a stateless seed.
  The draws are those the numpy environment makes (uniforms for bandit rewards, a normal
  and a uniform for MDP rewards and transitions), in float64, so feeding the numpy
  generator's draws reproduces the `PyEnvironment` exactly.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from keras_meta.rl.envs import sampler
from keras_meta.rl.envs.bandits import BernoulliBanditRL2, sample_bandit_tasks
from keras_meta.rl.envs.navigation import (
    GOAL_TOLERANCE,
    MAX_SPEED,
    Navigation2DMAML,
    check_action_scale,
    sample_navigation_tasks,
)
from keras_meta.rl.envs.tabular_mdp import TabularMDPRL2, sample_mdp_tasks
from keras_meta.rl.envs.trial import TrialEnvironment
from keras_meta.rl.learners import distributions

Tasks = dict[str, tf.Tensor]


class TrialState(NamedTuple):
    """The state of a batch of trials inside the graph.

    Attributes:
        t: int32 scalar, steps taken in the trial (the same in every row).
        env: the family's per-row state (MDP state, 2D position, or an empty tensor).
        active: bool ``(batch,)``, rows whose next action has an effect.
    """

    t: tf.Tensor
    env: tf.Tensor
    active: tf.Tensor


class TrialDynamics(abc.ABC):
    """Base class: a task family's trial dynamics as pure TensorFlow functions.

    Args:
        num_episodes: int >= 1, inner episodes per trial.
        horizon: int >= 1, steps per inner episode.

    Raises:
        ValueError: on a bad argument (named in the message).
    """

    #: Registered name (used by `get_config` / `get`).
    name = ""

    def __init__(self, *, num_episodes: int, horizon: int) -> None:
        self.num_episodes = sampler.check_int("num_episodes", num_episodes, 1)
        self.horizon = sampler.check_int("horizon", horizon, 1)

    # ------------------------------------------------------------------ facts
    @property
    def trial_length(self) -> int:
        """Steps per trial (``num_episodes * horizon``)."""
        return self.num_episodes * self.horizon

    @property
    @abc.abstractmethod
    def distribution(self) -> distributions.Distribution:
        """The action distribution a policy of this family outputs parameters of."""

    @property
    @abc.abstractmethod
    def observation_size(self) -> int:
        """Length of the task observation vector."""

    @property
    @abc.abstractmethod
    def prev_action_size(self) -> int:
        """Length of the ``prev_action`` vector."""

    # ------------------------------------------------------------------ host side
    @abc.abstractmethod
    def environment(self, batch_size: int | None = None, *, seed: int = 0, split: str = "train",
                    tasks: Any = None) -> TrialEnvironment:
        """The matching numpy `TrialEnvironment` (the reference and the evaluation path)."""

    @abc.abstractmethod
    def sample_tasks(self, count: int, *, split: str, seed: int = 0, start: int = 0) -> Any:
        """Tasks ``[start, start + count)`` of the ``(seed, split)`` stream of this family."""

    @abc.abstractmethod
    def _arrays(self, tasks: Any) -> dict[str, np.ndarray]:
        """The task arrays of validated tasks."""

    def task_arrays(self, tasks: Any) -> dict[str, np.ndarray]:
        """Validates a tasks tuple and returns the float64 arrays `reset`/`step` take.

        Args:
            tasks: the family's tasks tuple (e.g. `BanditTasks`).

        Returns:
            A dict of float64 numpy arrays with a leading task axis.

        Raises:
            ValueError: if `tasks` does not fit this family (as the environment raises).
        """
        return self._arrays(self.environment(tasks=tasks).fixed_tasks)

    def task_signature(self) -> dict[str, tf.TensorSpec]:
        """`tf.TensorSpec`s of the task arrays (leading axis of unknown size)."""
        arrays = self.task_arrays(self.sample_tasks(1, split="train"))
        return {k: tf.TensorSpec((None,) + v.shape[1:], tf.float64, k) for k, v in arrays.items()}

    @property
    def task_feature_size(self) -> int:
        """Length of `task_features`."""
        return sum(int(np.prod(spec.shape[1:])) for spec in self.task_signature().values())

    # ------------------------------------------------------------------ graph side
    def task_features(self, tasks: Tasks) -> tf.Tensor:
        """The task's parameters as one float32 vector per task, ``[B, task_feature_size]``
        (the task arrays flattened, in key order): what an agent must infer and a critic
        may be told at training time."""
        batch = tf.shape(next(iter(tasks.values())))[0]
        return tf.concat([tf.reshape(tf.cast(tasks[k], tf.float32), tf.stack([batch, -1]))
                          for k in sorted(tasks)], axis=-1)

    @abc.abstractmethod
    def _start(self, tasks: Tasks, batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(env_state, task_observation)`` at the start of an inner episode."""

    @abc.abstractmethod
    def noise(self, seed: tf.Tensor, batch: tf.Tensor) -> Any:
        """One step's environment noise for `batch` rows from a stateless ``seed`` (int32[2])."""

    @abc.abstractmethod
    def _transition(self, tasks: Tasks, env: tf.Tensor, action: tf.Tensor, active: tf.Tensor,
                    noise: Any) -> tuple[tf.Tensor, ...]:
        """``(env, reward, task_observation, prev_action, active)`` after one step."""

    def _expected_reward(self, tasks: Tasks, env: tf.Tensor, action: tf.Tensor,
                         active: tf.Tensor) -> tf.Tensor:
        """The reward of `action` without its noise (float32 ``(batch,)``): see
        `expected_reward`. Each family defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define the expected reward "
                                  "of an action (`_expected_reward`).")

    def expected_reward(self, tasks: Tasks, state: TrialState, action: tf.Tensor) -> tf.Tensor:
        """``E[reward | task, state, action]`` of the step `step` would take.

        The reward with its noise averaged out, known to the dynamics (which hold the
        task) and never to an agent: a learner may train on it in place of the sampled
        reward, an unbiased estimate of the same objective with less variance (see `RL2`'s
        ``expected_rewards``). Absorbed rows (``active=0``) get 0, as in `step`.

        Args:
            tasks: dict of task tensors.
            state: the `TrialState` the action is taken in.
            action: int32 ``(batch,)`` or float32 ``(batch, size)`` actions.

        Returns:
            float32 ``(batch,)``.
        """
        return self._expected_reward(tasks, state.env, action, state.active)

    def reset(self, tasks: Tasks) -> tuple[TrialState, dict[str, tf.Tensor]]:
        """Starts a batch of trials (one row per task).

        Args:
            tasks: dict of task tensors (from `task_arrays`).

        Returns:
            ``(state, observation)``: the `TrialState` and the first observation dict
            (float32 vectors ``observation``, ``prev_action``, ``prev_reward``, ``done``,
            ``active``).
        """
        batch = tf.shape(next(iter(tasks.values())))[0]
        env, obs = self._start(tasks, batch)
        zeros = tf.zeros(tf.stack([batch, 1]), tf.float32)
        observation = {
            "observation": obs,
            "prev_action": tf.zeros(tf.stack([batch, self.prev_action_size]), tf.float32),
            "prev_reward": zeros,
            "done": zeros,
            "active": tf.ones_like(zeros),
        }
        return TrialState(tf.constant(0, tf.int32), env, tf.ones([batch], tf.bool)), observation

    def step(self, tasks: Tasks, state: TrialState, action: tf.Tensor,
             noise: Any) -> tuple[TrialState, dict[str, tf.Tensor], tf.Tensor]:
        """Applies one batched action (within the trial: ``state.t < trial_length``).

        Args:
            tasks: dict of task tensors.
            state: the `TrialState`.
            action: int32 ``(batch,)`` (discrete) or float32 ``(batch, size)`` actions.
            noise: this step's environment noise (`noise`).

        Returns:
            ``(state, observation, reward)``, reward float32 ``(batch,)``.
        """
        batch = tf.shape(state.active)[0]
        env, reward, obs, prev_action, active = self._transition(
            tasks, state.env, action, state.active, noise)
        t = state.t + 1
        episode_over = tf.equal(t % self.horizon, 0)
        restart = tf.logical_and(episode_over, t < self.trial_length)
        env0, obs0 = self._start(tasks, batch)
        env = tf.where(restart, env0, env)
        obs = tf.where(restart, obs0, obs)
        active = tf.logical_or(active, restart)
        done = tf.fill(tf.stack([batch, 1]), tf.cast(episode_over, tf.float32))
        observation = {
            "observation": obs,
            "prev_action": prev_action,
            "prev_reward": reward[:, None],
            "done": done,
            "active": tf.cast(active, tf.float32)[:, None],
        }
        return TrialState(t, env, active), observation, reward

    def get_config(self) -> dict:
        """The constructor arguments and ``name`` (see `get`)."""
        return {"name": self.name, "num_episodes": self.num_episodes, "horizon": self.horizon}


class BanditDynamics(TrialDynamics):
    """Bernoulli bandit trials (`BernoulliBanditRL2`) in TensorFlow.

    Args:
        num_arms: int >= 2.
        num_pulls: int >= 1, pulls per trial.
    """

    name = "bandit"

    def __init__(self, num_arms: int = 5, num_pulls: int = 10) -> None:
        super().__init__(num_episodes=num_pulls, horizon=1)
        self.num_arms = sampler.check_int("num_arms", num_arms, 2)
        self._distribution = distributions.Categorical(self.num_arms)

    @property
    def distribution(self) -> distributions.Categorical:
        return self._distribution

    @property
    def observation_size(self) -> int:
        return 1

    @property
    def prev_action_size(self) -> int:
        return self.num_arms

    def environment(self, batch_size=None, *, seed=0, split="train", tasks=None):
        return BernoulliBanditRL2(self.num_arms, self.num_episodes, batch_size, seed=seed,
                                  split=split, tasks=tasks)

    def sample_tasks(self, count, *, split, seed=0, start=0):
        return sample_bandit_tasks(count, self.num_arms, split=split, seed=seed, start=start)

    def _arrays(self, tasks):
        return {"probs": np.asarray(tasks.probs, np.float64)}

    def _start(self, tasks, batch):
        return tf.zeros(tf.stack([batch, 0]), tf.float64), tf.zeros(tf.stack([batch, 1]),
                                                                    tf.float32)

    def noise(self, seed, batch):
        return tf.random.stateless_uniform(tf.reshape(batch, [1]), seed, dtype=tf.float64)

    def _expected_reward(self, tasks, env, action, active):
        return tf.cast(tf.gather(tasks["probs"], action, batch_dims=1), tf.float32)

    def _transition(self, tasks, env, action, active, noise):
        p = tf.gather(tasks["probs"], action, batch_dims=1)
        reward = tf.cast(noise < p, tf.float32)
        obs = tf.zeros_like(reward)[:, None]
        return env, reward, obs, tf.one_hot(action, self.num_arms, dtype=tf.float32), active

    def get_config(self):
        return {"name": self.name, "num_arms": self.num_arms, "num_pulls": self.num_episodes}


class MDPDynamics(TrialDynamics):
    """Random tabular MDP trials (`TabularMDPRL2`) in TensorFlow.

    Args:
        num_episodes: int >= 1, episodes per trial.
        num_states: int >= 1.
        num_actions: int >= 2.
        horizon: int >= 1, steps per episode.
    """

    name = "mdp"

    def __init__(self, num_episodes: int = 10, num_states: int = 10, num_actions: int = 5,
                 horizon: int = 10) -> None:
        super().__init__(num_episodes=num_episodes, horizon=horizon)
        self.num_states = sampler.check_int("num_states", num_states, 1)
        self.num_actions = sampler.check_int("num_actions", num_actions, 2)
        self._distribution = distributions.Categorical(self.num_actions)

    @property
    def distribution(self) -> distributions.Categorical:
        return self._distribution

    @property
    def observation_size(self) -> int:
        return self.num_states

    @property
    def prev_action_size(self) -> int:
        return self.num_actions

    def environment(self, batch_size=None, *, seed=0, split="train", tasks=None):
        return TabularMDPRL2(self.num_episodes, batch_size, num_states=self.num_states,
                             num_actions=self.num_actions, horizon=self.horizon, seed=seed,
                             split=split, tasks=tasks)

    def sample_tasks(self, count, *, split, seed=0, start=0):
        return sample_mdp_tasks(count, self.num_states, self.num_actions, split=split, seed=seed,
                                start=start)

    def _arrays(self, tasks):
        cdf = np.cumsum(np.asarray(tasks.transitions, np.float64), axis=-1)
        cdf[..., -1] = 1.0  # as the environment: P(s' <= last) is exactly 1
        return {"rewards": np.asarray(tasks.rewards, np.float64), "cdf": cdf}

    def _start(self, tasks, batch):
        state = tf.zeros(tf.reshape(batch, [1]), tf.int32)
        return state, tf.one_hot(state, self.num_states, dtype=tf.float32)

    def noise(self, seed, batch):
        normal_seed, uniform_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        return (tf.random.stateless_normal(tf.reshape(batch, [1]), normal_seed, dtype=tf.float64),
                tf.random.stateless_uniform(tf.stack([batch, 1]), uniform_seed, dtype=tf.float64))

    def _mean_reward(self, tasks, env, action):
        """R(s, a) of each row, float64 ``(batch,)``."""
        rewards = tf.reshape(tasks["rewards"], [-1, self.num_states * self.num_actions])
        return tf.gather(rewards, env * self.num_actions + action, batch_dims=1)

    def _expected_reward(self, tasks, env, action, active):
        return tf.cast(self._mean_reward(tasks, env, action), tf.float32)

    def _transition(self, tasks, env, action, active, noise):
        normal, uniform = noise
        s, a = self.num_states, self.num_actions
        index = env * a + action
        cdf = tf.reshape(tasks["cdf"], [-1, s * a, s])
        reward = tf.cast(self._mean_reward(tasks, env, action) + normal, tf.float32)
        row = tf.gather(cdf, index, batch_dims=1)  # (batch, S)
        state = tf.reduce_sum(tf.cast(row <= uniform, tf.int32), axis=-1)
        return (state, reward, tf.one_hot(state, s, dtype=tf.float32),
                tf.one_hot(action, a, dtype=tf.float32), active)

    def get_config(self):
        return {"name": self.name, "num_episodes": self.num_episodes,
                "num_states": self.num_states, "num_actions": self.num_actions,
                "horizon": self.horizon}


class NavigationDynamics(TrialDynamics):
    """2D point navigation (`Navigation2DMAML`) in TensorFlow (deterministic: no noise).

    Args:
        num_episodes: int >= 1, episodes per trial (1: a MAML episode).
        max_steps: int >= 1, steps per episode.
        action_scale: float > 0, velocity per unit of action (see `Navigation2DMAML`).
    """

    name = "navigation"

    def __init__(self, num_episodes: int = 1, max_steps: int = 100,
                 action_scale: float = 1.0) -> None:
        super().__init__(num_episodes=num_episodes,
                         horizon=sampler.check_int("max_steps", max_steps, 1))
        self.action_scale = check_action_scale(action_scale)
        self._distribution = distributions.DiagonalGaussian(2)

    @property
    def distribution(self) -> distributions.DiagonalGaussian:
        return self._distribution

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def prev_action_size(self) -> int:
        return 2

    def environment(self, batch_size=None, *, seed=0, split="train", tasks=None):
        return Navigation2DMAML(self.num_episodes, batch_size, max_steps=self.horizon, seed=seed,
                                split=split, tasks=tasks, action_scale=self.action_scale)

    def sample_tasks(self, count, *, split, seed=0, start=0):
        return sample_navigation_tasks(count, split=split, seed=seed, start=start)

    def _arrays(self, tasks):
        return {"goals": np.asarray(tasks.goals, np.float64)}

    def _start(self, tasks, batch):
        return tf.zeros(tf.stack([batch, 2]), tf.float64), tf.zeros(tf.stack([batch, 2]),
                                                                    tf.float32)

    def noise(self, seed, batch):
        return ()

    def _expected_reward(self, tasks, env, action, active):
        return self._transition(tasks, env, action, active, ())[1]  # no noise: the reward

    def _transition(self, tasks, env, action, active, noise):
        velocity = tf.clip_by_value(self.action_scale * tf.cast(action, tf.float32),
                                    -MAX_SPEED, MAX_SPEED)
        velocity = velocity * tf.cast(active, tf.float32)[:, None]
        position = env + tf.cast(velocity, tf.float64)
        delta = position - tasks["goals"]
        distance = tf.sqrt(tf.reduce_sum(delta * delta, axis=-1))
        reward = tf.cast(tf.where(active, -distance, tf.zeros_like(distance)), tf.float32)
        reached = tf.reduce_all(tf.abs(delta) < GOAL_TOLERANCE, axis=-1)
        return (position, reward, tf.cast(position, tf.float32), velocity,
                tf.logical_and(active, tf.logical_not(reached)))

    def get_config(self):
        return {"name": self.name, "num_episodes": self.num_episodes, "max_steps": self.horizon,
                "action_scale": self.action_scale}


_DYNAMICS = {cls.name: cls for cls in (BanditDynamics, MDPDynamics, NavigationDynamics)}


def get(identifier: TrialDynamics | TrialEnvironment | dict) -> TrialDynamics:
    """The `TrialDynamics` of an instance, a `TrialEnvironment` or a `get_config()` dict.

    Args:
        identifier: a `TrialDynamics` (returned as is), a `BernoulliBanditRL2`,
            `TabularMDPRL2` or `Navigation2DMAML` (its family and trial shape), or a
            config dict with a ``name`` in ``{"bandit", "mdp", "navigation"}``.

    Returns:
        A `TrialDynamics`.

    Raises:
        ValueError: if `identifier` is none of these.
    """
    if isinstance(identifier, TrialDynamics):
        return identifier
    if isinstance(identifier, BernoulliBanditRL2):
        return BanditDynamics(identifier.num_arms, identifier.num_pulls)
    if isinstance(identifier, TabularMDPRL2):
        return MDPDynamics(identifier.num_episodes, identifier.num_states,
                           identifier.num_actions, identifier.horizon)
    if isinstance(identifier, Navigation2DMAML):
        return NavigationDynamics(identifier.num_episodes, identifier.max_steps,
                                  identifier.action_scale)
    if isinstance(identifier, dict) and identifier.get("name") in _DYNAMICS:
        config = {k: v for k, v in identifier.items() if k != "name"}
        return _DYNAMICS[identifier["name"]](**config)
    raise ValueError(
        "`dynamics` must be a TrialDynamics, a BernoulliBanditRL2, TabularMDPRL2 or "
        f"Navigation2DMAML environment, or a config dict with `name` in {sorted(_DYNAMICS)}. "
        f"Received: dynamics={identifier!r}")
