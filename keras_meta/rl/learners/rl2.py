"""RL^2: a recurrent policy whose hidden state, kept across a trial's episodes, learns.

The policy is a GRU fed the observation, the previous action (one-hot for discrete
actions), the previous reward and the ``done`` flag; its hidden state is reset only at the
start of a trial, so what it learns about the task in one episode carries to the next.
The outer loop trains the GRU's weights with PPO and GAE on whole trials, treating the
trial as one episode (the objective is the trial's total reward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from keras_meta._validation import check_float as _check_float
from keras_meta.rl.envs import sampler
from keras_meta.rl.learners import distributions, tf_envs
from keras_meta.rl.learners.base import RLLearner
from keras_meta.rl.learners.ppo import clipped_surrogate
from keras_meta.rl.learners.returns import generalized_advantages, masked_mean, normalize
from keras_meta.rl.learners.rollout import Rollout, rollout, trial_dataset
from keras_meta.rl.learners.trpo import trust_region_step

#: The observation keys an RL^2 policy is fed, in input order.
POLICY_INPUTS = ("observation", "prev_action", "prev_reward", "done")
#: The key of the task features a task-aware critic is fed beside them (`RL2Policy.unroll`).
TASK_KEY = "task"

#: Where the critic's value comes from: a head on the policy's GRU, or a GRU of its own.
CRITICS = ("shared", "separate")

#: How the policy is updated from a batch of trials.
OUTER_STEPS = ("ppo", "trpo")


@keras.saving.register_keras_serializable(package="keras_meta")
class RL2Policy(keras.Model):
    """A GRU actor-critic over trials: ``step(...) -> (distribution params, new state)``.

    Args:
        observation_size: int >= 1, length of the task observation.
        prev_action_size: int >= 1, length of the ``prev_action`` vector.
        distribution: the action distribution (`distributions.Categorical` or
            `distributions.DiagonalGaussian`) or its config dict.
        hidden_units: int >= 1, GRU units.
        initial_std: float > 0, initial standard deviation of a Gaussian policy.
        critic: "shared" (the value is a head on the policy's GRU) or "separate" (a GRU of
            the same size of its own, so that fitting the values does not move the policy;
            it is not run while acting, and `unroll` starts it from zeros).
        time_aware_critic: feed a separate critic's GRU the fraction of the trial still to
            come, ``1 - t / T``, on which the value of a finite trial depends (Pardo et al.
            2018, "Time Limits in Reinforcement Learning"); the policy's inputs stay the
            protocol's. Needs ``critic="separate"``.
        critic_task_size: int >= 0; if > 0, a separate critic's GRU is also fed this many
            task features (``observations["task"]`` in `unroll` and `critic_values`): an
            asymmetric actor-critic, see `RL2`'s ``task_aware_critic``. Needs
            ``critic="separate"``.
        encoder_units: widths of ReLU layers between the step inputs and the GRU (empty:
            the GRU reads the inputs directly, as in the RL^2 paper). They let the GRU
            read products of inputs, e.g. "arm i paid" = ``prev_action[i] * prev_reward``,
            which its gates can form only indirectly. A separate critic gets an encoder of
            its own, of the same widths.
        previous_observation: also feed the previous step's observation, so that each
            input holds a whole transition ``(s, a, r, s')`` (the context of PEARL and
            VariBAD) and an encoder can form the ``(state, action)`` conjunction that a
            tabular MDP's rewards and transitions are indexed by, instead of the GRU
            recalling the state from its memory. The observation is carried in the
            recurrent state: ``state_size = hidden_units + observation_size``.
        task_prediction_size: int >= 0; if > 0, a linear head on the policy's GRU predicts
            this many task features at every step (``unroll(...,
            return_task_predictions=True)``), for `RL2`'s ``task_inference_coefficient``.
            Not run while acting.

    Raises:
        ValueError: on a bad argument.

    Example:
        >>> from keras_meta.rl.learners import RL2Policy, distributions
        >>> policy = RL2Policy(1, 5, distributions.Categorical(5), hidden_units=8)
        >>> state = policy.initial_state(3)
        >>> logits, state = policy.step(*policy.first_inputs(3), state)
        >>> tuple(logits.shape), tuple(state.shape)
        ((3, 5), (3, 8))
    """

    def __init__(self, observation_size: int, prev_action_size: int,
                 distribution: distributions.Distribution | dict, hidden_units: int = 64,
                 initial_std: float = 1.0, critic: str = "shared",
                 time_aware_critic: bool = False, critic_task_size: int = 0,
                 encoder_units: tuple[int, ...] | list[int] = (),
                 previous_observation: bool = False, task_prediction_size: int = 0,
                 name: str = "rl2_policy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if critic not in CRITICS:
            raise ValueError(f"`critic` must be one of {CRITICS}. Received: critic={critic!r}")
        if time_aware_critic and critic != "separate":
            raise ValueError("`time_aware_critic=True` needs critic='separate' (a shared critic "
                             f"reads the policy's GRU, whose inputs are fixed). Received: "
                             f"critic={critic!r}")
        self.time_aware_critic = bool(time_aware_critic)
        self.critic_task_size = sampler.check_int("critic_task_size", critic_task_size, 0)
        if self.critic_task_size and critic != "separate":
            raise ValueError("`critic_task_size` > 0 needs critic='separate' (a shared critic "
                             f"reads the policy's GRU, whose inputs are fixed). Received: "
                             f"critic={critic!r}")
        self.observation_size = sampler.check_int("observation_size", observation_size, 1)
        self.prev_action_size = sampler.check_int("prev_action_size", prev_action_size, 1)
        self.hidden_units = sampler.check_int("hidden_units", hidden_units, 1)
        self.distribution = distributions.get(distribution)
        self.initial_std = float(initial_std)
        self.critic = critic
        if isinstance(encoder_units, (int, str)) or not hasattr(encoder_units, "__iter__"):
            raise ValueError("`encoder_units` must be a list of layer widths (ints >= 1). "
                             f"Received: encoder_units={encoder_units!r}")
        self.encoder_units = tuple(sampler.check_int("encoder_units", u, 1)
                                   for u in encoder_units)
        self.previous_observation = bool(previous_observation)
        self.task_prediction_size = sampler.check_int("task_prediction_size",
                                                      task_prediction_size, 0)
        self.encoder = self._encoder("encoder")
        self.cell = keras.layers.GRUCell(self.hidden_units, name="gru")
        if self.distribution.discrete:
            self.head = self.distribution.head()
        else:
            self.head = self.distribution.head(initial_std=self.initial_std)
        self.value_head = keras.layers.Dense(1, name="value")
        self.task_head = (keras.layers.Dense(self.task_prediction_size, name="task_prediction")
                          if self.task_prediction_size else None)
        self.critic_cell = (keras.layers.GRUCell(self.hidden_units, name="critic_gru")
                            if critic == "separate" else None)
        self.critic_encoder = self._encoder("critic_encoder") if critic == "separate" else []
        first = {k: v[None] for k, v in zip(POLICY_INPUTS, self.first_inputs(1))}
        if self.critic_task_size:
            first[TASK_KEY] = tf.zeros([1, 1, self.critic_task_size])
        self.unroll(first, return_task_predictions=bool(self.task_prediction_size))
        self.built = True  # every weight exists now (saving and export check this flag)

    def _encoder(self, prefix: str) -> list[keras.layers.Dense]:
        return [keras.layers.Dense(units, activation="relu", name=f"{prefix}_{i}")
                for i, units in enumerate(self.encoder_units)]

    @staticmethod
    def _encode(layers: list[keras.layers.Dense], x: tf.Tensor) -> tf.Tensor:
        for layer in layers:
            x = layer(x)
        return x

    @property
    def actor_variables(self) -> list:
        """The trainable weights that shape the actions: encoder, GRU and action head."""
        return ([w for layer in self.encoder for w in layer.trainable_variables]
                + self.cell.trainable_variables + self.head.trainable_variables)

    @property
    def critic_variables(self) -> list:
        """The trainable weights only the value uses: its head (and a separate encoder and
        GRU)."""
        own = [] if self.critic_cell is None else (
            [w for layer in self.critic_encoder for w in layer.trainable_variables]
            + self.critic_cell.trainable_variables)
        return own + self.value_head.trainable_variables

    @property
    def input_size(self) -> int:
        """Length of the step input ``concat(observation, prev_action, prev_reward, done)``
        (and the previous observation, with ``previous_observation``)."""
        return (self.observation_size * (2 if self.previous_observation else 1)
                + self.prev_action_size + 2)

    @property
    def state_size(self) -> int:
        """Length of the recurrent state: the GRU's units (and the last observation, with
        ``previous_observation``)."""
        return self.hidden_units + (self.observation_size if self.previous_observation else 0)

    def initial_state(self, batch_size: int | tf.Tensor) -> tf.Tensor:
        """The recurrent state at the start of a trial: zeros ``[batch_size, state_size]``."""
        return tf.zeros(tf.stack([batch_size, self.state_size]), self.compute_dtype)

    def first_inputs(self, batch_size: int) -> tuple[tf.Tensor, ...]:
        """The step inputs of a trial's first step (constant observation 0): for examples."""
        return (tf.zeros([batch_size, self.observation_size]),
                tf.zeros([batch_size, self.prev_action_size]), tf.zeros([batch_size, 1]),
                tf.zeros([batch_size, 1]))

    def _inputs(self, observation, prev_action, prev_reward, done,
                last_observation=None) -> tf.Tensor:
        parts = (observation, prev_action, prev_reward, done)
        if self.previous_observation:
            parts += (last_observation,)
        return tf.concat([tf.cast(v, self.compute_dtype) for v in parts], axis=-1)

    def _sequence_inputs(self, observations: dict[str, tf.Tensor],
                         state: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """Time-major step inputs ``[T, B, input_size]`` and the GRU's initial state."""
        parts = [observations[k] for k in POLICY_INPUTS]
        if state is None:
            state = self.initial_state(tf.shape(parts[0])[1])
        if self.previous_observation:
            last = tf.cast(state[:, self.hidden_units :], parts[0].dtype)
            parts.append(tf.concat([last[None], parts[0][:-1]], axis=0))
        return self._inputs(*parts), state[:, : self.hidden_units]

    def step_with_value(self, observation, prev_action, prev_reward, done, state):
        """One step: ``(distribution params, value, new state)``; shapes ``[B, ...]``.

        Shared critic only: a separate critic keeps a state of its own (use `unroll`).
        """
        if self.critic_cell is not None:
            raise ValueError("`step_with_value` needs critic='shared'; with a separate critic "
                             "use `step` to act and `unroll` for the values.")
        params, new_state = self.step(observation, prev_action, prev_reward, done, state)
        return params, self.value_head(new_state[:, : self.hidden_units])[:, 0], new_state

    def step(self, observation, prev_action, prev_reward, done, state):
        """One step of the policy, for acting and export.

        Args:
            observation: float ``[B, observation_size]``.
            prev_action: float ``[B, prev_action_size]`` (one-hot for discrete actions).
            prev_reward: float ``[B, 1]``.
            done: float ``[B, 1]``, 1 if the previous step ended an inner episode.
            state: float ``[B, state_size]``, from `initial_state` or the previous step.

        Returns:
            ``(params, new_state)``: the distribution parameters (logits, or
            ``concat(mean, log_std)``) and the next recurrent state.
        """
        h = state[:, : self.hidden_units]
        x = self._inputs(observation, prev_action, prev_reward, done,
                         state[:, self.hidden_units :])
        h, _ = self.cell(self._encode(self.encoder, x), [h])
        if self.previous_observation:
            return self.head(h), tf.concat([h, tf.cast(observation, h.dtype)], axis=-1)
        return self.head(h), h

    def unroll(self, observations: dict[str, tf.Tensor], state: tf.Tensor | None = None, *,
               return_task_predictions: bool = False) -> tuple[tf.Tensor, ...]:
        """Runs the policy over time-major sequences (differentiable).

        Args:
            observations: dict with the `POLICY_INPUTS` keys, each ``[T, B, size]`` (and,
                for a task-aware critic, ``"task"``: ``[T, B, critic_task_size]``).
            state: initial recurrent state ``[B, state_size]`` of the policy; zeros by
                default (a separate critic always starts from zeros, and a time-aware one
                takes the sequence for a whole trial).
            return_task_predictions: also return the task head's predictions
                ``[T, B, task_prediction_size]`` (needs ``task_prediction_size > 0``).

        Returns:
            ``(params [T, B, P], values [T, B], final state [B, state_size])``, and the task
            predictions last with ``return_task_predictions``.
        """
        if return_task_predictions and self.task_head is None:
            raise ValueError("`return_task_predictions=True` needs a policy built with "
                             "task_prediction_size > 0.")
        x, h0 = self._sequence_inputs(observations, state)
        hidden = self._hidden(x, h0)
        critic_hidden = (hidden if self.critic_cell is None
                         else self._critic_hidden(x, observations))
        final = hidden[-1]
        if self.previous_observation:
            final = tf.concat([final, tf.cast(observations[POLICY_INPUTS[0]][-1], final.dtype)],
                              axis=-1)
        outputs = (self.head(hidden), self.value_head(critic_hidden)[..., 0], final)
        if return_task_predictions:
            outputs += (self.task_head(hidden),)
        return outputs

    def action_params(self, observations: dict[str, tf.Tensor]) -> tf.Tensor:
        """The actor alone over time-major trials from their start: params ``[T, B, P]``."""
        return self.head(self._hidden(*self._sequence_inputs(observations)))

    def critic_values(self, observations: dict[str, tf.Tensor]) -> tf.Tensor:
        """The values alone over time-major trials from their start: ``[T, B]`` (a separate
        critic runs only its own GRU)."""
        x, h0 = self._sequence_inputs(observations)
        if self.critic_cell is None:
            return self.value_head(self._hidden(x, h0))[..., 0]
        return self.value_head(self._critic_hidden(x, observations))[..., 0]

    def _hidden(self, x: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        x = self._encode(self.encoder, x)  # all steps at once, outside the scan
        return tf.scan(lambda h, x_t: self.cell(x_t, [h])[0], x, initializer=state)

    def _critic_hidden(self, x: tf.Tensor, observations: dict[str, tf.Tensor]) -> tf.Tensor:
        x = self._encode(self.critic_encoder, self._critic_inputs(x, observations))
        return tf.scan(lambda h, x_t: self.critic_cell(x_t, [h])[0], x,
                       initializer=tf.zeros(tf.stack([tf.shape(x)[1], self.hidden_units]),
                                            x.dtype))

    def _critic_inputs(self, x: tf.Tensor, observations: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = [x]
        if self.time_aware_critic:
            length = tf.shape(x)[0]
            to_come = 1.0 - tf.range(length, dtype=x.dtype) / tf.cast(length, x.dtype)
            parts.append(tf.broadcast_to(to_come[:, None, None],
                                         tf.concat([tf.shape(x)[:2], [1]], 0)))
        if self.critic_task_size:
            if TASK_KEY not in observations:
                raise ValueError(f"A task-aware critic needs observations[{TASK_KEY!r}], the "
                                 f"task features [T, B, {self.critic_task_size}].")
            parts.append(tf.cast(observations[TASK_KEY], x.dtype))
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def call(self, inputs: dict[str, Any]) -> tf.Tensor:
        """Distribution parameters ``[B, T, P]`` of batch-major trial sequences."""
        observations = {k: tf.transpose(inputs[k], [1, 0, 2]) for k in POLICY_INPUTS}
        return tf.transpose(self.unroll(observations)[0], [1, 0, 2])

    def get_config(self) -> dict:
        return {"observation_size": self.observation_size,
                "prev_action_size": self.prev_action_size,
                "distribution": self.distribution.get_config(),
                "hidden_units": self.hidden_units, "initial_std": self.initial_std,
                "critic": self.critic, "time_aware_critic": self.time_aware_critic,
                "critic_task_size": self.critic_task_size,
                "encoder_units": list(self.encoder_units),
                "previous_observation": self.previous_observation,
                "task_prediction_size": self.task_prediction_size, "name": self.name}


@keras.saving.register_keras_serializable(package="keras_meta")
class RL2(RLLearner):
    """RL^2 trained with PPO (or TRPO) and GAE on trials played inside the graph.

    ``fit`` takes the dataset of `RL2.dataset` (batches of training tasks from the
    family's seeded task stream, with a rollout seed each): each ``train_step`` plays one
    trial per task with the current policy fused with the family's `TrialDynamics` in one
    `tf.while_loop`, computes GAE advantages over the whole trial (one episode for the
    outer loop: discount `discount` at every step, also across inner episodes, and 0 after
    the last step), and runs `ppo_epochs` epochs of PPO on `num_minibatches` minibatches of
    whole trials (recomputing the GRU from the trial's start). With ``outer_step="trpo"``
    (the paper's outer step; needs a separate critic) the policy instead takes one
    natural-gradient step inside a KL trust region over the whole batch, and the compiled
    optimizer fits only the critic, on the same epochs of minibatches. ``evaluate`` on the
    same kind of dataset (e.g. the validation split) reports the mean trial return.

    For held-out scores comparable with the classical baselines, play the trained policy
    in the numpy environment with `RL2Agent` and `keras_meta.rl.evaluate`.

    Logs of ``fit``: ``trial_return`` (mean total reward of the batch's trials, sampled
    actions), the PPO diagnostics ``policy_loss``, ``value_loss``, ``entropy``,
    ``approx_kl``, ``clip_fraction`` (means over the epoch's updates; with TRPO
    ``policy_loss``, ``value_loss``, ``entropy`` of the behaviour policy, ``kl`` of the
    accepted step and ``accepted``, the fraction of iterations whose line search found a
    step), and ``env_steps`` (environment steps played since construction, also the
    `env_steps` variable).
    On k=5, n=10 bandits, ``discount=1.0, gae_lambda=0.3`` learned much faster than the
    defaults (see ``docs/results/rl2.md``); on 100-step trials (n=100 bandits, MDPs of 10
    episodes) that setting collapsed the policy, and ``discount=0.99, gae_lambda=0.95,
    reward_scale=0.1`` learned stably but slowly (``docs/results/rl2.md``,
    ``docs/results/rl2_mdps.md``).

    Args:
        dynamics: the task family: a `TrialDynamics`, one of the family environments
            (`BernoulliBanditRL2`, `TabularMDPRL2`, `Navigation2DMAML`, whose trial
            shape is copied) or a dynamics config dict.
        hidden_units: int >= 1, GRU units.
        encoder_units: widths of ReLU layers between the step inputs and the GRU (see
            `RL2Policy`); empty by default.
        previous_observation: also feed the previous step's observation (whole
            transitions as inputs, see `RL2Policy`).
        discount: float in [0, 1], ``gamma`` of the advantages.
        gae_lambda: float in [0, 1].
        clip_ratio: float > 0, PPO's ``eps``.
        ppo_epochs: int >= 1, passes over each batch of trials.
        num_minibatches: int >= 1, minibatches of trials per pass (must not exceed the
            batch size; trials beyond a multiple of it are left out of the updates).
        entropy_coefficient: float >= 0, weight of the entropy bonus (at the start, if
            `entropy_decay_iterations` is set).
        entropy_decay_iterations: int >= 1 or None: decay the entropy weight linearly from
            `entropy_coefficient` to `final_entropy_coefficient` over this many PPO
            iterations (``train_step`` calls, counted by the optimizer), constant after.
        final_entropy_coefficient: float >= 0, the entropy weight at the end of the decay.
        reward_scale: float > 0, factor on the rewards for the advantages and the critic
            (whose targets are then in scaled units); keeps the critic's squared error from
            swamping the policy gradient under global-norm clipping when trial returns are
            large (n=100 bandits, MDP trials). Logged returns are unscaled.
        value_coefficient: float >= 0, weight of the critic's squared error.
        max_grad_norm: float > 0 or None, global-norm gradient clipping.
        initial_std: float > 0, initial standard deviation of a Gaussian policy.
        critic: "shared" (a value head on the policy's GRU) or "separate" (a GRU of its own,
            run over the collected trials after each rollout, so that the critic's squared
            error does not move the policy).
        time_aware_critic: feed the separate critic the fraction of the trial still to
            come (see `RL2Policy`); needs ``critic="separate"``.
        task_aware_critic: also feed the separate critic the parameters of the trial's
            task (`TrialDynamics.task_features`: a bandit's arm probabilities, an MDP's
            rewards and transitions, a goal), which the environment knows at training time
            and the policy never sees (an asymmetric actor-critic, Pinto et al. 2018). The
            critic still reads the trial's history through its own GRU, so its value is a
            function of history and task, a baseline that leaves the policy gradient
            unbiased, and it no longer has to infer the task to predict the return. Needs
            ``critic="separate"``; training only (acting and export use the policy alone).
        expected_rewards: compute the advantages and the critic's targets from each
            step's expected reward (`TrialDynamics.expected_reward`: a bandit arm's success
            probability, an MDP's mean reward) instead of the sampled one. The policy still
            sees the sampled rewards, and the scores count them. Since the expected reward
            of step t is the mean of its sampled reward given everything up to its action,
            the policy gradient stays unbiased for the same objective, with the rewards'
            own noise taken out of the returns (Rao-Blackwellisation: noise that no
            critic can remove, since it is drawn after the value is predicted). Training
            only, like ``task_aware_critic``: it uses what the environment knows about the
            task.
        task_inference_coefficient: float >= 0; if > 0, a linear head on the policy's GRU
            predicts the task's parameters (`TrialDynamics.task_features`) at every step,
            and PPO adds this times its mean squared error to the loss (task inference as
            an auxiliary task, Humplik et al. 2019). The error's minimiser given the trial
            so far is the posterior mean of the parameters, so the GRU is pushed to keep a
            belief over the task (for a bandit, each arm's success rate, which needs that
            arm's pulls and successes) instead of only what the policy gradient has found
            useful so far. Training only (acting and export use the policy alone); logged
            as ``task_loss``. Needs ``outer_step="ppo"``.
        outer_step: ``"ppo"`` (clipped surrogate, the compiled optimizer) or ``"trpo"``
            (natural gradient in a KL trust region, as in the RL^2 paper; the compiled
            optimizer then fits the critic only, so it needs ``critic="separate"``).
        max_kl: float > 0, TRPO's trust region (mean KL per step).
        cg_iterations, cg_damping, line_search_steps, line_search_decay: TRPO settings
            (`trust_region_step`).
        fisher_fraction: float in (0, 1], the fraction of the batch's trials (a random
            subset per iteration) on which TRPO's Fisher-vector products are computed: they
            are most of its cost; a subset is cheaper and a noisier curvature estimate (the
            gradient and the line search always use the whole batch).
        name: model name.

    Raises:
        ValueError: on a bad argument (named in the message).

    Example:
        >>> import keras
        >>> from keras_meta.rl import BernoulliBanditRL2
        >>> from keras_meta.rl.learners import RL2
        >>> rl2 = RL2(BernoulliBanditRL2(num_arms=5, num_pulls=10), hidden_units=16)
        >>> rl2.compile(keras.optimizers.Adam(1e-3))
        >>> history = rl2.fit(rl2.dataset(batch_size=32), steps_per_epoch=2, verbose=0)
        >>> int(rl2.env_steps.numpy())
        640

    References:
        Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel. RL^2: Fast Reinforcement
        Learning via Slow Reinforcement Learning. 2016.
        Schulman, Wolski, Dhariwal, Radford, Klimov. Proximal Policy Optimization
        Algorithms. 2017.
        Humplik, Galashov, Hasenclever, Ortega, Teh, Heess. Meta reinforcement learning as
        task inference. 2019.
    """

    def __init__(self, dynamics: tf_envs.TrialDynamics | Any, *, hidden_units: int = 64,
                 encoder_units: tuple[int, ...] | list[int] = (),
                 previous_observation: bool = False, discount: float = 0.99,
                 gae_lambda: float = 0.95, clip_ratio: float = 0.2,
                 ppo_epochs: int = 4, num_minibatches: int = 4,
                 entropy_coefficient: float = 0.01, value_coefficient: float = 0.5,
                 max_grad_norm: float | None = 1.0, initial_std: float = 1.0,
                 entropy_decay_iterations: int | None = None,
                 final_entropy_coefficient: float = 0.0, reward_scale: float = 1.0,
                 critic: str = "shared", time_aware_critic: bool = False,
                 task_aware_critic: bool = False, expected_rewards: bool = False,
                 task_inference_coefficient: float = 0.0, outer_step: str = "ppo",
                 max_kl: float = 0.01, cg_iterations: int = 10,
                 cg_damping: float = 1e-5, line_search_steps: int = 15,
                 line_search_decay: float = 0.5, fisher_fraction: float = 1.0,
                 name: str = "rl2", **kwargs) -> None:
        if outer_step not in OUTER_STEPS:
            raise ValueError(f"`outer_step` must be one of {OUTER_STEPS}. "
                             f"Received: outer_step={outer_step!r}")
        if outer_step == "trpo" and critic != "separate":
            raise ValueError("`outer_step='trpo'` needs critic='separate' (the trust-region "
                             "step moves the policy's GRU, on which a shared critic sits). "
                             f"Received: critic={critic!r}")
        task_inference_coefficient = _check_float("task_inference_coefficient",
                                                  task_inference_coefficient, 0.0)
        if task_inference_coefficient and outer_step != "ppo":
            raise ValueError("`task_inference_coefficient` > 0 needs outer_step='ppo' (the "
                             "trust-region step optimises the policy loss alone). Received: "
                             f"outer_step={outer_step!r}")
        diagnostics = (("approx_kl", "clip_fraction") if outer_step == "ppo"
                       else ("kl", "accepted"))
        if task_inference_coefficient:
            diagnostics += ("task_loss",)
        super().__init__(("trial_return", "policy_loss", "value_loss", "entropy")
                         + diagnostics, name=name, **kwargs)
        self.task_inference_coefficient = task_inference_coefficient
        self.outer_step = outer_step
        self.expected_rewards = bool(expected_rewards)
        self.max_kl = _check_float("max_kl", max_kl, 0.0, None, strict=True)
        self.cg_iterations = sampler.check_int("cg_iterations", cg_iterations, 1)
        self.cg_damping = _check_float("cg_damping", cg_damping, 0.0)
        self.line_search_steps = sampler.check_int("line_search_steps", line_search_steps, 1)
        self.line_search_decay = _check_float("line_search_decay", line_search_decay, 0.0, 1.0,
                                              strict=True)
        self.fisher_fraction = _check_float("fisher_fraction", fisher_fraction, 0.0, 1.0,
                                            strict=True)
        self.dynamics = tf_envs.get(dynamics)
        self.discount = _check_float("discount", discount, 0.0, 1.0)
        self.gae_lambda = _check_float("gae_lambda", gae_lambda, 0.0, 1.0)
        self.clip_ratio = _check_float("clip_ratio", clip_ratio, 0.0, None, strict=True)
        self.ppo_epochs = sampler.check_int("ppo_epochs", ppo_epochs, 1)
        self.num_minibatches = sampler.check_int("num_minibatches", num_minibatches, 1)
        self.entropy_coefficient = _check_float("entropy_coefficient", entropy_coefficient, 0.0)
        self.value_coefficient = _check_float("value_coefficient", value_coefficient, 0.0)
        self.entropy_decay_iterations = None if entropy_decay_iterations is None else (
            sampler.check_int("entropy_decay_iterations", entropy_decay_iterations, 1))
        self.final_entropy_coefficient = _check_float("final_entropy_coefficient",
                                                      final_entropy_coefficient, 0.0)
        self.reward_scale = _check_float("reward_scale", reward_scale, 0.0, None, strict=True)
        self.max_grad_norm = None if max_grad_norm is None else _check_float(
            "max_grad_norm", max_grad_norm, 0.0, None, strict=True)
        self.policy = RL2Policy(self.dynamics.observation_size, self.dynamics.prev_action_size,
                                self.dynamics.distribution, hidden_units, initial_std,
                                critic=critic, time_aware_critic=time_aware_critic,
                                critic_task_size=(self.dynamics.task_feature_size
                                                  if task_aware_critic else 0),
                                encoder_units=encoder_units,
                                previous_observation=previous_observation,
                                task_prediction_size=(self.dynamics.task_feature_size
                                                      if task_inference_coefficient else 0))
        self.built = True

    # ------------------------------------------------------------------ data
    def dataset(self, batch_size: int = 256, *, seed: int = 0, split: str = "train",
                start: int | Callable[[], int] = 0) -> tf.data.Dataset:
        """Batches of `batch_size` tasks of the ``(seed, split)`` stream (`trial_dataset`,
        from element `start`: an int or a callable read when iteration begins)."""
        if batch_size < self.num_minibatches:
            raise ValueError(f"`batch_size` must be >= num_minibatches={self.num_minibatches}. "
                             f"Received: batch_size={batch_size}")
        return trial_dataset(self.dynamics, batch_size, seed=seed, split=split, start=start)

    # ------------------------------------------------------------------ rollouts
    def _policy_fn(self, observation, state):
        inputs = (observation[k] for k in POLICY_INPUTS)
        if self.policy.critic_cell is None:
            return self.policy.step_with_value(*inputs, state)
        params, state = self.policy.step(*inputs, state)
        return params, tf.zeros(tf.shape(params)[:1]), state  # values: see `train_step`

    def collect(self, tasks: dict[str, tf.Tensor], seed: tf.Tensor, *,
                deterministic: bool = False, expected_rewards: bool = False) -> Rollout:
        """Plays one trial per task in the graph with the current policy (`rollout`)."""
        batch = tf.shape(next(iter(tasks.values())))[0]
        return rollout(self.dynamics, self._policy_fn, tasks, self.policy.initial_state(batch),
                       seed, deterministic=deterministic, expected_rewards=expected_rewards)

    # ------------------------------------------------------------------ Keras hooks
    def call(self, inputs: dict[str, Any]) -> tf.Tensor:
        """The policy's distribution parameters over batch-major trial sequences."""
        return self.policy(inputs)

    def train_step(self, data: dict[str, Any]) -> dict[str, tf.Tensor]:
        tasks, seed = data["tasks"], tf.cast(data["seed"], tf.int32)
        rollout_seed, shuffle_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        trials = self.collect(tasks, rollout_seed, expected_rewards=self.expected_rewards)
        if self.policy.critic_task_size or self.task_inference_coefficient:
            # beside the trial, for the critic's (and the task head's) passes over it
            features = self.dynamics.task_features(tasks)
            trials = trials._replace(observations={**trials.observations, TASK_KEY: tf.tile(
                features[None], tf.stack([tf.shape(trials.rewards)[0], 1, 1]))})
        advantages, targets = self.advantages(trials)
        advantages = normalize(advantages, trials.active)
        update = self.ppo_update if self.outer_step == "ppo" else self.trpo_update
        stats = update(trials, advantages, targets, shuffle_seed)
        for name, value in stats.items():
            self._trackers[name].update_state(value)
        self._trackers["trial_return"].update_state(trials.returns())
        self.env_steps.assign_add(tf.cast(tf.size(trials.rewards), "int64"))  # T * B steps
        self.meta_iterations.assign_add(1)
        return self._logs()

    def advantages(self, trials: Rollout) -> tuple[tf.Tensor, tf.Tensor]:
        """GAE over whole trials: ``(advantages, critic targets)``, each ``[T, B]``.

        The rewards are the trials' sampled rewards, or their expected rewards with
        ``expected_rewards=True`` (which then must be in `trials`), times `reward_scale`;
        the discount applies at every step and is 0 after the last. Unnormalised.
        """
        rewards = trials.rewards
        if self.expected_rewards:
            if trials.expected_rewards is None:
                raise ValueError("`expected_rewards=True` needs trials collected with "
                                 "`collect(..., expected_rewards=True)`.")
            rewards = trials.expected_rewards
        length = self.dynamics.trial_length
        batch = tf.shape(rewards)[1]
        discounts = tf.concat([tf.fill([length - 1, batch], self.discount),
                               tf.zeros([1, batch])], axis=0)
        values = trials.values
        if self.policy.critic_cell is not None:  # not run while acting: one pass over the trials
            values = tf.cast(self.policy.critic_values(self._critic_inputs(trials)),
                             tf.float32)
        return generalized_advantages(rewards * self.reward_scale, values, discounts,
                                      self.gae_lambda)

    def _critic_inputs(self, trials: Rollout) -> dict[str, tf.Tensor]:
        """The observations the policy and its critic read: `POLICY_INPUTS` (and the task
        features `train_step` adds for a task-aware critic)."""
        keys = POLICY_INPUTS + ((TASK_KEY,) if self.policy.critic_task_size else ())
        return {k: trials.observations[k] for k in keys}

    def ppo_update(self, trials: Rollout, advantages: tf.Tensor, targets: tf.Tensor,
                   seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """`ppo_epochs` passes of PPO over minibatches of whole trials, in one while loop.

        Args:
            trials: the `Rollout` of the behaviour policy.
            advantages: float ``[T, B]`` (normalised), the advantage estimates.
            targets: float ``[T, B]``, the critic's regression targets.
            seed: int32 ``[2]``, seeds the minibatch shuffles.

        Returns:
            The mean over the updates of ``policy_loss``, ``value_loss``, ``entropy``,
            ``approx_kl`` and ``clip_fraction`` (and ``task_loss`` with a
            `task_inference_coefficient`).
        """
        dist = self.dynamics.distribution
        entropy_weight = self.entropy_weight()
        infer_task = bool(self.task_inference_coefficient)

        def loss_fn(take):
            mask = take(trials.active)
            outputs = self.policy.unroll(
                {k: take(v) for k, v in self._critic_inputs(trials).items()},
                return_task_predictions=infer_task)
            params, values = tf.cast(outputs[0], tf.float32), outputs[1]
            terms = clipped_surrogate(dist.log_prob(params, take(trials.actions)),
                                      take(trials.log_probs), take(advantages),
                                      self.clip_ratio, mask)
            entropy = masked_mean(dist.entropy(params), mask)
            value_loss = tf.reduce_mean(tf.square(tf.cast(values, tf.float32) - take(targets)))
            loss = terms.loss - entropy_weight * entropy + self.value_coefficient * value_loss
            stats = (terms.loss, value_loss, entropy, terms.approx_kl, terms.clip_fraction)
            if infer_task:
                error = tf.cast(outputs[3], tf.float32) - take(trials.observations[TASK_KEY])
                task_loss = masked_mean(tf.reduce_mean(tf.square(error), axis=-1), mask)
                loss += self.task_inference_coefficient * task_loss
                stats += (task_loss,)
            return loss, stats

        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        if infer_task:
            names += ("task_loss",)
        means = self._minibatch_updates(trials, seed, loss_fn, self.policy.trainable_variables,
                                        len(names))
        return dict(zip(names, means))

    def trpo_update(self, trials: Rollout, advantages: tf.Tensor, targets: tf.Tensor,
                    seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """One trust-region step of the actor on the whole batch, then the critic's fit.

        The actor maximises the importance-weighted advantage (plus the entropy bonus)
        subject to a mean ``KL(behaviour || new) <= max_kl`` over the active steps; the
        critic (a GRU of its own) then regresses `targets` with the compiled optimizer for
        `ppo_epochs` passes over `num_minibatches` minibatches of trials.

        Returns:
            ``policy_loss`` and ``kl`` at the accepted step, ``accepted`` (1 if the line
            search found a step), the behaviour policy's ``entropy`` and the mean
            ``value_loss`` of the critic's updates.
        """
        dist = self.dynamics.distribution
        entropy_weight = self.entropy_weight()
        actor = self.policy.actor_variables
        observations = {k: trials.observations[k] for k in POLICY_INPUTS}
        batch = tf.shape(trials.rewards)[1]
        fisher_rows = tf.random.experimental.stateless_shuffle(
            tf.range(batch), tf.random.experimental.stateless_fold_in(seed, 1))[
            :tf.maximum(1, tf.cast(tf.cast(batch, tf.float32) * self.fisher_fraction,
                                   tf.int32))]

        def action_params(params, obs):
            with keras.StatelessScope(state_mapping=list(zip(actor, params))):
                return tf.cast(self.policy.action_params(obs), tf.float32)

        def loss_and_kl(params):
            new = action_params(params, observations)
            ratio = tf.exp(dist.log_prob(new, trials.actions) - trials.log_probs)
            loss = (-masked_mean(ratio * advantages, trials.active)
                    - entropy_weight * masked_mean(dist.entropy(new), trials.active))
            return loss, masked_mean(dist.kl(trials.params, new), trials.active)

        def fisher_kl(params):
            def take(x):
                return tf.gather(x, fisher_rows, axis=1)

            new = action_params(params, {k: take(v) for k, v in observations.items()})
            return masked_mean(dist.kl(take(trials.params), new), take(trials.active))

        step = trust_region_step(loss_and_kl, [tf.convert_to_tensor(v) for v in actor],
                                 max_kl=self.max_kl, cg_iterations=self.cg_iterations,
                                 cg_damping=self.cg_damping,
                                 line_search_steps=self.line_search_steps,
                                 line_search_decay=self.line_search_decay,
                                 fisher_kl=None if self.fisher_fraction == 1.0 else fisher_kl)
        for variable, value in zip(actor, step.params):
            variable.assign(value)

        def value_loss_fn(take):
            values = self.policy.critic_values(
                {k: take(v) for k, v in self._critic_inputs(trials).items()})
            value_loss = tf.reduce_mean(tf.square(tf.cast(values, tf.float32) - take(targets)))
            return value_loss, (value_loss,)

        (value_loss,) = self._minibatch_updates(trials, seed, value_loss_fn,
                                                self.policy.critic_variables, 1)
        return {"policy_loss": step.loss, "value_loss": value_loss,
                "entropy": masked_mean(dist.entropy(trials.params), trials.active),
                "kl": step.kl, "accepted": tf.cast(step.accepted, tf.float32)}

    def _minibatch_updates(self, trials: Rollout, seed: tf.Tensor, loss_fn, variables: list,
                           num_stats: int) -> list[tf.Tensor]:
        """`ppo_epochs` x `num_minibatches` optimizer steps on `loss_fn`, in one while loop.

        ``loss_fn(take) -> (loss, stats)``, where ``take`` selects the minibatch's trials
        (axis 1) from a ``[T, B, ...]`` tensor. Each epoch shuffles the trials once and cuts
        them into minibatches. Returns the mean of each of the `num_stats` stats.
        """
        if not self.optimizer.built:
            self.optimizer.build(self.policy.trainable_variables)
        batch = tf.shape(trials.rewards)[1]
        size = batch // self.num_minibatches
        updates = self.updates_per_iteration
        orders = tf.argsort(tf.random.stateless_uniform(tf.stack([self.ppo_epochs, batch]), seed),
                            axis=-1)

        def body(i, totals):
            part = i % self.num_minibatches
            rows = orders[i // self.num_minibatches, part * size:(part + 1) * size]

            def take(x):
                return tf.gather(x, rows, axis=1)

            with tf.GradientTape() as tape:
                loss, stats = loss_fn(take)
            grads = tape.gradient(loss, variables)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
            if self.max_grad_norm is not None:
                grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
            self.optimizer.apply(grads, variables)
            return i + 1, tuple(t + s for t, s in zip(totals, stats))

        _, totals = tf.while_loop(lambda i, _: i < updates, body,
                                  (tf.constant(0), (tf.constant(0.0),) * num_stats),
                                  maximum_iterations=updates)
        return [total / updates for total in totals]

    @property
    def updates_per_iteration(self) -> int:
        """Optimizer updates per training iteration (PPO's, or the TRPO critic's):
        ``ppo_epochs * num_minibatches`` (a learning-rate schedule counts these)."""
        return self.ppo_epochs * self.num_minibatches

    def entropy_weight(self) -> tf.Tensor:
        """The entropy weight of the current PPO iteration (float32 scalar)."""
        if self.entropy_decay_iterations is None:
            return tf.constant(self.entropy_coefficient, tf.float32)
        iteration = tf.cast(self.meta_iterations, tf.float32)
        fraction = tf.minimum(iteration / float(self.entropy_decay_iterations), 1.0)
        return ((1.0 - fraction) * self.entropy_coefficient
                + fraction * self.final_entropy_coefficient)

    def test_step(self, data: dict[str, Any]) -> dict[str, tf.Tensor]:
        trials = self.collect(data["tasks"], tf.cast(data["seed"], tf.int32))
        self._trackers["trial_return"].update_state(trials.returns())
        return {"trial_return": self._trackers["trial_return"].result()}

    def _logs(self) -> dict[str, tf.Tensor]:
        logs = {name: t.result() for name, t in self._trackers.items()}
        logs["env_steps"] = self.env_steps.value
        return logs

    def get_config(self) -> dict:
        return {"dynamics": self.dynamics.get_config(), "hidden_units": self.policy.hidden_units,
                "encoder_units": list(self.policy.encoder_units),
                "previous_observation": self.policy.previous_observation,
                "discount": self.discount, "gae_lambda": self.gae_lambda,
                "clip_ratio": self.clip_ratio, "ppo_epochs": self.ppo_epochs,
                "num_minibatches": self.num_minibatches,
                "entropy_coefficient": self.entropy_coefficient,
                "value_coefficient": self.value_coefficient,
                "max_grad_norm": self.max_grad_norm, "initial_std": self.policy.initial_std,
                "entropy_decay_iterations": self.entropy_decay_iterations,
                "final_entropy_coefficient": self.final_entropy_coefficient,
                "reward_scale": self.reward_scale, "critic": self.policy.critic,
                "time_aware_critic": self.policy.time_aware_critic,
                "task_aware_critic": bool(self.policy.critic_task_size),
                "expected_rewards": self.expected_rewards,
                "task_inference_coefficient": self.task_inference_coefficient,
                "outer_step": self.outer_step,
                "max_kl": self.max_kl,
                "cg_iterations": self.cg_iterations, "cg_damping": self.cg_damping,
                "line_search_steps": self.line_search_steps,
                "line_search_decay": self.line_search_decay,
                "fisher_fraction": self.fisher_fraction, "name": self.name}


class RL2Agent:
    """A trained RL^2 policy as a `keras_meta.rl.TrialAgent`, for `keras_meta.rl.evaluate`.

    Plays in the numpy `TrialEnvironment` (the evaluation path shared with the baselines):
    the hidden state starts at zero on the ``FIRST`` step of each trial and is carried
    across the trial's episodes; actions are drawn from the policy with the generator
    `evaluate` gives the agent (or are the distribution's mode when `deterministic`).

    Args:
        policy: an `RL2` learner or its `RL2Policy`.
        deterministic: take the most likely action (Gaussian: the mean) instead of sampling.

    Raises:
        ValueError: if `policy` is neither.

    Example:
        >>> from keras_meta.rl import BernoulliBanditRL2, evaluate, sample_bandit_tasks
        >>> from keras_meta.rl.learners import RL2, RL2Agent
        >>> env = BernoulliBanditRL2(num_arms=5, num_pulls=10, batch_size=50)
        >>> agent = RL2Agent(RL2(env, hidden_units=8))
        >>> score = evaluate(env, agent, sample_bandit_tasks(100, 5, split="test"))
        >>> len(score.scores)
        100
    """

    def __init__(self, policy: RL2 | RL2Policy, *, deterministic: bool = False) -> None:
        if isinstance(policy, RL2):
            policy = policy.policy
        if not isinstance(policy, RL2Policy):
            raise ValueError("`policy` must be an RL2 learner or an RL2Policy. "
                             f"Received: policy of type {type(policy).__name__}")
        self.policy = policy
        self.deterministic = bool(deterministic)
        self._rng = np.random.default_rng(0)
        self._state: tf.Tensor | None = None
        self._step = tf.function(policy.step, reduce_retracing=True)

    def begin_trial(self, tasks: Any, rng: np.random.Generator) -> None:
        del tasks  # an RL^2 agent learns the task from its observations only
        self._rng = rng
        self._state = None

    def act(self, time_step: ts.TimeStep) -> np.ndarray:
        obs = time_step.observation
        if self._state is None or time_step.step_type[0] == ts.StepType.FIRST:
            self._state = self.policy.initial_state(len(time_step.step_type))
        params, self._state = self._step(*(tf.constant(obs[k], tf.float32)
                                           for k in POLICY_INPUTS), self._state)
        return self.policy.distribution.sample_numpy(params.numpy().astype(np.float64),
                                                     self._rng, self.deterministic)
