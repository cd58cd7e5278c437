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


def test_adapted_model_predicts_like_the_learner():
    proto = learners.ProtoNet(embedding())
    sx, sy, qx, _ = classification_batch(tasks=1)
    adapted = proto.adapt(sx[0], sy[0])
    np.testing.assert_allclose(adapted.predict(qx[0], verbose=0),
                               proto({"support_x": sx, "support_y": sy, "query_x": qx})[0],
                               rtol=1e-4, atol=1e-4)
    assert isinstance(adapted.get_layer("prototypes"), keras_meta.layers.PrototypeHead)


def test_per_task_path_matches_batched_path():
    proto = learners.ProtoNet(embedding())
    sx, sy, qx, _ = classification_batch(tasks=2)
    batched = proto({"support_x": sx, "support_y": sy, "query_x": qx})
    state = proto.adapt_task(tf.constant(sx[1]), tf.constant(sy[1]), 0, False)
    np.testing.assert_allclose(proto.predict_task(state, tf.constant(qx[1]), False), batched[1],
                               rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def omniglot():
    return Omniglot(ways=5, shots=1, queries=5)


def test_omniglot_protonet_learns_far_above_chance_on_held_out_classes(omniglot):
    keras.utils.set_random_seed(0)
    proto = learners.ProtoNet(models.conv4((28, 28, 1), ways=0))
    proto.compile(keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    proto.fit(omniglot.dataset("train", 4), steps_per_epoch=120, verbose=0)
    result = keras_meta.evaluate(proto, omniglot, episodes=600, verbose=0)
    assert result.protocol["split"] == "test" and result.protocol["bn_policy"] == "running"
    assert result.mean("accuracy") - result.ci95("accuracy") > 0.6  # chance: 0.2
