"""Fused XLA steps: the same training as Keras' loop, one XLA program per block of steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta import learners, models
from keras_meta.core import fused_steps
from keras_meta.tasks import Sinusoid


def _data(batches=7, tasks=4):
    episodes = Sinusoid(shots=5).episodes("train", batches * tasks, seed=3, meta_batch_size=tasks)
    inputs = {k: v.reshape((batches, tasks) + v.shape[1:]) for k, v in episodes.inputs().items()}
    return inputs, episodes.query_y.reshape((batches, tasks) + episodes.query_y.shape[1:])


def _learner(steps_per_execution, jit_compile=True):
    keras.utils.set_random_seed(1)
    learner = learners.MAML(models.mlp((1,), (16,), 1), loss="mse", update_rule=0.01)
    learner.compile(keras.optimizers.Adam(1e-2), jit_compile=jit_compile,
                    steps_per_execution=steps_per_execution, metrics=["mae"])
    return learner


def _dataset(repeat=True):
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    return ds.repeat() if repeat else ds


def _weights(learner):
    return [v.numpy() for v in learner.trainable_variables]


def test_fused_fit_matches_one_step_per_execution():
    fused, plain = _learner(4), _learner(1)
    history = fused.fit(_dataset(), steps_per_epoch=8, epochs=2, verbose=0).history
    reference = plain.fit(_dataset(), steps_per_epoch=8, epochs=2, verbose=0).history
    assert fused.train_function.__qualname__.startswith("fused_function")
    assert int(fused.optimizer.iterations) == int(plain.optimizer.iterations) == 16
    for a, b in zip(_weights(fused), _weights(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for name in ("loss", "mae"):  # logs: the metrics after the last step of the epoch
        np.testing.assert_allclose(history[name], reference[name], rtol=1e-4)
    x, y = _data()
    fused_eval = fused.evaluate(x=_dataset(repeat=False), verbose=0, return_dict=True)
    plain_eval = plain.evaluate(x=_dataset(repeat=False), verbose=0, return_dict=True)
    assert fused_eval["loss"] == pytest.approx(plain_eval["loss"], rel=1e-4)


def test_a_finite_dataset_ends_mid_block():
    fused, plain = _learner(5), _learner(1)
    fused.fit(_dataset(repeat=False), epochs=1, verbose=0)  # 7 batches: blocks of 5 and 2
    plain.fit(_dataset(repeat=False), epochs=1, verbose=0)
    assert int(fused.optimizer.iterations) == 7
    for a, b in zip(_weights(fused), _weights(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_blocks_are_capped_in_bytes(monkeypatch):
    monkeypatch.setattr(fused_steps, "MAX_BLOCK_BYTES", 1)  # one batch per XLA program
    fused, plain = _learner(3), _learner(1)
    fused.fit(_dataset(), steps_per_epoch=6, verbose=0)
    plain.fit(_dataset(), steps_per_epoch=6, verbose=0)
    for a, b in zip(_weights(fused), _weights(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_keras_loop_where_fusing_does_not_apply():
    no_xla = _learner(4, jit_compile=False)
    no_xla.make_train_function()
    assert not no_xla.train_function.__qualname__.startswith("fused_function")
    # Batches of varying size cannot be stacked: Keras' loop runs them.
    x, y = _data()
    ragged = tf.data.Dataset.from_tensor_slices((x, y)).unbatch().batch(3)
    learner = _learner(4)
    learner.fit(ragged, epochs=1, verbose=0)
    assert int(learner.optimizer.iterations) == 10  # 28 tasks in batches of 3
