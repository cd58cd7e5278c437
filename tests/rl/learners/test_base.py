"""The shared Keras plumbing of the meta-RL learners (`RLLearner`)."""

import keras
import pytest

from keras_meta.rl import BernoulliBanditRL2, Navigation2DMAML
from keras_meta.rl.learners import MAMLRL, RL2, RLLearner


def small_learner(kind: str):
    if kind == "rl2":
        return RL2(BernoulliBanditRL2(num_arms=3, num_pulls=4), hidden_units=8,
                   num_minibatches=2)
    return MAMLRL(Navigation2DMAML(max_steps=5), hidden_units=(8,), trajectories_per_task=2)


@pytest.fixture(params=["rl2", "maml_rl"])
def learner(request):
    return small_learner(request.param)


def test_learners_share_the_base(learner):
    assert isinstance(learner, RLLearner)
    assert int(learner.env_steps.numpy()) == 0
    assert [m.name for m in learner.metrics] == list(learner._trackers)


def test_compile_defaults_to_no_xla_and_fit_logs_the_diagnostics(learner):
    learner.compile(keras.optimizers.Adam(1e-3))
    assert learner.jit_compile is False
    data = (learner.dataset(batch_size=4) if isinstance(learner, RL2)
            else learner.dataset(meta_batch_size=2))
    logs = learner.fit(data, steps_per_epoch=1, verbose=0).history
    assert set(learner._trackers) <= set(logs)
    assert int(learner.env_steps.numpy()) > 0


def test_loss_scaling_is_refused_with_the_fix(learner):
    with pytest.raises(ValueError, match="float32' dtype policy"):
        learner.compile(keras.optimizers.Adam(1e-3, loss_scale_factor=128.0))


@pytest.mark.parametrize("kind", ["rl2", "maml_rl"])
def test_mixed_precision_is_refused_with_the_fix(kind):
    keras.config.set_dtype_policy("mixed_float16")
    try:  # compile wraps the optimizer of a mixed_float16 model in a LossScaleOptimizer
        learner = small_learner(kind)  # built under the policy, so it cannot be the fixture
        with pytest.raises(ValueError, match="LossScaleOptimizer"):
            learner.compile(keras.optimizers.Adam(1e-3))
    finally:
        keras.config.set_dtype_policy("float32")
