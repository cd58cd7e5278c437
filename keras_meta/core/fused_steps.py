"""Several training (or test) steps in one XLA program.

Keras runs ``steps_per_execution`` steps in a graph loop that launches the compiled step
once per batch. For small meta-learning problems (sinusoid MAML: well under a millisecond
of arithmetic per meta-step) that launch, the iterator op between launches and the
bookkeeping around them cost as much as the step itself. Here the execution's batches are
first pulled from the iterator and stacked into one block, then a single XLA program runs
the steps over the block in an on-device loop: one launch per block instead of one per
step.

The semantics are Keras': the same steps consume the same batches in the same order, an
execution consumes ``steps_per_execution`` batches (fewer at the end of a finite dataset)
and returns the model's metric results after its last step. Blocks are capped at
``MAX_BLOCK_BYTES`` of input data (large image episodes are fused a few at a time: their
steps are long enough that launch overhead does not matter).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

MAX_BLOCK_BYTES = 64 * 2**20


def fused_function(model, step_function: Callable, fallback: Callable) -> Callable | None:
    """A Keras ``train_function``/``test_function`` running steps in fused XLA blocks.

    Args:
        model: a compiled Keras model whose ``step_function`` returns its metric results
            (``model.get_metrics_result()``), as Keras' own ``train_step`` does.
        step_function: ``model.train_step`` or ``model.test_step``.
        fallback: Keras' own function for the same step, used for datasets whose batches
            cannot be stacked (shapes not fully static, or non-numeric tensors).

    Returns:
        ``function(iterator) -> logs`` for Keras' fit/evaluate loop, or None when fusing does
        not apply (no XLA, one step per execution, eager mode, or a distribution strategy),
        in which case Keras' own loop is the right one.
    """
    steps = int(model.steps_per_execution)
    if (steps <= 1 or model.run_eagerly or not model.jit_compile
            or type(model.distribute_strategy).__name__ != "_DefaultDistributionStrategy"):
        return None

    @tf.function(reduce_retracing=True)
    def pull(iterator, size: int):
        specs = tf.nest.flatten(iterator.element_spec)
        arrays = [tf.TensorArray(s.dtype, size=size, element_shape=s.shape) for s in specs]

        def cond(i, optional, arrays):
            return tf.logical_and(i < size, optional.has_value())

        def body(i, optional, arrays):
            values = tf.nest.flatten(optional.get_value())
            arrays = [a.write(i, v) for a, v in zip(arrays, values)]
            following = tf.cond(i + 1 < size, iterator.get_next_as_optional, lambda: optional)
            return i + 1, following, arrays

        count, _, arrays = tf.while_loop(
            cond, body, (tf.constant(0), iterator.get_next_as_optional(), arrays),
            maximum_iterations=size)
        block = [a.gather(tf.range(count)) for a in arrays]
        return count, tf.nest.pack_sequence_as(iterator.element_spec, block)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def run(block):
        count = tf.shape(tf.nest.flatten(block)[0])[0]

        def body(i):
            outputs = step_function(tf.nest.map_structure(lambda t: t[i], block))
            with tf.control_dependencies(tf.nest.flatten(outputs)):
                return i + 1

        tf.while_loop(lambda i: i < count, body, (tf.constant(0),))
        return model.get_metrics_result()

    def function(iterator):
        if not isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            return fallback(iterator)
        specs = tf.nest.flatten(iterator.element_spec)
        if not all(isinstance(s, tf.TensorSpec) and s.shape.is_fully_defined()
                   and (s.dtype.is_floating or s.dtype.is_integer or s.dtype.is_bool)
                   for s in specs):
            return fallback(iterator)
        element_bytes = sum(s.shape.num_elements() * s.dtype.size for s in specs)
        size = int(np.clip(MAX_BLOCK_BYTES // max(element_bytes, 1), 1, steps))
        outputs, remaining = None, steps
        while remaining > 0:
            requested = min(size, remaining)
            count, block = pull(iterator, requested)
            count = int(count)
            if count:
                outputs = run(block)
            if count < requested:  # the dataset ended
                break
            remaining -= requested
        if outputs is None:
            raise StopIteration
        return outputs

    return function
