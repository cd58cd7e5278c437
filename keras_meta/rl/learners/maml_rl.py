"""MAML for reinforcement learning: policy-gradient inner steps, PPO or TRPO outer step.

Each meta-iteration (one ``train_step``) samples ``M`` tasks and, for each, ``K``
trajectories with the meta-policy ``theta``; adapts ``theta_i = theta - alpha grad L_i``
with the policy-gradient loss ``L_i`` of those trajectories (advantages from rllab's linear
feature baseline, normalised per task); repeats for more inner steps, each with fresh
trajectories of the adapted policy; and samples ``K`` trajectories of the final adapted
policy of each task. The outer step improves the adapted policies' surrogate objective on
those, differentiating through the inner steps (second order, or first order with
``first_order=True``): PPO's clipped objective with a Keras optimizer, or TRPO's natural
gradient step with a KL trust region (as in the MAML paper). All rollouts run inside the
graph (`keras_meta.rl.learners.rollout`); the per-task adapted policies act together
through `tf.vectorized_map` over the tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from keras_meta import update_rules
from keras_meta._validation import check_float as _check_float
from keras_meta.core.functional import FunctionalModel
from keras_meta.rl.baselines.evaluation import Score
from keras_meta.rl.envs import sampler
from keras_meta.rl.learners import tf_envs
from keras_meta.rl.learners.base import RLLearner
from keras_meta.rl.learners.ppo import clipped_surrogate
from keras_meta.rl.learners.returns import (
    discounted_returns,
    generalized_advantages,
    linear_feature_baseline,
    masked_mean,
    normalize,
)
from keras_meta.rl.learners.rollout import (
    EVALUATION_SEED_TAG,
    Rollout,
    rollout,
    task_batch,
    trial_dataset,
)
from keras_meta.rl.learners.trpo import trust_region_step

OUTER_STEPS = ("ppo", "trpo")
INNER_OBJECTIVES = ("policy_gradient", "lvc")
OUTER_OBJECTIVES = ("final", "all_steps")


def mlp_policy(dynamics: tf_envs.TrialDynamics | Any, hidden_units: Sequence[int] = (100, 100),
               *, activation: str = "relu", initial_std: float = 1.0,
               mean_activation: str | None = None) -> keras.Model:
    """The MAML paper's policy: an MLP from the task observation to distribution parameters.

    Args:
        dynamics: the task family (as `tf_envs.get` accepts).
        hidden_units: sizes of the hidden layers.
        activation: hidden activation.
        initial_std: float > 0, initial standard deviation of a Gaussian policy.
        mean_activation: activation of a Gaussian policy's mean (None: linear, as in the
            paper; "tanh": bounded to [-1, 1], see `distributions.GaussianHead`).

    Returns:
        A built functional `keras.Model` ``[B, observation_size] -> [B, P]`` (logits, or
        ``concat(mean, log_std)`` with a learned state-independent ``log_std``).
    """
    dynamics = tf_envs.get(dynamics)
    inputs = keras.Input((dynamics.observation_size,), name="observation")
    x = inputs
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(sampler.check_int("hidden_units", units, 1),
                               activation=activation, name=f"hidden_{i}")(x)
    dist = dynamics.distribution
    if dist.discrete:
        if mean_activation is not None:
            raise ValueError("`mean_activation` applies to Gaussian policies only. Received: "
                             f"mean_activation={mean_activation!r} for {dynamics.name} tasks")
        head = dist.head()
    else:
        head = dist.head(initial_std=initial_std, mean_activation=mean_activation)
    return keras.Model(inputs, head(x), name="mlp_policy")


class TaskData(NamedTuple):
    """Trajectories grouped by task, task-major: ``[M, T, K, ...]`` (``K`` per task).

    Attributes:
        observations: float32 ``[M, T, K, d]``, the task observations.
        actions: the actions, ``[M, T, K]`` (int32) or ``[M, T, K, a]`` (float32).
        params: float32 ``[M, T, K, P]``, the behaviour policy's distribution parameters.
        log_probs: float32 ``[M, T, K]``.
        advantages: float32 ``[M, T, K]``, normalised per task.
        mask: float32 ``[M, T, K]``, 1 where the action had an effect.
    """

    observations: tf.Tensor
    actions: tf.Tensor
    params: tf.Tensor
    log_probs: tf.Tensor
    advantages: tf.Tensor
    mask: tf.Tensor


@keras.saving.register_keras_serializable(package="keras_meta")
class MAMLRL(RLLearner):
    """MAML with policy-gradient inner steps and a PPO or TRPO outer step.

    ``fit`` takes the dataset of `MAMLRL.dataset` (``meta_batch_size`` training tasks of
    the family's seeded stream, each on ``trajectories_per_task`` consecutive rows, and a
    rollout seed). `evaluate_adaptation` scores held-out tasks before and after each
    adaptation step; `adapt` returns the adapted parameters of given tasks, which
    `MAMLRLAgent` plays in the numpy environment.

    Logs of ``fit``: ``return_before`` and ``return_after`` (mean undiscounted return of
    the trajectories sampled before adaptation and after the last inner step),
    ``entropy_before`` and ``entropy_after`` (the policy's mean entropy on those
    trajectories: with a Gaussian policy, how far the inner steps move its spread),
    ``outer_loss`` (the outer surrogate loss; 0 at the behaviour policy, since the
    advantages are normalised per task), ``kl`` (mean KL from the behaviour to the adapted
    policies: after the step with TRPO; with PPO the mean over the epochs, each measured
    before its update), ``clip_fraction`` (PPO), ``accepted`` (TRPO: the fraction of
    meta-iterations whose line search accepted a step; a rejected step leaves the policy
    unchanged) and ``env_steps``.

    Args:
        dynamics: the task family (a `TrialDynamics`, a family environment or a config).
        policy: a built Keras model ``[B, observation_size] -> [B, P]`` (distribution
            parameters of ``dynamics.distribution``); `mlp_policy` by default.
        hidden_units: hidden sizes of the default policy.
        initial_std: initial standard deviation of the default Gaussian policy.
        update_rule: the inner rule: a float (SGD step size; 0.1 in the MAML paper) or an
            `keras_meta.update_rules.UpdateRule`.
        inner_steps: int >= 1, adaptation steps (each on fresh trajectories).
        first_order: drop the second-derivative terms of the inner steps.
        inner_objective: ``"policy_gradient"`` (MAML's ``-mean(log pi * A)``) or ``"lvc"``
            (ProMP's low-variance curvature objective ``-mean(pi / stop_grad(pi) * A)``: the
            same value and inner step, but its second derivative also credits the
            meta-policy for the pre-update trajectories it samples, which MAML's
            meta-gradient ignores; only differs when second order).
        outer_objective: ``"final"`` (the surrogate of the policies adapted `inner_steps`
            times, as in MAML) or ``"all_steps"`` (its mean over the policies adapted 1, 2,
            ..., `inner_steps` times, each on the trajectories it sampled: MAML++'s
            multi-step loss, for a policy that is good after every step, not only the
            last; the same as ``"final"`` when ``inner_steps=1``).
        trajectories_per_task: int >= 1, ``K`` trajectories per task and step (20).
        outer_step: ``"ppo"`` (clipped surrogate, the compiled optimizer) or ``"trpo"``
            (natural gradient with a KL trust region; the optimizer is unused).
        discount: float in [0, 1], ``gamma`` of the returns (0.99).
        gae_lambda: float in [0, 1]; 1 gives returns minus the baseline (MAML).
        clip_ratio: float > 0, PPO's ``eps``.
        ppo_epochs: int >= 1, outer gradient steps per meta-iteration with PPO.
        max_kl: float > 0, TRPO's trust region (0.01).
        cg_iterations, cg_damping, line_search_steps, line_search_decay: TRPO settings.
        max_grad_norm: float > 0 or None, global-norm clipping of PPO's meta-gradient.
        name: model name.

    Raises:
        ValueError: on a bad argument.

    Example:
        >>> import keras
        >>> from keras_meta.rl import Navigation2DMAML, sample_navigation_tasks
        >>> from keras_meta.rl.learners import MAMLRL
        >>> maml = MAMLRL(Navigation2DMAML(max_steps=10), hidden_units=(16,),
        ...               trajectories_per_task=4)
        >>> maml.compile(keras.optimizers.Adam(1e-2))
        >>> _ = maml.fit(maml.dataset(meta_batch_size=3), steps_per_epoch=1, verbose=0)
        >>> scores = maml.evaluate_adaptation(sample_navigation_tasks(5, split="test"))
        >>> len(scores), len(scores[0].scores)
        (2, 5)

    References:
        Finn, Abbeel, Levine. Model-Agnostic Meta-Learning for Fast Adaptation of Deep
        Networks. ICML 2017.
        Rothfuss, Lee, Clavera, Asfour, Abbeel. ProMP: Proximal Meta-Policy Search.
        ICLR 2019 (the LVC objective).
    """

    def __init__(self, dynamics: tf_envs.TrialDynamics | Any, policy: keras.Model | None = None,
                 *, hidden_units: Sequence[int] = (100, 100), initial_std: float = 1.0,
                 update_rule: update_rules.UpdateRule | float | dict = 0.1,
                 inner_steps: int = 1, first_order: bool = False,
                 inner_objective: str = "policy_gradient", outer_objective: str = "final",
                 trajectories_per_task: int = 20, outer_step: str = "ppo",
                 discount: float = 0.99, gae_lambda: float = 1.0, clip_ratio: float = 0.2,
                 ppo_epochs: int = 5, max_kl: float = 0.01, cg_iterations: int = 10,
                 cg_damping: float = 1e-5, line_search_steps: int = 15,
                 line_search_decay: float = 0.5, max_grad_norm: float | None = None,
                 name: str = "maml_rl", **kwargs) -> None:
        names = ["return_before", "return_after", "entropy_before", "entropy_after",
                 "outer_loss", "kl"]
        names.append("clip_fraction" if outer_step == "ppo" else "accepted")
        super().__init__(names, name=name, **kwargs)
        self.dynamics = tf_envs.get(dynamics)
        if outer_step not in OUTER_STEPS:
            raise ValueError(f"`outer_step` must be one of {OUTER_STEPS}. "
                             f"Received: outer_step={outer_step!r}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.initial_std = _check_float("initial_std", initial_std, 0.0, strict=True)
        self._custom_policy = policy is not None
        if policy is None:
            policy = mlp_policy(self.dynamics, self.hidden_units, initial_std=self.initial_std)
        if not isinstance(policy, keras.Model) or not policy.built:
            raise ValueError("`policy` must be a built keras.Model (give it a keras.Input). "
                             f"Received: policy of type {type(policy).__name__}")
        size = self.dynamics.distribution.param_size
        out = policy(tf.zeros([1, self.dynamics.observation_size]))
        if tuple(out.shape) != (1, size):
            raise ValueError(
                f"`policy` must map [B, {self.dynamics.observation_size}] observations to "
                f"[B, {size}] distribution parameters. Received: output shape "
                f"{tuple(out.shape)} for a batch of 1")
        self.policy = policy
        self.functional = FunctionalModel(policy)
        self.update_rule = update_rules.get(update_rule)
        self.update_rule.build([tuple(v.shape) for v in policy.trainable_variables])
        self.inner_steps = sampler.check_int("inner_steps", inner_steps, 1)
        self.first_order = bool(first_order)
        if inner_objective not in INNER_OBJECTIVES:
            raise ValueError(f"`inner_objective` must be one of {INNER_OBJECTIVES}. "
                             f"Received: inner_objective={inner_objective!r}")
        self.inner_objective = inner_objective
        if outer_objective not in OUTER_OBJECTIVES:
            raise ValueError(f"`outer_objective` must be one of {OUTER_OBJECTIVES}. "
                             f"Received: outer_objective={outer_objective!r}")
        self.outer_objective = outer_objective
        self.trajectories_per_task = sampler.check_int("trajectories_per_task",
                                                       trajectories_per_task, 1)
        self.outer_step = outer_step
        if outer_step == "trpo" and self.update_rule.trainable_weights:
            raise ValueError("`outer_step='trpo'` trains the policy only: use an update rule "
                             "without trainable weights (e.g. a float step size), or "
                             f"outer_step='ppo'. Received: {type(self.update_rule).__name__}")
        self.discount = _check_float("discount", discount, 0.0, 1.0)
        self.gae_lambda = _check_float("gae_lambda", gae_lambda, 0.0, 1.0)
        self.clip_ratio = _check_float("clip_ratio", clip_ratio, 0.0, strict=True)
        self.ppo_epochs = sampler.check_int("ppo_epochs", ppo_epochs, 1)
        self.max_kl = _check_float("max_kl", max_kl, 0.0, strict=True)
        self.cg_iterations = sampler.check_int("cg_iterations", cg_iterations, 1)
        self.cg_damping = _check_float("cg_damping", cg_damping, 0.0)
        self.line_search_steps = sampler.check_int("line_search_steps", line_search_steps, 1)
        self.line_search_decay = _check_float("line_search_decay", line_search_decay, 0.0, 1.0,
                                              strict=True)
        self.max_grad_norm = None if max_grad_norm is None else _check_float(
            "max_grad_norm", max_grad_norm, 0.0, strict=True)
        self._compiled: dict[Any, Any] = {}
        self.built = True

    # ------------------------------------------------------------------ data
    def dataset(self, meta_batch_size: int = 20, *, seed: int = 0, split: str = "train",
                start: int | Callable[[], int] = 0) -> tf.data.Dataset:
        """`meta_batch_size` tasks per element, each on `trajectories_per_task` rows (from
        element `start`: an int or a callable read when iteration begins)."""
        meta_batch_size = sampler.check_int("meta_batch_size", meta_batch_size, 1)
        k = self.trajectories_per_task
        return trial_dataset(self.dynamics, meta_batch_size * k, seed=seed, split=split,
                             repeat_tasks=k, start=start)

    # ------------------------------------------------------------------ the policy
    def apply_policy(self, params: Sequence[tf.Tensor], observations: tf.Tensor) -> tf.Tensor:
        """Distribution parameters ``[B, P]`` of the policy with weight values `params`."""
        out = self.functional(list(params), self.functional.non_trainable_values(),
                              observations, False)[0]
        return tf.cast(out, tf.float32)

    def _apply_per_task(self, stacked: Sequence[tf.Tensor], observations: tf.Tensor) -> tf.Tensor:
        """Rows grouped by task (``K`` each), task ``i`` acting with ``stacked[j][i]``."""
        k = self.trajectories_per_task
        grouped = tf.reshape(observations, [-1, k, observations.shape[-1]])
        params = tf.vectorized_map(lambda e: self.apply_policy(e[0], e[1]),
                                   (list(stacked), grouped))
        return tf.reshape(params, [-1, params.shape[-1]])

    def _sample(self, tasks, seed, stacked=None) -> Rollout:
        theta = self.functional.trainable_values()

        def policy_fn(observation, carry):
            obs = observation["observation"]
            if stacked is None:
                params = self.apply_policy(theta, obs)
            else:
                params = self._apply_per_task(stacked, obs)
            return params, tf.zeros(tf.shape(params)[:1]), carry

        batch = tf.shape(next(iter(tasks.values())))[0]
        return rollout(self.dynamics, policy_fn, tasks, tf.zeros(tf.stack([batch, 0])), seed)

    # ------------------------------------------------------------------ advantages
    def task_data(self, trials: Rollout) -> TaskData:
        """Groups a rollout by task and computes its per-task normalised advantages.

        Advantages: GAE (`gae_lambda`; 1 gives discounted returns minus the baseline) on
        rllab's linear feature baseline fitted to each task's trajectories; each inner
        episode is an episode (discount 0 after its last step).
        """
        k = self.trajectories_per_task
        length, horizon = self.dynamics.trial_length, self.dynamics.horizon
        steps = tf.range(length)
        episode_end = tf.cast(tf.equal((steps + 1) % horizon, 0), tf.float32)
        discounts = tf.broadcast_to((self.discount * (1.0 - episode_end))[:, None],
                                    tf.shape(trials.rewards))
        returns = discounted_returns(trials.rewards, discounts)

        def group(x):  # [T, M*K, ...] -> [T, M, K, ...], keeping the static sizes
            return tf.reshape(x, [length, -1, k] + x.shape[2:].as_list())

        def task_major(x):  # [T, M, K, ...] -> [M, T, K, ...]
            return tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))

        obs = group(trials.observations["observation"])
        mask = group(trials.active)
        baseline = linear_feature_baseline(obs, group(returns), mask,
                                           time_steps=steps % horizon)
        advantages, _ = generalized_advantages(
            trials.rewards, tf.reshape(baseline, tf.shape(trials.rewards)), discounts,
            self.gae_lambda)
        advantages = normalize(group(advantages), mask, axis=(0, 2))
        return TaskData(task_major(obs), task_major(group(trials.actions)),
                        task_major(group(trials.params)), task_major(group(trials.log_probs)),
                        task_major(advantages), task_major(mask))

    # ------------------------------------------------------------------ inner loop
    def inner_loss(self, params: Sequence[tf.Tensor], data: TaskData) -> tf.Tensor:
        """The inner loss of one task's trajectories (``data`` without task axis).

        ``-mean(log pi * A)`` (``inner_objective="policy_gradient"``) or
        ``-mean(exp(log pi - stop_grad(log pi)) * A)`` (``"lvc"``): equal values and
        gradients; the Hessian of the latter adds ``grad log pi grad log pi^T A``, the
        curvature that comes from sampling the trajectories with the policy.
        """
        obs = tf.reshape(data.observations, [-1, data.observations.shape[-1]])
        dist_params = self.apply_policy(params, obs)
        actions = tf.reshape(data.actions, [-1] + list(self.dynamics.distribution.action_shape))
        log_probs = self.dynamics.distribution.log_prob(dist_params, actions)
        terms = (log_probs if self.inner_objective == "policy_gradient"
                 else tf.exp(log_probs - tf.stop_gradient(log_probs)))
        return -masked_mean(terms * tf.reshape(data.advantages, [-1]),
                            tf.reshape(data.mask, [-1]))

    def adapt_task(self, params: Sequence[tf.Tensor], inner: Sequence[TaskData]
                   ) -> list[tf.Tensor]:
        """Adapted weights of one task: one inner step per element of `inner`.

        Differentiable in `params` (second order unless `first_order`).
        """
        return self.adaptation_path(params, inner)[-1]

    def adaptation_path(self, params: Sequence[tf.Tensor], inner: Sequence[TaskData]
                        ) -> list[list[tf.Tensor]]:
        """The weights of one task before and after each inner step (``len(inner) + 1``)."""
        params = list(params)
        state = self.update_rule.init(params)
        path = [params]
        for step, data in enumerate(inner):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = self.inner_loss(params, data)
            grads = tape.gradient(loss, params)
            grads = [tf.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
            if self.first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            params, state = self.update_rule.apply(grads, state, params, step)
            path.append(params)
        return path

    def _map_tasks(self, fn, elems, signature):
        parallel = None if tf.executing_eagerly() else tf.nest.flatten(elems)[0].shape[0] or 10
        return tf.map_fn(fn, elems, fn_output_signature=signature, parallel_iterations=parallel)

    def _adapt_all(self, params, inner: Sequence[TaskData]) -> list[tf.Tensor]:
        signature = [tf.TensorSpec(p.shape, p.dtype) for p in params]
        return self._map_tasks(lambda e: self.adapt_task(params, e[0]), (list(inner),),
                               signature)

    def sample_and_adapt(self, tasks: dict[str, tf.Tensor], seed: tf.Tensor, steps: int
                         ) -> tuple[list[Rollout], list[TaskData], list[tf.Tensor] | None]:
        """Samples and adapts `steps` times (fresh trajectories each step), in the graph.

        Returns:
            ``(rollouts, task_data, adapted)``: ``steps + 1`` rollouts (before adaptation,
            after each step), their `TaskData`, and the per-task adapted weights stacked
            on a task axis (None when ``steps == 0``).
        """
        seed = tf.cast(seed, tf.int32)
        rollouts, data, stacked = [], [], None
        theta = self.functional.trainable_values()
        for step in range(steps + 1):
            trials = self._sample(tasks, tf.random.experimental.stateless_fold_in(seed, step),
                                  stacked)
            rollouts.append(trials)
            data.append(self.task_data(trials))
            if step < steps:
                stacked = [tf.stop_gradient(p) for p in self._adapt_all(theta, data)]
        return rollouts, data, stacked

    # ------------------------------------------------------------------ outer loop
    def outer_terms(self, params: Sequence[tf.Tensor], inner: Sequence[TaskData],
                    outer: TaskData) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(loss, kl, clip_fraction)`` of the adapted policies on their own trajectories.

        The loss is PPO's clipped surrogate (``outer_step="ppo"``) or the importance-
        weighted surrogate (TRPO), averaged over tasks; ``kl`` is the mean
        ``KL(behaviour || adapted)``; all differentiable in `params` through the inner
        steps. With ``outer_objective="all_steps"`` each is the mean over the policies
        adapted 1, ..., `inner_steps` times, scored on ``inner[1:]`` and `outer`.
        """
        dist = self.dynamics.distribution
        params = [tf.convert_to_tensor(p) for p in params]

        def surrogate(adapted, data):
            obs = tf.reshape(data.observations, [-1, data.observations.shape[-1]])
            new = self.apply_policy(adapted, obs)
            actions = tf.reshape(data.actions, [-1] + list(dist.action_shape))
            log_probs = dist.log_prob(new, actions)
            mask = tf.reshape(data.mask, [-1])
            old_log_probs = tf.reshape(data.log_probs, [-1])
            advantages = tf.reshape(data.advantages, [-1])
            if self.outer_step == "ppo":
                terms = clipped_surrogate(log_probs, old_log_probs, advantages, self.clip_ratio,
                                          mask)
                loss, clip_fraction = terms.loss, terms.clip_fraction
            else:
                ratio = tf.exp(log_probs - old_log_probs)
                loss, clip_fraction = -masked_mean(ratio * advantages, mask), 0.0
            old = tf.reshape(data.params, [-1, data.params.shape[-1]])
            kl = masked_mean(dist.kl(old, new), mask)
            return tf.stack([loss, kl, tf.cast(clip_fraction, tf.float32)])

        def one_task(e):
            inner_data, data = e
            path = self.adaptation_path(params, inner_data)
            if self.outer_objective == "final":
                scored = [(path[-1], data)]
            else:
                scored = list(zip(path[1:], list(inner_data[1:]) + [data]))
            terms = tf.reduce_mean(tf.stack([surrogate(p, d) for p, d in scored]), axis=0)
            return terms[0], terms[1], terms[2]

        spec = tf.TensorSpec([], tf.float32)
        losses, kls, clips = self._map_tasks(one_task, (list(inner), outer), (spec, spec, spec))
        return tf.reduce_mean(losses), tf.reduce_mean(kls), tf.reduce_mean(clips)

    def train_step(self, data: dict[str, Any]) -> dict[str, tf.Tensor]:
        tasks, seed = data["tasks"], tf.cast(data["seed"], tf.int32)
        rollouts, task_data, _ = self.sample_and_adapt(tasks, seed, self.inner_steps)
        inner, outer = task_data[:-1], task_data[-1]
        variables = self.trainable_variables
        if self.outer_step == "ppo":
            if not self.optimizer.built:
                self.optimizer.build(variables)

            def body(i, totals):
                with tf.GradientTape() as tape:
                    terms = self.outer_terms(self.policy.trainable_variables, inner, outer)
                grads = tape.gradient(terms[0], variables)
                grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
                if self.max_grad_norm is not None:
                    grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
                self.optimizer.apply(grads, variables)
                return i + 1, tuple(t + x for t, x in zip(totals, terms))

            _, totals = tf.while_loop(lambda i, _: i < self.ppo_epochs, body,
                                      (tf.constant(0), (tf.constant(0.0),) * 3),
                                      maximum_iterations=self.ppo_epochs)
            loss, kl, clip_fraction = (t / self.ppo_epochs for t in totals)
            self._trackers["clip_fraction"].update_state(clip_fraction)
        else:
            policy_variables = self.policy.trainable_variables
            step = trust_region_step(
                lambda p: self.outer_terms(p, inner, outer)[:2],
                [tf.convert_to_tensor(v) for v in policy_variables], max_kl=self.max_kl,
                cg_iterations=self.cg_iterations, cg_damping=self.cg_damping,
                line_search_steps=self.line_search_steps,
                line_search_decay=self.line_search_decay)
            for v, p in zip(policy_variables, step.params):
                v.assign(p)
            loss, kl = step.loss, step.kl
            self._trackers["accepted"].update_state(tf.cast(step.accepted, tf.float32))
        self._track_rollouts(task_data, rollouts)
        self._trackers["outer_loss"].update_state(loss)
        self._trackers["kl"].update_state(kl)
        rows = tf.shape(rollouts[0].rewards)[1]
        self.env_steps.assign_add(
            tf.cast(rows * self.dynamics.trial_length * len(rollouts), "int64"))
        self.meta_iterations.assign_add(1)
        logs = {n: t.result() for n, t in self._trackers.items()}
        logs["env_steps"] = self.env_steps.value
        return logs

    @property
    def updates_per_iteration(self) -> int:
        """Optimizer updates per meta-iteration: `ppo_epochs` with PPO, 0 with TRPO (whose
        natural-gradient step does not use the optimizer)."""
        return self.ppo_epochs if self.outer_step == "ppo" else 0

    def _track_rollouts(self, task_data: Sequence[TaskData], rollouts: Sequence[Rollout]) -> None:
        dist = self.dynamics.distribution
        for when, data, trials in (("before", task_data[0], rollouts[0]),
                                   ("after", task_data[-1], rollouts[-1])):
            self._trackers[f"return_{when}"].update_state(trials.returns())
            entropy = masked_mean(dist.entropy(data.params), data.mask)
            self._trackers[f"entropy_{when}"].update_state(entropy)

    def test_step(self, data: dict[str, Any]) -> dict[str, tf.Tensor]:
        rollouts, task_data, _ = self.sample_and_adapt(data["tasks"], data["seed"],
                                                       self.inner_steps)
        self._track_rollouts(task_data, rollouts)
        names = ("return_before", "return_after", "entropy_before", "entropy_after")
        return {n: self._trackers[n].result() for n in names}

    def call(self, observations: tf.Tensor) -> tf.Tensor:
        """The meta-policy's distribution parameters ``[B, P]`` (before adaptation)."""
        return self.policy(observations)

    # ------------------------------------------------------------------ meta-test
    def _function(self, steps: int):
        if steps not in self._compiled:
            def run(tasks, seed):
                rollouts, _, stacked = self.sample_and_adapt(tasks, seed, steps)
                k = self.trajectories_per_task
                returns = [tf.reduce_mean(tf.reshape(r.returns(), [-1, k]), axis=1)
                           for r in rollouts]
                return tf.stack(returns), stacked if stacked is not None else []
            self._compiled[steps] = tf.function(run)
        return self._compiled[steps]

    def evaluate_adaptation(self, tasks: Any, *, steps: int | None = None, seed: int = 0,
                            batch_size: int | None = None) -> list[Score]:
        """Meta-test: returns before adaptation and after each step, on given tasks.

        For each task, `trajectories_per_task` trajectories are sampled with the
        meta-policy, the policy is adapted on them, and so on for `steps` steps; the score
        of a task after ``s`` steps is the mean return of the trajectories sampled after
        ``s`` steps (the MAML paper's protocol). Runs in the graph with the family's
        `TrialDynamics` (for 2D navigation, deterministic and identical to the numpy
        environment).

        Args:
            tasks: the family's tasks tuple (e.g. 40 held-out goals of
                `sample_navigation_tasks(40, split="test")`).
            steps: int >= 0, adaptation steps (default `inner_steps`).
            seed: non-negative int, seeds the sampling.
            batch_size: int >= 1, tasks adapted at once (memory grows with it); the
                tasks are scored in consecutive blocks of this many, each block sampled
                with `seed`, so a task's score depends on its block. None: all at once.

        Returns:
            ``steps + 1`` `Score`s (0 steps, 1 step, ...), each over the tasks.

        Raises:
            ValueError: on bad tasks, steps, seed or batch size.
        """
        if batch_size is None:
            returns, _ = self._adapt(tasks, steps, seed)
            return [Score.from_scores(r) for r in returns]
        block = sampler.check_int("batch_size", batch_size, 1)
        self.dynamics.task_arrays(tasks)  # a bad tasks tuple fails here, before slicing
        count = sampler.num_tasks(tasks)
        parts = [self._adapt(sampler.take_tasks(tasks, slice(start, start + block)), steps,
                             seed)[0] for start in range(0, count, block)]
        return [Score.from_scores(r) for r in np.concatenate(parts, axis=1)]

    def adapt(self, tasks: Any, *, steps: int | None = None, seed: int = 0) -> list[np.ndarray]:
        """Adapted policy weights of each task (stacked on a leading task axis).

        Args:
            tasks: the family's tasks tuple.
            steps: int >= 1, adaptation steps (default `inner_steps`).
            seed: non-negative int, seeds the sampling of the adaptation trajectories.

        Returns:
            One array per policy weight, shaped ``[num_tasks, *weight.shape]``, for
            `MAMLRLAgent`.

        Raises:
            ValueError: on bad tasks, steps or seed.
        """
        steps = self.inner_steps if steps is None else sampler.check_int("steps", steps, 1)
        _, stacked = self._adapt(tasks, steps, seed)
        return stacked

    def _adapt(self, tasks, steps, seed):
        steps = self.inner_steps if steps is None else sampler.check_int("steps", steps, 0)
        seed = sampler.check_seed(seed)
        batch = task_batch(self.dynamics, tasks, self.trajectories_per_task)
        stream_seed = sampler.noise_generator(seed, "test", tag=EVALUATION_SEED_TAG).integers(
            0, 2**31 - 1, size=2).astype(np.int32)
        returns, stacked = self._function(steps)(batch, tf.constant(stream_seed))
        return returns.numpy().astype(np.float64), [s.numpy() for s in stacked]

    def get_config(self) -> dict:
        if self._custom_policy:
            raise NotImplementedError("MAMLRL.get_config covers the default `mlp_policy` only; "
                                      "a custom `policy` is not serialised.")
        rule = self.update_rule
        rule_config = rule.get_config().get("learning_rate")  # SGD: a float or a list
        if rule_config is None:
            rule_config = {"name": "learned_step_sizes",
                           "initial_learning_rate": rule.get_config()["initial_learning_rate"]}
        return {"dynamics": self.dynamics.get_config(), "hidden_units": list(self.hidden_units),
                "initial_std": self.initial_std, "update_rule": rule_config,
                "inner_steps": self.inner_steps, "first_order": self.first_order,
                "outer_objective": self.outer_objective,
                "inner_objective": self.inner_objective,
                "trajectories_per_task": self.trajectories_per_task,
                "outer_step": self.outer_step, "discount": self.discount,
                "gae_lambda": self.gae_lambda, "clip_ratio": self.clip_ratio,
                "ppo_epochs": self.ppo_epochs, "max_kl": self.max_kl,
                "cg_iterations": self.cg_iterations, "cg_damping": self.cg_damping,
                "line_search_steps": self.line_search_steps,
                "line_search_decay": self.line_search_decay,
                "max_grad_norm": self.max_grad_norm, "name": self.name}


class MAMLRLAgent:
    """Adapted MAML-RL policies as a `keras_meta.rl.TrialAgent` (one per batch row).

    Row ``i`` of every trial acts with the ``i``-th adapted weights of `MAMLRL.adapt`
    (or all rows with the meta-policy when `params` is None), so evaluate it with an
    environment whose ``batch_size`` equals the number of tasks, on those tasks in the
    same order.

    Args:
        learner: the `MAMLRL` learner.
        params: the stacked adapted weights from `MAMLRL.adapt`, or None.
        deterministic: act with the distribution's mode (the mean velocity).

    Raises:
        ValueError: in `begin_trial`, if the trial has a different number of rows than
            `params` has tasks.
    """

    def __init__(self, learner: MAMLRL, params: Sequence[np.ndarray] | None = None, *,
                 deterministic: bool = False) -> None:
        self.learner = learner
        self.params = None if params is None else [tf.constant(p) for p in params]
        self.deterministic = bool(deterministic)
        self._rng = np.random.default_rng(0)

        def act(observations):
            if self.params is None:
                return learner.apply_policy(learner.functional.trainable_values(), observations)
            return tf.vectorized_map(lambda e: learner.apply_policy(e[0], e[1][None])[0],
                                     (self.params, observations))

        self._act = tf.function(act, reduce_retracing=True)

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        rows = sampler.num_tasks(tasks)
        if self.params is not None and rows != self.params[0].shape[0]:
            raise ValueError(
                f"The trial has {rows} rows but `params` holds {self.params[0].shape[0]} "
                "adapted policies: evaluate with env.batch_size equal to the number of tasks.")
        self._rng = rng

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        obs = tf.constant(time_step.observation["observation"], tf.float32)
        params = self._act(obs).numpy().astype(np.float64)
        return self.learner.dynamics.distribution.sample_numpy(params, self._rng,
                                                               self.deterministic)
