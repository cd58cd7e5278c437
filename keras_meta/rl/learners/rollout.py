"""In-graph rollouts: a policy and a task family's `TrialDynamics` fused in one while loop.

`rollout` plays exactly one trial per batch row inside the graph (a `tf.while_loop` over
time, no per-step Python), recording what the learners need: the observations each
action was chosen from, the actions, the behaviour policy's distribution parameters and
log-probabilities, the critic's values, the rewards and the ``active`` mask.

`trial_dataset` is the data a learner's ``fit`` consumes: batches of training tasks drawn
on the host from the family's seeded task stream (so training tasks never overlap the
validation or test splits), each with a stateless seed for the rollout's randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from keras_meta.rl.envs import sampler
from keras_meta.rl.learners.tf_envs import TrialDynamics

#: Tag of the generator of training-rollout seeds (0-2 are tasks, env noise and agents).
ROLLOUT_SEED_TAG = 3
#: Tag of the generator of the sampling seeds of meta-test evaluations in the graph.
EVALUATION_SEED_TAG = 4

PolicyFn = Callable[[dict[str, tf.Tensor], tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


class Rollout(NamedTuple):
    """One trial per batch row, time-major.

    Attributes:
        observations: dict of float32 ``[T, B, size]``: the observation each action was
            chosen from (the keys of the trial observation dict).
        actions: int32 ``[T, B]`` or float32 ``[T, B, size]``.
        params: float32 ``[T, B, P]``, the behaviour policy's distribution parameters.
        log_probs: float32 ``[T, B]``, log-probabilities of the actions.
        values: float32 ``[T, B]``, the critic's values (zeros for policies without one).
        rewards: float32 ``[T, B]``.
        active: float32 ``[T, B]``, 1 where the action had an effect.
        expected_rewards: float32 ``[T, B]``, the rewards' means given task, state and
            action (`TrialDynamics.expected_reward`), or None unless `rollout` was asked
            for them.
    """

    observations: dict[str, tf.Tensor]
    actions: tf.Tensor
    params: tf.Tensor
    log_probs: tf.Tensor
    values: tf.Tensor
    rewards: tf.Tensor
    active: tf.Tensor
    expected_rewards: tf.Tensor | None = None

    def returns(self) -> tf.Tensor:
        """Undiscounted total reward of each trial, float32 ``[B]``."""
        return tf.reduce_sum(self.rewards, axis=0)


def rollout(dynamics: TrialDynamics, policy_fn: PolicyFn, tasks: dict[str, tf.Tensor],
            carry: tf.Tensor, seed: tf.Tensor, *, deterministic: bool = False,
            expected_rewards: bool = False) -> Rollout:
    """Plays one trial per row of `tasks` with `policy_fn`, inside the graph.

    Args:
        dynamics: the family's `TrialDynamics`.
        policy_fn: ``(observation dict, carry) -> (params, value, carry)``; `carry` is the
            recurrent state (any tensor; e.g. ``zeros([B, 0])`` for a memoryless policy).
        tasks: dict of task tensors with ``B`` rows (`TrialDynamics.task_arrays`).
        carry: the initial carry.
        seed: int32 ``[2]`` stateless seed of the environment noise and action sampling.
        deterministic: take the distribution's mode instead of sampling.
        expected_rewards: also record each step's `TrialDynamics.expected_reward`.

    Returns:
        A `Rollout` of ``T = dynamics.trial_length`` steps. No gradient flows through it.
    """
    dist = dynamics.distribution
    length = dynamics.trial_length
    seed = tf.cast(seed, tf.int32)
    env_seed, action_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    state, observation = dynamics.reset(tasks)
    batch = tf.shape(state.active)[0]

    def array(dtype):
        return tf.TensorArray(dtype, size=length, element_shape=None)

    arrays = {
        "observations": {k: array(tf.float32) for k in observation},
        "actions": array(dist.action_dtype),
        "params": array(tf.float32),
        "log_probs": array(tf.float32),
        "values": array(tf.float32),
        "rewards": array(tf.float32),
    }
    if expected_rewards:
        arrays["expected_rewards"] = array(tf.float32)

    def body(t, state, observation, carry, arrays):
        params, value, carry = policy_fn(observation, carry)
        params = tf.cast(params, tf.float32)
        if deterministic:
            action = dist.mode(params)
        else:
            action = dist.sample(params, tf.random.experimental.stateless_fold_in(action_seed, t))
        noise = dynamics.noise(tf.random.experimental.stateless_fold_in(env_seed, t), batch)
        new_state, new_observation, reward = dynamics.step(tasks, state, action, noise)
        written = {
            "observations": {k: ta.write(t, observation[k])
                             for k, ta in arrays["observations"].items()},
            "actions": arrays["actions"].write(t, action),
            "params": arrays["params"].write(t, params),
            "log_probs": arrays["log_probs"].write(t, dist.log_prob(params, action)),
            "values": arrays["values"].write(t, tf.cast(tf.reshape(value, [batch]), tf.float32)),
            "rewards": arrays["rewards"].write(t, reward),
        }
        if expected_rewards:
            written["expected_rewards"] = arrays["expected_rewards"].write(
                t, dynamics.expected_reward(tasks, state, action))
        return t + 1, new_state, new_observation, carry, written

    _, _, _, _, arrays = tf.while_loop(
        lambda t, *_: t < length, body, (tf.constant(0), state, observation, carry, arrays),
        maximum_iterations=length)
    stacked = tf.nest.map_structure(lambda ta: tf.stop_gradient(ta.stack()), arrays)
    return Rollout(active=stacked["observations"]["active"][..., 0], **stacked)


def trial_dataset(dynamics: TrialDynamics, batch_size: int, *, seed: int = 0,
                  split: str = "train", repeat_tasks: int = 1,
                  start: int | Callable[[], int] = 0) -> tf.data.Dataset:
    """An infinite dataset of training batches: tasks of the stream and a rollout seed.

    Element ``i`` holds tasks ``[i * n, (i + 1) * n)`` of the family's ``(seed, split)``
    task stream (``n = batch_size // repeat_tasks``), each repeated `repeat_tasks` times
    on consecutive rows, as the dict of task arrays under ``"tasks"``, and an int32 ``[2]``
    stateless ``"seed"`` for the rollouts, from a generator of its own (tag
    `ROLLOUT_SEED_TAG` of `keras_meta.rl.envs.sampler`). The same arguments always give
    the same elements.

    Args:
        dynamics: the family's `TrialDynamics`.
        batch_size: int >= 1, rows (trials) per element.
        seed: non-negative int, the experiment seed.
        split: str, one of `SPLITS`; training uses "train".
        repeat_tasks: int >= 1 dividing `batch_size`, rows per task (MAML samples
            several trajectories of each task).
        start: index of the first element (int >= 0), or a callable returning it, called
            when iteration begins: a run restored from a backup passes its iteration
            counter and resumes the stream where it stopped.

    Returns:
        A `tf.data.Dataset` of ``{"tasks": {name: float64 [batch_size, ...]},
        "seed": int32 [2]}``; give ``steps_per_epoch`` to ``fit``. Like any dataset, each
        new iteration restarts the stream: Keras keeps one iterator across the epochs of
        one ``fit`` call, but a second ``fit`` call on the same dataset sees the same
        tasks and seeds again; continue with ``dataset.skip(steps_done)`` (or a new
        `seed`) instead.

    Raises:
        ValueError: on a bad argument.
    """
    batch_size = sampler.check_int("batch_size", batch_size, 1)
    repeat_tasks = sampler.check_int("repeat_tasks", repeat_tasks, 1)
    if batch_size % repeat_tasks:
        raise ValueError("`batch_size` must be a multiple of `repeat_tasks`. Received: "
                         f"batch_size={batch_size}, repeat_tasks={repeat_tasks}")
    seed = sampler.check_seed(seed)
    sampler.split_id(split)
    count = batch_size // repeat_tasks
    if not callable(start):
        start = sampler.check_int("start", start, 0)

    def generate():
        rng = sampler.noise_generator(seed, split, tag=ROLLOUT_SEED_TAG)
        first = sampler.check_int("start", start() if callable(start) else start, 0)
        for _ in range(first):  # the seeds of the elements skipped, drawn as if played
            rng.integers(0, 2**31 - 1, size=2, dtype=np.int64)
        index = first * count
        while True:
            arrays = dynamics.task_arrays(dynamics.sample_tasks(count, split=split, seed=seed,
                                                                start=index))
            index += count
            yield {"tasks": {k: np.repeat(v, repeat_tasks, axis=0) for k, v in arrays.items()},
                   "seed": rng.integers(0, 2**31 - 1, size=2, dtype=np.int64).astype(np.int32)}

    signature = {"tasks": {k: tf.TensorSpec((batch_size,) + tuple(s.shape[1:]), s.dtype, k)
                           for k, s in dynamics.task_signature().items()},
                 "seed": tf.TensorSpec((2,), tf.int32, "seed")}
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)


def task_batch(dynamics: TrialDynamics, tasks: Any, repeat_tasks: int = 1) -> dict[str, tf.Tensor]:
    """Task tensors of a tasks tuple, each task repeated on `repeat_tasks` consecutive rows."""
    arrays = dynamics.task_arrays(tasks)
    return {k: tf.constant(np.repeat(v, repeat_tasks, axis=0)) for k, v in arrays.items()}
