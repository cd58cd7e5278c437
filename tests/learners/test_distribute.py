"""Meta-learners under `tf.distribute.MirroredStrategy` train as on one device.

The strategy needs several devices, which must be configured before TensorFlow starts, so the
runs happen in a child process with the CPU split into two logical devices.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from keras_meta import learners, models, tasks

TASKS = 8


def image_episodes(ways=3, shots=2, queries=2):
    rng = np.random.default_rng(0)
    sx = rng.normal(size=(TASKS, ways * shots, 12, 12, 1)).astype("float32")
    qx = rng.normal(size=(TASKS, ways * queries, 12, 12, 1)).astype("float32")
    sy = np.tile(np.repeat(np.arange(ways), shots), (TASKS, 1)).astype("int32")
    qy = np.tile(np.repeat(np.arange(ways), queries), (TASKS, 1)).astype("int32")
    # a batched dataset (not `from_tensors`): the strategy splits its batches into replicas
    x = {"support_x": sx, "support_y": sy, "query_x": qx}
    return tf.data.Dataset.from_tensor_slices((x, qy)).batch(TASKS).repeat(2)


def plain_cnn():
    return keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(4, 3),
                             keras.layers.ReLU(), keras.layers.MaxPooling2D(),
                             keras.layers.Flatten()])


def build(case):
    keras.utils.set_random_seed(0)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    sinusoid = tasks.Sinusoid(shots=5).dataset("train", meta_batch_size=TASKS, num_batches=2)
    mlp = lambda: models.mlp((1,), hidden=(16, 16), outputs=1)
    if case == "maml":
        return learners.MAML(mlp(), update_rule=0.01, loss="mse"), sinusoid
    if case == "maml_task_chunks":
        return learners.MAML(mlp(), update_rule=0.01, loss="mse", task_chunk_size=2), sinusoid
    if case == "reptile":
        return learners.Reptile(mlp(), update_rule=0.01, inner_steps=2, loss="mse"), sinusoid
    if case == "maml_conv4_keras_loss":  # tasks mapped one by one; transductive batch norm
        net = models.conv4((12, 12, 1), ways=3, filters=4, blocks=2)
        return learners.MAML(net, update_rule=0.1, loss=xent), image_episodes()
    if case == "protonet":
        return learners.ProtoNet(plain_cnn()), image_episodes()
    if case == "ridge_head":
        return learners.RidgeHead(plain_cnn()), image_episodes()
    if case == "protonet_conv4":  # batch statistics per replica, as in any data-parallel BN
        net = models.conv4((12, 12, 1), ways=0, filters=4, blocks=2)
        return learners.ProtoNet(net), image_episodes()
    raise ValueError(case)


def train(case, strategy):
    with strategy.scope():
        learner, data = build(case)
        learner.compile(keras.optimizers.SGD(0.05))
    loss = learner.fit(data, epochs=1, verbose=0).history["loss"][0]
    test_loss = learner.evaluate(data, verbose=0, return_dict=True)["loss"]
    return loss, test_loss, [v.numpy() for v in learner.trainable_variables]


# One strategy for every case: a new one would restart the collective instance keys that the
# runtime has already bound to the previous model's gradient shapes.
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
results = {}
with mirrored.scope():  # meta-RL learners refuse several replicas
    from keras_meta.rl import BernoulliBanditRL2, Navigation2DMAML
    from keras_meta.rl.learners import MAMLRL, RL2
    for rl in (RL2(BernoulliBanditRL2(num_arms=3, num_pulls=4), hidden_units=8),
               MAMLRL(Navigation2DMAML(max_steps=5), hidden_units=(8,))):
        try:
            rl.compile("adam")
            results[type(rl).__name__] = "compiled"
        except NotImplementedError as error:
            results[type(rl).__name__] = str(error)
for case in sys.argv[1:]:
    one = train(case, tf.distribute.get_strategy())
    two = train(case, mirrored)
    results[case] = {
        "loss": [one[0], two[0]], "test_loss": [one[1], two[1]],
        "max_weight_difference": max(float(np.max(np.abs(a - b)))
                                     for a, b in zip(one[2], two[2])),
        "finite": bool(all(np.isfinite(w).all() for w in two[2])),
    }
print("RESULTS " + json.dumps(results))
"""

EXACT = ["maml", "maml_task_chunks", "reptile", "maml_conv4_keras_loss", "protonet",
         "ridge_head"]


@pytest.fixture(scope="module")
def mirrored_runs():
    proc = subprocess.run([sys.executable, "-c", CHILD, *EXACT, "protonet_conv4"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


@pytest.mark.parametrize("case", EXACT)
def test_two_replicas_train_like_one_device(mirrored_runs, case):
    # The same global meta-batch split over two replicas: the optimizer sums the replicas'
    # gradients, so each must differentiate its share of the global mean (and inner steps must
    # not shrink: Keras losses divide by the replica count).
    run = mirrored_runs[case]
    assert run["max_weight_difference"] < 1e-5
    assert run["loss"][1] == pytest.approx(run["loss"][0], rel=1e-5)
    assert run["test_loss"][1] == pytest.approx(run["test_loss"][0], rel=1e-5)


def test_batch_norm_over_a_meta_batch_trains_per_replica(mirrored_runs):
    # ProtoNet's batch norm sees the whole meta-batch on one device and half of it per
    # replica, so the runs differ slightly, as unsynchronised batch norm does in any
    # data-parallel training; it must still train.
    run = mirrored_runs["protonet_conv4"]
    assert run["finite"]
    assert 0 < run["max_weight_difference"] < 0.1
    assert run["loss"][1] == pytest.approx(run["loss"][0], rel=0.05)


@pytest.mark.parametrize("learner", ["RL2", "MAMLRL"])
def test_meta_rl_learners_refuse_several_replicas(mirrored_runs, learner):
    assert "with 2 replicas" in mirrored_runs[learner]
    assert "strategy.scope()" in mirrored_runs[learner]
