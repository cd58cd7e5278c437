"""Signatures as the server sees them: named, typed, shaped inputs and outputs of one function.

A backend describes each servable function with a `Signature`, the information of a SavedModel's
`SignatureDef` that TF Serving uses. This module holds TensorFlow's `DataType` table (no
TensorFlow import needed), input validation shared by both backends, and the proto-JSON form of a
`SignatureDef` that the REST metadata endpoint prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from serving.errors import invalid_argument

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclasses.dataclass(frozen=True)
class DType:
    """One `tensorflow.DataType`: its enum value and name, TF's short name, a numpy type."""

    enum: int
    name: str  # "DT_FLOAT"
    short: str  # DataTypeString: "float"
    numpy: type | None  # None where numpy has no equivalent (bfloat16, resource, variant)


_DTYPES = [
    DType(0, "DT_INVALID", "INVALID", None),
    DType(1, "DT_FLOAT", "float", np.float32),
    DType(2, "DT_DOUBLE", "double", np.float64),
    DType(3, "DT_INT32", "int32", np.int32),
    DType(4, "DT_UINT8", "uint8", np.uint8),
    DType(5, "DT_INT16", "int16", np.int16),
    DType(6, "DT_INT8", "int8", np.int8),
    DType(7, "DT_STRING", "string", np.object_),
    DType(8, "DT_COMPLEX64", "complex64", np.complex64),
    DType(9, "DT_INT64", "int64", np.int64),
    DType(10, "DT_BOOL", "bool", np.bool_),
    DType(11, "DT_QINT8", "qint8", None),
    DType(12, "DT_QUINT8", "quint8", None),
    DType(13, "DT_QINT32", "qint32", None),
    DType(14, "DT_BFLOAT16", "bfloat16", None),
    DType(15, "DT_QINT16", "qint16", None),
    DType(16, "DT_QUINT16", "quint16", None),
    DType(17, "DT_UINT16", "uint16", np.uint16),
    DType(18, "DT_COMPLEX128", "complex128", np.complex128),
    DType(19, "DT_HALF", "half", np.float16),
    DType(20, "DT_RESOURCE", "resource", None),
    DType(21, "DT_VARIANT", "variant", None),
    DType(22, "DT_UINT32", "uint32", np.uint32),
    DType(23, "DT_UINT64", "uint64", np.uint64),
]
DTYPES_BY_ENUM = {d.enum: d for d in _DTYPES}
DTYPES_BY_NAME = {d.name: d for d in _DTYPES}
_BY_NUMPY = {np.dtype(d.numpy): d for d in _DTYPES if d.numpy is not None}


def dtype(value: int | str) -> DType:
    """The `DType` for an enum value or name ("DT_FLOAT"); raises ValueError for others."""
    table = DTYPES_BY_NAME if isinstance(value, str) else DTYPES_BY_ENUM
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"unknown TensorFlow DataType {value!r}") from None


def dtype_of_array(array: np.ndarray) -> DType:
    """The `DType` of a numpy array (bytes and str arrays are DT_STRING)."""
    if array.dtype.kind in "OSU":
        return DTYPES_BY_NAME["DT_STRING"]
    try:
        return _BY_NUMPY[array.dtype]
    except KeyError:
        raise ValueError(f"numpy dtype {array.dtype} has no TensorFlow DataType") from None


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A `TensorInfo`: graph tensor name, dtype, shape (None = unknown rank, -1 = unknown size)."""

    name: str
    dtype: DType
    shape: tuple[int, ...] | None

    def proto_json(self) -> dict:
        """The `TensorInfo` as protobuf's JSON printer writes it (proto field names, defaults)."""
        if self.shape is None:
            shape = {"dim": [], "unknown_rank": True}
        else:
            shape = {"dim": [{"size": str(s), "name": ""} for s in self.shape],
                     "unknown_rank": False}
        return {"name": self.name, "dtype": self.dtype.name, "tensor_shape": shape}

    def shape_string(self) -> str:
        if self.shape is None:
            return "[?]"
        return "[" + ",".join(str(s) for s in self.shape) + "]"


@dataclasses.dataclass(frozen=True)
class Signature:
    """A `SignatureDef`: inputs and outputs by alias, and the method name."""

    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    method_name: str = PREDICT_METHOD_NAME

    def proto_json(self) -> dict:
        return {
            "inputs": {k: self.inputs[k].proto_json() for k in sorted(self.inputs)},
            "outputs": {k: self.outputs[k].proto_json() for k in sorted(self.outputs)},
            "method_name": self.method_name,
            "defaults": {},
        }

    def debug_string(self) -> str:
        """The `SignatureDef` in protobuf text format (C++ `DebugString()`), for error messages."""
        lines = []

        def tensor_map(field, tensors):
            for alias in sorted(tensors):
                spec = tensors[alias]
                lines.append(f"{field} {{")
                lines.append(f'  key: "{alias}"')
                lines.append("  value {")
                lines.append(f'    name: "{spec.name}"')
                lines.append(f"    dtype: {spec.dtype.name}")
                lines.append("    tensor_shape {")
                if spec.shape is None:
                    lines.append("      unknown_rank: true")
                else:
                    for size in spec.shape:
                        lines.extend(["      dim {", f"        size: {size}", "      }"])
                lines.extend(["    }", "  }", "}"])

        tensor_map("inputs", self.inputs)
        tensor_map("outputs", self.outputs)
        if self.method_name:
            lines.append(f'method_name: "{self.method_name}"')
        return "\n".join(lines) + "\n"


def init_op_signature() -> Signature:
    """The `__saved_model_init_op` entry that every TF2 SavedModel lists among its signatures."""
    no_op = TensorSpec("NoOp", DTYPES_BY_NAME["DT_INVALID"], None)
    return Signature(inputs={}, outputs={INIT_OP_SIGNATURE: no_op}, method_name="")


def shape_string(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(int(s)) for s in shape) + "]"


def check_inputs(signature: Signature, inputs: Mapping[str, np.ndarray]) -> None:
    """Checks dtypes and shapes of a complete set of inputs against the signature.

    TF Serving feeds tensors to its session and reports a dtype mismatch as the session does
    ("Expects arg[i] to be float but double is provided", args in the order of the sorted feed
    names); a shape mismatch surfaces there as whatever error the first failing kernel raises.
    Both backends here check shapes up front instead, with one message naming the input.
    """
    feeds = sorted(signature.inputs, key=lambda alias: signature.inputs[alias].name)
    for index, alias in enumerate(feeds):
        spec, array = signature.inputs[alias], inputs[alias]
        got = dtype_of_array(array)
        if got.enum != spec.dtype.enum:
            raise invalid_argument(
                f"Expects arg[{index}] to be {spec.dtype.short} but {got.short} is provided")
    for alias in sorted(signature.inputs):
        spec, array = signature.inputs[alias], inputs[alias]
        if spec.shape is None:
            continue
        compatible = len(spec.shape) == array.ndim and all(
            want < 0 or want == got for want, got in zip(spec.shape, array.shape))
        if not compatible:
            raise invalid_argument(
                f"input tensor alias {alias}: shape {shape_string(array.shape)} is not "
                f"compatible with the signature's shape {spec.shape_string()}")
