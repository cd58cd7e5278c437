"""numpy <-> `tensorflow.TensorProto` without TensorFlow (what `tf.make_ndarray` and
`tf.make_tensor_proto` do, for the dtypes a served model uses).

Decoding follows `Tensor::FromProto`: `tensor_content` when present (its size must match the
shape exactly), else the typed repeated field, where missing trailing values repeat the last one
and an empty field means zeros. Encoding follows `Tensor::AsProtoField` (TF Serving's default
for predict responses) or `AsProtoTensorContent` (with
`--enable_serialization_as_tensor_content`).
"""

from __future__ import annotations

import math

import numpy as np

from serving import _protos
from serving.signatures import DType, dtype, dtype_of_array

# dtype name -> the TensorProto field holding its values.
_FIELDS = {
    "DT_FLOAT": "float_val",
    "DT_DOUBLE": "double_val",
    "DT_INT32": "int_val",
    "DT_INT16": "int_val",
    "DT_INT8": "int_val",
    "DT_UINT8": "int_val",
    "DT_UINT16": "int_val",
    "DT_INT64": "int64_val",
    "DT_BOOL": "bool_val",
    "DT_STRING": "string_val",
    "DT_HALF": "half_val",
    "DT_COMPLEX64": "scomplex_val",
    "DT_COMPLEX128": "dcomplex_val",
    "DT_UINT32": "uint32_val",
    "DT_UINT64": "uint64_val",
}


class TensorParseError(ValueError):
    """A TensorProto that `Tensor::FromProto` rejects."""


def _shape(proto) -> tuple[int, ...]:
    shape = proto.tensor_shape
    if shape.unknown_rank:
        raise TensorParseError("unknown rank")
    dims = tuple(int(d.size) for d in shape.dim)
    if any(d < 0 for d in dims):
        raise TensorParseError("negative dimension")
    return dims


def to_numpy(proto) -> np.ndarray:
    """The array a TensorProto holds; raises `TensorParseError` where TensorFlow would fail."""
    try:
        dt: DType = dtype(int(proto.dtype))
    except ValueError as e:
        raise TensorParseError(str(e)) from None
    field = _FIELDS.get(dt.name)
    if field is None or dt.numpy is None:
        raise TensorParseError(f"unsupported dtype {dt.name}")
    shape = _shape(proto)
    n = math.prod(shape)
    if dt.name == "DT_STRING":
        if proto.tensor_content:
            raise TensorParseError("string tensors in tensor_content are not supported")
        values = list(proto.string_val)
        if n and not values:
            values = [b""]
        values = (values + [values[-1]] * (n - len(values)))[:n] if n else []
        array = np.empty(n, dtype=object)
        array[:] = values
        return array.reshape(shape)
    numpy_type = np.dtype(dt.numpy)
    if proto.tensor_content:
        content = proto.tensor_content
        if len(content) != n * numpy_type.itemsize:
            raise TensorParseError("tensor_content size does not match the shape")
        return np.frombuffer(content, dtype=numpy_type.newbyteorder("<")).astype(
            numpy_type).reshape(shape)
    raw = getattr(proto, field)
    if dt.name == "DT_HALF":
        values = np.array(raw, dtype=np.int64).astype(np.uint16).view(np.float16)
    elif dt.name in ("DT_COMPLEX64", "DT_COMPLEX128"):
        pairs = np.array(raw, dtype=np.float64).reshape(-1, 2)
        values = (pairs[:, 0] + 1j * pairs[:, 1]).astype(numpy_type)
    elif field == "int_val" and dt.name != "DT_INT32":
        values = np.array(raw, dtype=np.int64).astype(numpy_type)  # a C cast, like TF
    else:
        values = np.array(raw, dtype=numpy_type)
    if n == 0:
        return np.zeros(shape, dtype=numpy_type)
    if values.size == 0:
        return np.zeros(shape, dtype=numpy_type)
    if values.size < n:
        values = np.concatenate([values, np.full(n - values.size, values[-1], numpy_type)])
    return values[:n].reshape(shape)


def from_numpy(array: np.ndarray, as_content: bool = False):
    """A TensorProto holding `array` (typed fields, or `tensor_content` when `as_content`)."""
    proto = _protos.load().tensor_pb2.TensorProto()
    array = np.asarray(array)
    dt = dtype_of_array(array)
    proto.dtype = dt.enum
    for size in array.shape:
        proto.tensor_shape.dim.add(size=int(size))
    if dt.name == "DT_STRING":
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist())
    elif as_content:
        proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    elif dt.name == "DT_HALF":
        proto.half_val.extend(array.ravel().view(np.uint16).tolist())
    elif dt.name in ("DT_COMPLEX64", "DT_COMPLEX128"):
        flat = array.ravel()
        getattr(proto, _FIELDS[dt.name]).extend(
            np.stack([flat.real, flat.imag], axis=1).ravel().tolist())
    else:
        getattr(proto, _FIELDS[dt.name]).extend(array.ravel().tolist())
    return proto
