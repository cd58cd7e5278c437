import math

import keras
import numpy as np
import pytest

import keras_meta
from keras_meta.evaluation import _macro_prf, confidence_interval
from keras_meta.learners import MAML
from keras_meta.tasks import Episode, EpisodeSpec, TaskDistribution

from .learners.helpers import classification_batch, classification_net


class Clusters(TaskDistribution):
    """Gaussian-cluster classification tasks, for testing classification metrics."""

    name = "clusters"

    def __init__(self):
        self.spec = EpisodeSpec(x_shape=(6,), support_size=6, query_size=9, num_classes=3)

    def sample_meta_batch(self, split, seeds):
        import tensorflow as tf

        tasks = seeds.shape[0]
        sx, sy, qx, qy = classification_batch(tasks=tasks, seed=0)
        return Episode(*(tf.constant(a) for a in (sx, sy, qx, qy)))


def test_confidence_interval_is_1_96_std_over_sqrt_n():
    values = np.arange(600.0)
    mean, ci = confidence_interval(values)
    assert mean == pytest.approx(299.5)
    assert ci == pytest.approx(1.96 * values.std() / math.sqrt(600))


def test_macro_precision_recall_f1():
    pred = np.array([0, 0, 1, 1, 2, 0])
    true = np.array([0, 0, 1, 1, 2, 2])
    p, r, f = _macro_prf(pred, true, 3)
    assert p == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert r == pytest.approx((1 + 1 + 0.5) / 3)
    per_class_f1 = [0.8, 1.0, 2 / 3]
    assert f == pytest.approx(np.mean(per_class_f1))


def test_classification_report_has_accuracy_and_macro_scores():
    learner = MAML(classification_net(), update_rule=0.5,
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = keras_meta.evaluate(learner, Clusters(), steps=[0, 5], episodes=600, verbose=0)
    assert set(result.metrics[0]) == {"accuracy", "precision", "recall", "f1"}
    assert result.mean("accuracy", 5) > result.mean("accuracy", 0)
    assert result.mean("accuracy", 5) > 0.6
    assert "accuracy" in str(result) and "600 episodes" in str(result)
    assert result.protocol["ways"] == 3 and result.protocol["bn_policy"] == "transductive"


def test_mean_without_steps_reports_the_protocols_test_step_count():
    metrics = {s: {"accuracy": (a, 0.01)} for s, a in [(0, 0.2), (3, 0.8), (10, 0.9)]}
    result = keras_meta.EvaluationResult(metrics, {"inner_steps_test": 3})
    assert result.reported_steps == 3
    assert result.mean("accuracy") == 0.8 and result.ci95("accuracy") == 0.01
    assert result.mean("accuracy", 10) == 0.9
    # Without the protocol's count among the evaluated ones, the largest count is reported.
    assert keras_meta.EvaluationResult(metrics, {"inner_steps_test": 5}).reported_steps == 10
    assert keras_meta.EvaluationResult(metrics, {}).reported_steps == 10


def test_fewer_than_600_episodes_is_refused_for_a_reported_result():
    learner = MAML(classification_net(), loss="mse")
    with pytest.raises(ValueError, match="600"):
        keras_meta.evaluate(learner, Clusters(), episodes=100)
