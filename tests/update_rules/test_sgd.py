import numpy as np
import pytest
import tensorflow as tf

from keras_meta import update_rules


def _step(rule, step):
    params = [tf.constant([1.0, 2.0])]
    grads = [tf.constant([1.0, -1.0])]
    new, _ = rule.apply(grads, rule.init(params), params, step)
    return new[0].numpy()


def test_a_float_is_one_step_size_for_every_step():
    rule = update_rules.get(0.5)
    for step in (0, 3):
        np.testing.assert_allclose(_step(rule, step), [0.5, 2.5])


def test_a_list_gives_one_step_size_per_step_and_repeats_the_last():
    rule = update_rules.get([0.1, 0.05])
    np.testing.assert_allclose(_step(rule, 0), [0.9, 2.1])
    np.testing.assert_allclose(_step(rule, 1), [0.95, 2.05])
    np.testing.assert_allclose(_step(rule, 7), [0.95, 2.05])


def test_a_schedule_works_with_a_tensor_step_in_a_graph():
    rule = update_rules.SGD([0.1, 0.05])
    steps = tf.function(lambda s: rule.apply([tf.ones([2])], (), [tf.zeros([2])], s)[0][0])
    np.testing.assert_allclose(steps(tf.constant(0)).numpy(), [-0.1, -0.1])
    np.testing.assert_allclose(steps(tf.constant(5)).numpy(), [-0.05, -0.05])


def test_config_round_trips():
    for rate in (0.4, [0.1, 0.05]):
        config = update_rules.SGD(rate).get_config()
        assert config["learning_rate"] == rate
        assert update_rules.SGD.from_config(config).learning_rate == update_rules.SGD(
            rate).learning_rate


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), [], [0.1, 0.0], ["0.1"], True])
def test_bad_step_sizes_are_refused_naming_the_argument(bad):
    with pytest.raises(ValueError, match="learning_rate"):
        update_rules.SGD(bad)
