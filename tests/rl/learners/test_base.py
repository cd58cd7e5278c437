"""The shared Keras plumbing of the meta-RL learners (`RLLearner`)."""

import keras
import pytest

from keras_meta.rl import BernoulliBanditRL2, Navigation2DMAML
from keras_meta.rl.learners import MAMLRL, RL2, RLLearner
from keras_meta.rl.learners.base import check_float


@pytest.fixture(params=["rl2", "maml_rl"])
def learner(request):
    if request.param == "rl2":
        return RL2(BernoulliBanditRL2(num_arms=3, num_pulls=4), hidden_units=8,
                   num_minibatches=2)
    return MAMLRL(Navigation2DMAML(max_steps=5), hidden_units=(8,), trajectories_per_task=2)


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


@pytest.mark.parametrize("value, kwargs", [
    (-0.1, {"low": 0.0}), (1.5, {"low": 0.0, "high": 1.0}), (0.0, {"low": 0.0, "strict": True}),
    ("x", {"low": 0.0}), (float("nan"), {"low": 0.0}),
])
def test_check_float_names_the_argument(value, kwargs):
    with pytest.raises(ValueError, match="`discount` must be a number"):
        check_float("discount", value, **kwargs)


def test_check_float_accepts_bounds():
    assert check_float("discount", 1, 0.0, 1.0) == 1.0
    assert check_float("clip_ratio", 0.2, 0.0, strict=True) == 0.2
