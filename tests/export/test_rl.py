"""RL^2 policy export: the recurrent step as a signature, run in a loop like a client would."""

import numpy as np
import pytest
import tensorflow as tf

import export
from keras_meta.rl.learners import RL2Policy, distributions


def play(step, policy, steps=12, batch=3, seed=0):
    """Feed a policy's step its own outputs for ``steps`` steps; returns the outputs."""
    rng = np.random.default_rng(seed)
    state = np.zeros((batch, policy.state_size), np.float32)
    prev_action = np.zeros((batch, policy.prev_action_size), np.float32)
    outputs = []
    for t in range(steps):
        inputs = {"observation": rng.standard_normal((batch, policy.observation_size))
                  .astype(np.float32), "prev_action": prev_action,
                  "prev_reward": rng.standard_normal((batch, 1)).astype(np.float32),
                  "done": np.full((batch, 1), float(t % 4 == 0), np.float32), "state": state}
        out = step(inputs)
        state = np.asarray(out["next_state"])
        prev_action = np.eye(policy.prev_action_size, dtype=np.float32)[
            np.asarray(out[next(iter(out))]).argmax(-1) % policy.prev_action_size]
        outputs.append({k: np.asarray(v) for k, v in out.items()})
    return outputs


@pytest.mark.parametrize(("distribution", "critic", "encoder", "previous"),
                         [(distributions.Categorical(5), "shared", (), False),
                          (distributions.DiagonalGaussian(2), "separate", (8,), False),
                          (distributions.Categorical(5), "shared", (8,), True)])
def test_policy_step_exports_and_runs_a_trial_like_the_policy(tmp_path, distribution, critic,
                                                              encoder, previous):
    """A separate critic is not part of the acting step: the exported state stays the
    policy's GRU state (and an input encoder is part of the step; with
    previous_observation the state also carries the last observation)."""
    size = distribution.param_size if distribution.discrete else 2
    policy = RL2Policy(3, size, distribution, hidden_units=16, critic=critic,
                       encoder_units=encoder, previous_observation=previous)
    result = export.export_policy(policy, tmp_path, "rl2", formats="savedmodel")
    assert result.parity.worst <= 1e-4
    fn = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    assert fn.structured_input_signature[1]["state"].shape[-1] == 16 + 3 * previous
    keys = ("logits", "probabilities", "next_state") if distribution.discrete else (
        "mean", "std", "next_state")
    assert set(fn.structured_outputs) == set(keys)

    def in_memory(inputs):
        out = export.policy_signatures(policy)[0].function(
            *(tf.constant(inputs[k]) for k in ("observation", "prev_action", "prev_reward",
                                              "done", "state")))
        return {k: out[k] for k in keys}

    exported = play(lambda inputs: {k: fn(**{n: tf.constant(v) for n, v in inputs.items()})[k]
                                    for k in keys}, policy)
    expected = play(in_memory, policy)
    for a, b in zip(exported, expected):
        for k in keys:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    # The state carries information: it moves during the trial.
    assert np.abs(exported[-1]["next_state"] - exported[0]["next_state"]).max() > 1e-3


def test_only_rl2_policies_export_as_policies(tmp_path):
    with pytest.raises(ValueError, match="RL2Policy"):
        export.export_policy(object(), tmp_path, "x")
