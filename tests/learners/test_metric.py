import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta
from keras_meta import learners, models
from keras_meta.tasks import Omniglot

from .helpers import classification_batch


def embedding(features=6):
    return keras.Sequential([keras.Input((features,)), keras.layers.Dense(8)])


def test_prototypes_are_class_means_and_logits_negative_squared_distances():
    net = embedding()
    proto = learners.ProtoNet(net)
    sx, sy, qx, qy = classification_batch(tasks=2)
    logits = proto({"support_x": sx, "support_y": sy, "query_x": qx}).numpy()
    for t in range(2):
        es, eq = net(sx[t]).numpy(), net(qx[t]).numpy()
        protos = np.stack([es[sy[t] == c].mean(0) for c in range(3)])
        expected = -((eq[:, None, :] - protos[None]) ** 2).sum(-1)
        np.testing.assert_allclose(logits[t], expected, rtol=1e-4, atol=1e-4)


METRIC_LEARNERS = [learners.ProtoNet, learners.RidgeHead]


@pytest.mark.parametrize("cls", METRIC_LEARNERS)
def test_adapted_model_predicts_like_the_learner(cls):
    learner = cls(embedding())
    sx, sy, qx, _ = classification_batch(tasks=1)
    adapted = learner.adapt(sx[0], sy[0])
    np.testing.assert_allclose(adapted.predict(qx[0], verbose=0),
                               learner({"support_x": sx, "support_y": sy, "query_x": qx})[0],
                               rtol=1e-3, atol=1e-3)
    if cls is learners.ProtoNet:
        assert isinstance(adapted.get_layer("prototypes"), keras_meta.layers.PrototypeHead)


@pytest.mark.parametrize("cls", METRIC_LEARNERS)
def test_per_task_path_matches_batched_path(cls):
    learner = cls(embedding())
    sx, sy, qx, _ = classification_batch(tasks=2)
    batched = learner({"support_x": sx, "support_y": sy, "query_x": qx})
    state = learner.adapt_task(tf.constant(sx[1]), tf.constant(sy[1]), 0, False)
    np.testing.assert_allclose(learner.predict_task(state, tf.constant(qx[1]), False), batched[1],
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("features, support", [(16, 6), (4, 12)], ids=["woodbury", "primal"])
def test_ridge_head_is_the_ridge_regression_solution(features, support):
    ridge = learners.RidgeHead(embedding(features), l2=0.7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(support, features))
    y = np.arange(support) % 3
    w = ridge.fit_head(tf.constant(x), tf.constant(y), 3).numpy()
    xb = np.concatenate([x, np.ones((support, 1))], axis=1)
    expected = np.linalg.solve(xb.T @ xb + 0.7 * np.eye(features + 1), xb.T @ np.eye(3)[y])
    np.testing.assert_allclose(w, expected, rtol=1e-6, atol=1e-8)


def test_ridge_head_meta_learns_its_penalty_and_scale():
    ridge = learners.RidgeHead(embedding())
    ridge.compile(keras.optimizers.Adam(1e-2))
    sx, sy, qx, qy = classification_batch(tasks=4)
    data = tf.data.Dataset.from_tensors(({"support_x": sx, "support_y": sy, "query_x": qx}, qy))
    before = float(ridge.log_l2.numpy()), float(ridge.scale.numpy())
    history = ridge.fit(data.repeat(), steps_per_epoch=30, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert (float(ridge.log_l2.numpy()), float(ridge.scale.numpy())) != before


@pytest.fixture(scope="module")
def omniglot():
    return Omniglot(ways=5, shots=1, queries=5)


@pytest.mark.parametrize("cls", METRIC_LEARNERS)
def test_omniglot_metric_learner_is_far_above_chance_on_held_out_classes(omniglot, cls):
    keras.utils.set_random_seed(0)
    proto = cls(models.conv4((28, 28, 1), ways=0, filters=32))
    proto.compile(keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    proto.fit(omniglot.dataset("train", 4), steps_per_epoch=80, verbose=0)  # 0.72 here
    result = keras_meta.evaluate(proto, omniglot, episodes=600, verbose=0)
    assert result.protocol["split"] == "test" and result.protocol["bn_policy"] == "running"
    assert result.mean("accuracy") - result.ci95("accuracy") > 0.6  # chance: 0.2


@pytest.mark.parametrize("cls", METRIC_LEARNERS)
def test_mixed_precision_trains_with_float32_heads(cls):
    # Under mixed_float16 the heads run in float32: the ridge solve has no half kernel, and
    # squared distances can overflow in float16.
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        learner = cls(models.conv4((12, 12, 1), ways=0, filters=4, blocks=2))
        learner.compile(keras.optimizers.Adam(1e-2))
        rng = np.random.default_rng(0)
        labels = np.tile(np.repeat(np.arange(3), 2), (2, 1)).astype("int32")
        x = {"support_x": rng.normal(size=(2, 6, 12, 12, 1)).astype("float32"),
             "support_y": labels,
             "query_x": rng.normal(size=(2, 6, 12, 12, 1)).astype("float32")}
        logits = learner(x)
        assert logits.dtype == tf.float32
        before = [v.numpy().copy() for v in learner.trainable_variables]
        history = learner.fit(tf.data.Dataset.from_tensors((x, labels)).repeat(20),
                              verbose=0).history
        # dynamic loss scaling skips the first steps whose scaled gradients overflow
        assert int(learner.optimizer.iterations.numpy()) > 10
        assert np.isfinite(history["loss"][-1])
        assert any(np.abs(v.numpy() - b).max() > 0 for v, b
                   in zip(learner.trainable_variables, before))
    finally:
        keras.config.set_dtype_policy("float32")
