"""Table-driven checks every gradient-based learner must pass."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta import learners, update_rules
from keras_meta.tasks import Sinusoid

from .helpers import sinusoid_batch, sinusoid_net

LEARNERS_UNDER_TEST = [
    ("maml", learners.MAML, {"update_rule": 0.01}),
    ("fomaml", learners.FirstOrderMAML, {"update_rule": 0.01}),
    ("meta_sgd", learners.MetaSGD, {"initial_learning_rate": 0.01, "eval_inner_steps": 1}),
    ("anil", learners.ANIL, {"update_rule": 0.1}),
    ("reptile", learners.Reptile, {"update_rule": 0.01, "inner_steps": 3}),
]
IDS = [row[0] for row in LEARNERS_UNDER_TEST]


def make(cls, kwargs, **extra):
    learner = cls(sinusoid_net(), loss="mse", **{**kwargs, **extra})
    learner.compile(keras.optimizers.Adam(3e-3 if cls is not learners.Reptile else 0.1))
    return learner


@pytest.mark.parametrize("name, cls, kwargs", LEARNERS_UNDER_TEST, ids=IDS)
def test_fit_lowers_the_query_loss(name, cls, kwargs):
    assert_fit_lowers_the_query_loss(make(cls, {"eval_inner_steps": 5, **kwargs}))


def assert_fit_lowers_the_query_loss(learner):
    tasks = Sinusoid(shots=10)
    val = tasks.dataset("val", 25, num_batches=4)
    before = learner.evaluate(val, verbose=0, return_dict=True)["loss"]
    learner.fit(tasks.dataset("train", 10), steps_per_epoch=300, verbose=0)
    after = learner.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("name, cls, kwargs", LEARNERS_UNDER_TEST, ids=IDS)
def test_adapt_returns_keras_model_matching_call(name, cls, kwargs):
    learner = make(cls, kwargs)
    ep = sinusoid_batch(tasks=1, shots=5)
    adapted = learner.adapt(ep.support_x[0], ep.support_y[0], steps=2)
    assert isinstance(adapted, keras.Model) and adapted is not learner.model
    in_graph = learner(ep.inputs(), steps=2)[0]
    np.testing.assert_allclose(adapted.predict(ep.query_x[0], verbose=0), in_graph, rtol=1e-5,
                               atol=1e-5)
    # Adaptation changed the prediction and left the meta-model untouched.
    unadapted = learner.model.predict(ep.query_x[0], verbose=0)
    assert np.abs(unadapted - in_graph).max() > 1e-3
    assert np.mean((in_graph - ep.query_y[0]) ** 2) != np.mean((unadapted - ep.query_y[0]) ** 2)


@pytest.mark.parametrize("name, cls, kwargs", LEARNERS_UNDER_TEST, ids=IDS)
def test_config_round_trip(name, cls, kwargs):
    learner = make(cls, kwargs)
    clone = cls.from_config(learner.get_config())
    assert type(clone) is cls
    assert clone.get_config()["inner_steps"] == learner.inner_steps
    assert len(clone.trainable_variables) == len(learner.trainable_variables)


@pytest.mark.parametrize("name, cls, kwargs", LEARNERS_UNDER_TEST, ids=IDS)
def test_meta_gradient_reaches_every_meta_parameter(name, cls, kwargs):
    learner = make(cls, kwargs)
    before = [v.numpy().copy() for v in learner.trainable_variables]
    learner.fit(Sinusoid(shots=5).dataset("train", 4), steps_per_epoch=2, verbose=0)
    moved = [not np.allclose(b, v.numpy()) for b, v in zip(before, learner.trainable_variables)]
    assert all(moved), [v.path for v, m in zip(learner.trainable_variables, moved) if not m]


def test_no_retracing_across_steps():
    learner = make(learners.MAML, {"update_rule": 0.01})
    ds = Sinusoid(shots=5).dataset("train", 4)
    learner.fit(ds, steps_per_epoch=3, verbose=0)
    fn = learner.train_function
    learner.fit(ds, steps_per_epoch=3, verbose=0)
    assert learner.train_function is fn
    traced = [f for f in [getattr(fn, "experimental_get_tracing_count", None)] if f]
    if traced:
        assert traced[0]() == 1


def test_anil_adapts_only_the_head():
    learner = make(learners.ANIL, {"update_rule": 0.5})
    ep = sinusoid_batch(tasks=1)
    adapted = learner.adapt(ep.support_x[0], ep.support_y[0], steps=3)
    head = len(learner.model.trainable_variables) - 2
    for i, (a, b) in enumerate(zip(adapted.trainable_variables, learner.model.trainable_variables)):
        same = np.allclose(a.numpy(), b.numpy())
        assert same == (i < head), i


def test_meta_sgd_learns_its_step_sizes():
    learner = make(learners.MetaSGD, {"initial_learning_rate": 0.01})
    rule = learner.update_rule
    assert isinstance(rule, update_rules.LearnedStepSizes)
    assert [tuple(s.shape) for s in rule.step_sizes] == [
        tuple(v.shape) for v in learner.model.trainable_variables]
    learner.fit(Sinusoid(shots=5).dataset("train", 4), steps_per_epoch=20, verbose=0)
    assert not np.allclose(rule.step_sizes[0].numpy(), 0.01)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "graph"])
def test_vectorized_task_batching_matches_map(compiled):
    ep = sinusoid_batch(tasks=3)
    net = sinusoid_net()
    a = learners.MAML(net, loss="mse", task_batching="map")
    b = learners.MAML(net, loss="mse", task_batching="vectorize")
    ga, la, pa = (tf.function(a.meta_gradients) if compiled else a.meta_gradients)(
        ep.inputs(), ep.query_y)
    gb, lb, pb = (tf.function(b.meta_gradients) if compiled else b.meta_gradients)(
        ep.inputs(), ep.query_y)
    np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_auto_task_batching_vectorizes_dense_models_and_maps_convolutions():
    from keras_meta import models

    assert learners.MAML(sinusoid_net(), loss="mse").resolved_task_batching == "vectorize"
    assert learners.MAML(models.conv4(), loss="mse").resolved_task_batching == "map"


def test_inner_steps_train_and_test_are_separate():
    learner = make(learners.MAML, {"update_rule": 0.01}, inner_steps=1, eval_inner_steps=7)
    assert learner.protocol()["inner_steps_train"] == 1
    assert learner.protocol()["inner_steps_test"] == 7
    ep = sinusoid_batch(tasks=2)
    np.testing.assert_allclose(learner(ep.inputs()), learner(ep.inputs(), steps=7))


@pytest.mark.parametrize("kwargs, message", [
    ({"inner_steps": -1}, "inner_steps"),
    ({"bn_policy": "batch"}, "bn_policy"),
    ({"task_batching": "loop"}, "task_batching"),
    ({"update_rule": "fast"}, "update_rule"),
    ({"adapt_layers": ["nope"]}, "adapt_layers"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        learners.MAML(sinusoid_net(), loss="mse", **kwargs)


def test_unbuilt_model_is_rejected_with_a_fix():
    net = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="must be built"):
        learners.MAML(net, loss="mse")


def test_missing_loss_is_explained():
    learner = learners.MAML(sinusoid_net())
    learner.compile("adam")
    with pytest.raises(ValueError, match="no task loss"):
        learner.fit(Sinusoid().dataset("train", 2), steps_per_epoch=1, verbose=0)


def test_reptile_rejects_learned_rules():
    with pytest.raises(ValueError, match="Reptile"):
        learners.Reptile(sinusoid_net(), loss="mse",
                         update_rule=update_rules.LearnedStepSizes(0.01))


def test_reptile_inner_mini_batches_visit_each_support_example_once_per_pass():
    learner = make(learners.Reptile, {"update_rule": 0.01, "inner_steps": 4},
                   inner_batch_size=5)
    learner.optimizer.build(learner.trainable_variables)
    support_y = tf.zeros([3, 10, 1])
    orders = learner._step_orders(support_y).numpy()
    assert orders.shape == (3, 4, 5)
    for task in orders:  # steps 0-1 are one pass over the 10 examples, steps 2-3 the next
        assert sorted(task[:2].ravel()) == list(range(10))
        np.testing.assert_array_equal(task[2:], task[:2])
    assert len({tuple(t.ravel()) for t in orders}) == 3  # each task its own order
    np.testing.assert_array_equal(learner._step_orders(support_y), orders)  # resumable
    learner.optimizer.iterations.assign_add(1)
    assert not np.array_equal(learner._step_orders(support_y), orders)


def test_reptile_with_inner_mini_batches_learns_and_round_trips():
    learner = make(learners.Reptile, {"update_rule": 0.01, "inner_steps": 4,
                                      "eval_inner_steps": 5}, inner_batch_size=5)
    assert learners.Reptile.from_config(learner.get_config()).inner_batch_size == 5
    assert learner.protocol()["inner_batch_size"] == 5
    assert_fit_lowers_the_query_loss(learner)


def test_reptile_inner_batch_orders_follow_the_seed_and_survive_get_config():
    def orders(learner):
        learner.optimizer.build(learner.trainable_variables)
        return learner._step_orders(tf.zeros([3, 10, 1])).numpy()

    kwargs = {"update_rule": 0.01, "inner_steps": 4}
    first = make(learners.Reptile, kwargs, inner_batch_size=np.int64(5), seed=1)
    assert first.inner_batch_size == 5 and type(first.inner_batch_size) is int
    other_seed = make(learners.Reptile, kwargs, inner_batch_size=5, seed=2)
    assert not np.array_equal(orders(first), orders(other_seed))
    config = first.get_config()
    assert config["seed"] == 1
    reloaded = learners.Reptile.from_config(config)
    reloaded.compile(optimizer="sgd", loss="mse")
    np.testing.assert_array_equal(orders(reloaded), orders(first))
    keras.utils.set_random_seed(3)
    drawn = learners.Reptile(sinusoid_net(), loss="mse", inner_batch_size=5).seed
    keras.utils.set_random_seed(3)
    assert learners.Reptile(sinusoid_net(), loss="mse", inner_batch_size=5).seed == drawn


@pytest.mark.parametrize("size", [0, -2, 2.5, True])
def test_reptile_rejects_bad_inner_batch_sizes(size):
    with pytest.raises(ValueError, match="inner_batch_size"):
        learners.Reptile(sinusoid_net(), loss="mse", inner_batch_size=size)


def test_reptile_inner_batch_larger_than_the_support_set_is_explained():
    learner = make(learners.Reptile, {"update_rule": 0.01}, inner_batch_size=20)
    with pytest.raises(ValueError, match=r"inner_batch_size.*\(20\).*10 examples"):
        learner.fit(Sinusoid(shots=10).dataset("train", 2), steps_per_epoch=1, verbose=0)


def test_subclassed_model_works():
    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(16, activation="relu")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    net = Net()
    net(tf.zeros((1, 1)))
    learner = learners.MAML(net, loss="mse", update_rule=0.01)
    learner.compile(keras.optimizers.Adam(1e-3))
    learner.fit(Sinusoid(shots=5).dataset("train", 4), steps_per_epoch=2, verbose=0)
    ep = sinusoid_batch(tasks=1)
    assert learner.adapt(ep.support_x[0], ep.support_y[0]).predict(
        ep.query_x[0], verbose=0).shape == (5, 1)


def test_chunked_meta_gradient_equals_the_whole_batch_gradient():
    ep = sinusoid_batch(tasks=6)
    net = sinusoid_net()
    whole = learners.MAML(net, loss="mse")
    chunked = learners.MAML(net, loss="mse", task_chunk_size=2)
    g1, l1, p1 = whole.meta_gradients(ep.inputs(), ep.query_y)
    g2, l2, p2 = tf.function(chunked.meta_gradients)(ep.inputs(), ep.query_y)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of `task_chunk_size`"):
        learners.MAML(net, loss="mse", task_chunk_size=4).meta_gradients(ep.inputs(), ep.query_y)


def test_chunked_training_reports_the_same_metrics():
    """``task_chunk_size`` with compiled metrics on a conv net (the Omniglot configs)."""
    rng = np.random.default_rng(0)
    inputs = {"support_x": rng.normal(size=(4, 4, 6, 6, 1)).astype("float32"),
              "support_y": np.tile(np.arange(2, dtype="int32"), (4, 2)),
              "query_x": rng.normal(size=(4, 6, 6, 6, 1)).astype("float32")}
    query_y = np.tile(np.arange(2, dtype="int32"), (4, 3))
    logs = []
    for chunk in (None, 2):
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3),
                                keras.layers.Flatten(), keras.layers.Dense(2)])
        learner = learners.MAML(net, update_rule=0.1, task_chunk_size=chunk,
                                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        learner.compile(keras.optimizers.SGD(0.1), metrics=["accuracy"])
        logs.append(learner.fit(inputs, query_y, batch_size=4, epochs=2, verbose=0).history)
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(logs[1][name], logs[0][name], rtol=1e-5)


def _first_update(cls, kwargs, policy, chunk=None):
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        learner = cls(sinusoid_net(), loss="mse", task_chunk_size=chunk, **kwargs)
        # under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer
        learner.compile(keras.optimizers.SGD(0.05))
        before = [v.numpy().copy() for v in learner.trainable_variables]
        data = Sinusoid(shots=5).dataset("train", meta_batch_size=4, num_batches=1)
        learner.fit(data, verbose=0)
        return type(learner.optimizer).__name__, [
            v.numpy() - b for v, b in zip(learner.trainable_variables, before)]
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name, cls, kwargs, chunk", [
    ("maml", learners.MAML, {"update_rule": 0.01}, None),
    ("maml_task_chunks", learners.MAML, {"update_rule": 0.01}, 2),
    ("reptile", learners.Reptile, {"update_rule": 0.01, "inner_steps": 2}, None),
])
def test_mixed_precision_steps_match_float32(name, cls, kwargs, chunk):
    # The optimizer divides what it applies by its loss scale, so the learner must
    # differentiate the scaled loss; without that the steps were 2**15 times too small.
    wrapper, mixed = _first_update(cls, kwargs, "mixed_float16", chunk)
    assert wrapper == "LossScaleOptimizer"
    _, full = _first_update(cls, kwargs, "float32", chunk)
    for a, b in zip(mixed, full):
        np.testing.assert_allclose(a, b, rtol=0.05, atol=0.01 * np.abs(b).max())
