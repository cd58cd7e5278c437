"""numpy <-> TensorProto without TensorFlow, checked against TensorFlow's own conversion."""

import numpy as np
import pytest
import tensorflow as tf

from serving import tensor_proto
from serving.signatures import dtype

ARRAYS = [
    np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    np.array([[1.5, -2.25]], np.float64),
    np.array([1, -2, 3], np.int32),
    np.array([[2**40]], np.int64),
    np.array([0, 255], np.uint8),
    np.array([-128, 127], np.int8),
    np.array([True, False]),
    np.array([b"abc", b"\x00\xff"], object),
    np.array([0.5, -1.0], np.float16),
    np.array([1 + 2j], np.complex64),
    np.array([2**32 - 1], np.uint32),
    np.zeros((0, 3), np.float32),
    np.float32(3.0) * np.ones((), np.float32),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
@pytest.mark.parametrize("as_content", [False, True])
def test_round_trip_and_agreement_with_tensorflow(array, as_content):
    proto = tensor_proto.from_numpy(array, as_content=as_content)
    np.testing.assert_array_equal(tensor_proto.to_numpy(proto), array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    ours = tensor_proto.to_numpy(tf.make_tensor_proto(array))
    assert ours.dtype == array.dtype
    np.testing.assert_array_equal(ours, array)


def test_missing_values_repeat_the_last_one_and_empty_means_zeros():
    proto = tensor_proto.from_numpy(np.array([1.0, 2.0], np.float32))
    proto.tensor_shape.dim[0].size = 4
    assert tensor_proto.to_numpy(proto).tolist() == [1.0, 2.0, 2.0, 2.0]
    del proto.float_val[:]
    assert tensor_proto.to_numpy(proto).tolist() == [0.0] * 4


@pytest.mark.parametrize("edit", [
    lambda p: setattr(p, "tensor_content", b"\x00" * 3),
    lambda p: setattr(p.tensor_shape, "unknown_rank", True),
    lambda p: setattr(p.tensor_shape.dim[0], "size", -1),
    lambda p: setattr(p, "dtype", dtype("DT_RESOURCE").enum),
])
def test_malformed_protos_are_refused(edit):
    proto = tensor_proto.from_numpy(np.array([1.0, 2.0], np.float32))
    edit(proto)
    with pytest.raises(tensor_proto.TensorParseError):
        tensor_proto.to_numpy(proto)
