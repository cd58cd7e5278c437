"""Export a meta-trained RL^2 policy: one recurrent step as a serving signature.

The client keeps the recurrent state: it starts a trial with zeros ``[B, state_size]`` and
feeds the ``next_state`` output back as ``state`` with each step's observation, previous action,
reward and done flag. The adaptation to the task happens in that state, so an edge device runs
the learned learner by calling the one-step graph in a loop.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from export.exporter import DEFAULT_TOLERANCE, ExportResult, export_signatures
from export.signatures import Signature


def policy_signatures(policy) -> list[Signature]:
    """``serving_default``: ``observation, prev_action, prev_reward, done, state`` ->
    distribution parameters (``logits`` and ``probabilities``, or ``mean`` and ``std``) and
    ``next_state`` (an ONNX graph cannot reuse the input name ``state`` for an output)."""
    from keras_meta.rl.learners.rl2 import RL2Policy

    if not isinstance(policy, RL2Policy):
        raise ValueError("`policy` must be a keras_meta.rl.learners.RL2Policy (e.g. "
                         f"`RL2(...).policy`). Received: {type(policy).__name__}")
    dtype = policy.compute_dtype
    specs = {"observation": tf.TensorSpec((None, policy.observation_size), dtype,
                                          name="observation"),
             "prev_action": tf.TensorSpec((None, policy.prev_action_size), dtype,
                                          name="prev_action"),
             "prev_reward": tf.TensorSpec((None, 1), dtype, name="prev_reward"),
             "done": tf.TensorSpec((None, 1), dtype, name="done"),
             "state": tf.TensorSpec((None, policy.state_size), dtype, name="state")}
    distribution = policy.distribution

    def step(observation, prev_action, prev_reward, done, state):
        params, new_state = policy.step(observation, prev_action, prev_reward, done, state)
        if distribution.discrete:
            out = {"logits": params, "probabilities": tf.nn.softmax(params, axis=-1)}
        else:
            mean, log_std = distribution.split(params)
            out = {"mean": mean, "std": tf.exp(log_std)}
        return {**out, "next_state": new_state}

    return [Signature("serving_default", step, specs, specs)]


def export_policy(policy, base_path: str | Path, name: str, *,
                  formats="savedmodel,onnx", version: int | None = None,
                  overwrite: bool = False, tolerance: float = DEFAULT_TOLERANCE,
                  metadata: dict | None = None) -> ExportResult:
    """Export an RL^2 policy's step (see `policy_signatures`) like any other model."""
    signatures = policy_signatures(policy)
    info = {"learner": "RL2", "policy": type(policy).__name__,
            "hidden_units": policy.hidden_units, "state_size": policy.state_size,
            "distribution": policy.distribution.get_config(), **(metadata or {})}
    return export_signatures(signatures, [policy], base_path, name,
                             formats=formats, version=version, overwrite=overwrite,
                             tolerance=tolerance, metadata=info)
