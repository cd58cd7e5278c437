"""MAML's meta-gradient is the true second-order gradient; regularizers count."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta import learners

from .helpers import classification_batch, classification_net

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")


def meta_loss_and_gradient(learner, episode):
    sx, sy, qx, qy = episode
    inputs = {"support_x": sx, "support_y": sy, "query_x": qx}
    with tf.GradientTape() as tape:
        losses, _ = learner.query_losses(inputs, qy, training=True)
        loss = tf.reduce_mean(losses)
    return loss, tape.gradient(loss, learner.trainable_variables)


def directional_checks(learner, episode, directions=4, eps=1e-5):
    """Return (analytic, finite-difference) directional derivatives of the meta-loss."""
    _, grads = meta_loss_and_gradient(learner, episode)
    variables = learner.trainable_variables
    rng = np.random.default_rng(1)
    analytic, numeric = [], []
    for _ in range(directions):
        d = [rng.normal(size=v.shape) for v in variables]
        analytic.append(sum(float(np.sum(g.numpy() * di)) for g, di in zip(grads, d)))
        base = [v.numpy() for v in variables]
        values = []
        for sign in (1, -1):
            for v, b, di in zip(variables, base, d):
                v.assign(b + sign * eps * di)
            values.append(float(meta_loss_and_gradient(learner, episode)[0]))
        for v, b in zip(variables, base):
            v.assign(b)
        numeric.append((values[0] - values[1]) / (2 * eps))
    return np.array(analytic), np.array(numeric)


def tiny_learner(first_order=False, batch_norm=False, steps=2):
    net = classification_net(ways=3, features=6, batch_norm=batch_norm, dtype="float64")
    return learners.MAML(net, loss=LOSS, update_rule=0.5, inner_steps=steps,
                         first_order=first_order)


EPISODE = classification_batch(tasks=2, dtype="float64")


@pytest.mark.parametrize("batch_norm", [False, True], ids=["dense", "batch_norm"])
def test_second_order_meta_gradient_matches_finite_differences(batch_norm):
    analytic, numeric = directional_checks(tiny_learner(batch_norm=batch_norm), EPISODE)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["dense", "batch_norm"])
def test_first_order_differs_from_the_true_gradient(batch_norm):
    analytic, numeric = directional_checks(tiny_learner(first_order=True, batch_norm=batch_norm),
                                           EPISODE)
    assert np.max(np.abs(analytic - numeric) / np.abs(numeric).max()) > 1e-3


def test_stock_keras_batch_norm_would_give_a_wrong_second_order_gradient():
    """Why keras_meta swaps in its BatchNormalization: the stock one drops a term."""
    learner = tiny_learner(batch_norm=True)
    bn = [la for la in learner.model.layers if isinstance(la, keras.layers.BatchNormalization)][0]
    assert type(bn).__module__.startswith("keras_meta")
    bn.__class__ = keras.layers.BatchNormalization
    analytic, numeric = directional_checks(learner, EPISODE)
    assert np.max(np.abs(analytic - numeric) / np.abs(numeric).max()) > 1e-4


def test_one_inner_step_matches_a_hand_computed_update():
    learner = tiny_learner(steps=1)
    sx, sy, qx, qy = (a[0] for a in EPISODE)
    adapted = learner.adapt(sx, sy, steps=1)
    net = learner.model
    with tf.GradientTape() as tape:
        loss = LOSS(sy, net(sx, training=True))
    grads = tape.gradient(loss, net.trainable_variables)
    for a, v, g in zip(adapted.trainable_variables, net.trainable_variables, grads):
        np.testing.assert_allclose(a.numpy(), v.numpy() - 0.5 * g.numpy(), rtol=1e-10)


def test_weight_regularizers_count_in_inner_and_outer_losses():
    l2 = 0.3
    reg = keras.Sequential([keras.Input((6,), dtype="float64"),
                            keras.layers.Dense(3, dtype="float64",
                                               kernel_regularizer=keras.regularizers.L2(l2))])
    plain = keras.Sequential([keras.Input((6,), dtype="float64"),
                              keras.layers.Dense(3, dtype="float64")])
    plain.set_weights(reg.get_weights())
    sx, sy, qx, qy = (a[0] for a in EPISODE)
    a = learners.MAML(reg, loss=LOSS, update_rule=0.5).adapt(sx, sy, steps=1)
    b = learners.MAML(plain, loss=LOSS, update_rule=0.5).adapt(sx, sy, steps=1)
    kernel = reg.trainable_variables[0].numpy()
    # Inner loop: the L2 gradient 2 * l2 * w is part of the step.
    np.testing.assert_allclose(a.trainable_variables[0].numpy(),
                               b.trainable_variables[0].numpy() - 0.5 * 2 * l2 * kernel,
                               rtol=1e-6)  # Keras sums layer losses in float32
    # Outer loss: adds l2 * ||adapted kernel||^2.
    learner = learners.MAML(reg, loss=LOSS, update_rule=0.5)
    loss, _ = meta_loss_and_gradient(learner, tuple(x[:1] for x in EPISODE))
    adapted_kernel = a.trainable_variables[0].numpy()
    unregularized = float(LOSS(qy, a(qx, training=True)))
    np.testing.assert_allclose(float(loss), unregularized + l2 * np.sum(adapted_kernel ** 2),
                               rtol=1e-6)
