"""TF Serving's JSON <-> tensor rules for the REST API (`util/json_tensor.cc`), on numpy.

Requests: `{"signature_name"?, "instances": [...]}` (row format: one entry per batch element, all
inputs batched along dim 0) or `{"signature_name"?, "inputs": ...}` (columnar: a tensor, or an
object of named tensors). Values are checked against each input's dtype the way TF Serving
checks them, and every error carries TF Serving's message, so a client sees the same
`{"error": ...}` from this server as from `tensorflow_model_server`.

Responses: `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar), the output name omitted
when there is only one; floats printed like TF Serving (6 significant digits when they round-trip,
else 9 (float) or 17 (double)), NaN and infinities as `NaN`, `Infinity`, `-Infinity`, and
outputs whose name ends in `_bytes` as `{"b64": ...}`. The text layout is RapidJSON's
`PrettyWriter`, as TF Serving writes it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import itertools
import math
from collections.abc import Mapping

import numpy as np

from serving import _rapidjson
from serving.errors import Code, ServingError, invalid_argument
from serving.signatures import DType, dtype_of_array, shape_string

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class Format(enum.Enum):
    ROW = "instances"
    COLUMNAR = "inputs"


# --------------------------------------------------------------------------------------------
# Parsing the body.

def parse_body(body: bytes) -> dict:
    """Parses a request body (`ParseJson`): a JSON object, or TF Serving's parse error."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = _rapidjson.parse(body)
    except _rapidjson.ParseError as e:
        raise invalid_argument(f"JSON Parse error: {e.message} at offset: {e.offset}") from None
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    return doc


def _format_error(value, *parts) -> ServingError:
    return invalid_argument(f"JSON Value: {_rapidjson.debug_string(value)} " + "".join(parts))


def signature_name(doc: dict) -> str:
    """The optional `signature_name` of a request ("" when absent)."""
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_rapidjson.debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value.")
    return name


# --------------------------------------------------------------------------------------------
# JSON values -> numpy.

def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_int32(v) -> bool:
    return type(v) is int and INT32_MIN <= v <= INT32_MAX


def _is_int64(v) -> bool:
    return type(v) is int and -(2**63) <= v < 2**63


def _is_uint32(v) -> bool:
    return type(v) is int and 0 <= v < 2**32


def _is_uint64(v) -> bool:
    return type(v) is int and 0 <= v < 2**64


def _is_number(v) -> bool:
    return type(v) is int or type(v) is float


# Per dtype: the leaf check of `AddValueToTensor`, the leaf types that may pass it, and (for
# integers) the range those ints must lie in.
_LEAF_RULES = {
    "DT_FLOAT": (_is_number, {int, float}, None),
    "DT_DOUBLE": (_is_number, {int, float}, None),
    "DT_INT32": (_is_int32, {int}, (INT32_MIN, INT32_MAX)),
    "DT_INT16": (_is_int32, {int}, (INT32_MIN, INT32_MAX)),
    "DT_INT8": (_is_int32, {int}, (INT32_MIN, INT32_MAX)),
    "DT_UINT8": (_is_int32, {int}, (INT32_MIN, INT32_MAX)),
    "DT_STRING": (lambda v: isinstance(v, str), {str}, None),
    "DT_INT64": (_is_int64, {int}, (-(2**63), 2**63 - 1)),
    "DT_BOOL": (lambda v: type(v) is bool, {bool}, None),
    "DT_UINT32": (_is_uint32, {int}, (0, 2**32 - 1)),
    "DT_UINT64": (_is_uint64, {int}, (0, 2**64 - 1)),
}


def _type_error(value, dt: DType) -> ServingError:
    return invalid_argument(
        f"JSON Value: {_rapidjson.debug_string(value)} Type: {_rapidjson.type_name(value)} "
        f"is not of expected type: {dt.short}")


def _decode_b64(value) -> bytes:
    if not _is_b64(value):
        raise invalid_argument(f"JSON Value: {_rapidjson.debug_string(value)} "
                               "not formatted correctly for base64 data")
    text = value["b64"]
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise invalid_argument("Unable to base64 decode") from None


def _check_leaf(value, level: int, rank: int, dt: DType) -> None:
    """`FillTensorProto` on a non-list value."""
    if level != rank:
        raise invalid_argument(
            f"JSON Value: {_rapidjson.debug_string(value)} found at incorrect level: "
            f"{level + 1} in the JSON DOM. Expected at level: {rank}")
    if isinstance(value, dict):
        if dt.name == "DT_STRING":
            _decode_b64(value)
            return
        raise _type_error(value, dt)
    rule = _LEAF_RULES.get(dt.name)
    if rule is None:
        raise ServingError(Code.UNIMPLEMENTED, f"Conversion of JSON Value: "
                           f"{_rapidjson.debug_string(value)} to type: {dt.short}")
    if not rule[0](value):
        raise _type_error(value, dt)


def _check_leaf_list(values: list, rank: int, dt: DType) -> None:
    """The last level of a tensor: every element a valid leaf (fast when they all are)."""
    rule = _LEAF_RULES.get(dt.name)
    if rule is not None and values:
        types = set(map(type, values))
        if types <= rule[1]:
            bounds = rule[2]
            if bounds is None or (bounds[0] <= min(values) and max(values) <= bounds[1]):
                return
    for v in values:
        if type(v) is list:
            raise invalid_argument(
                f"Encountered list at unexpected level: {rank} expected < {rank}")
        _check_leaf(v, rank, rank, dt)


def _check_list(values: list, level: int, shape: list[int], dt: DType) -> None:
    rank = len(shape)
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(values) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(values)} at level: {level} "
            f"expected size: {shape[level]}")
    if level == rank - 1:
        _check_leaf_list(values, rank, dt)
        return
    for v in values:
        if type(v) is list:
            _check_list(v, level + 1, shape, dt)
        else:
            _check_leaf(v, level + 1, rank, dt)


def dense_shape(value) -> list[int]:
    """`GetDenseTensorShape`: the sizes of the first element at each nesting level."""
    shape = []
    while type(value) is list:
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _strings(value):
    if type(value) is list:
        return [_strings(v) for v in value]
    if isinstance(value, dict):
        return _decode_b64(value)
    return value.encode("utf-8", "surrogateescape")


def _to_array(value, shape: list[int], dt: DType) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # e.g. 1e300 -> float32 inf, as in C
        return _convert(value, shape, dt)


def _convert(value, shape: list[int], dt: DType) -> np.ndarray:
    if dt.name == "DT_STRING":
        array = np.empty(shape, dtype=object)
        array[...] = _strings(value)
        return array
    if dt.name in ("DT_FLOAT", "DT_DOUBLE"):
        try:
            return np.array(value, dtype=dt.numpy).reshape(shape)
        except OverflowError:  # ints beyond int64, which RapidJSON holds as doubles
            return np.array(_floats(value), dtype=dt.numpy).reshape(shape)
    if dt.name in ("DT_INT16", "DT_INT8", "DT_UINT8"):  # int_val, then a C cast
        return np.array(value, dtype=np.int64).reshape(shape).astype(dt.numpy)
    return np.array(value, dtype=dt.numpy).reshape(shape)


def _floats(value):
    return [_floats(v) for v in value] if type(value) is list else float(value)


def _fast_numbers(value, shape: list[int], dt: DType) -> np.ndarray | None:
    """The tensor of a well-formed numeric value, checked at C speed; None if anything is off
    (the slow path then finds the first problem in TF Serving's order)."""
    rule = _LEAF_RULES.get(dt.name)
    if rule is None or dt.name == "DT_STRING" or not shape:
        return None
    flat = value
    try:
        for _ in range(len(shape) - 1):
            flat = list(itertools.chain.from_iterable(flat))
    except TypeError:  # a number where a list belongs
        return None
    if len(flat) != math.prod(shape) or not set(map(type, flat)) <= rule[1]:
        return None
    bounds = rule[2]
    if bounds is not None and flat and not (bounds[0] <= min(flat) and max(flat) <= bounds[1]):
        return None
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            if dt.name in ("DT_INT16", "DT_INT8", "DT_UINT8"):
                array = np.array(value, dtype=np.int64).astype(dt.numpy)
            else:
                array = np.array(value, dtype=dt.numpy)
    except (ValueError, OverflowError, TypeError):  # ragged lists, huge ints
        return None
    return array if list(array.shape) == shape else None


def tensor_from_json(value, dt: DType) -> np.ndarray:
    """One tensor from a JSON value, with `FillTensorProto`'s checks and messages."""
    shape = dense_shape(value)
    fast = _fast_numbers(value, shape, dt)
    if fast is not None:
        return fast
    if shape:
        _check_list(value, 0, shape, dt)
    else:
        _check_leaf(value, 0, 0, dt)
    return _to_array(value, shape, dt)


def _instances(instances: list, specs: Mapping[str, DType]) -> dict[str, np.ndarray]:
    """`FillTensorMapFromInstancesList`: batches the row-format list along dim 0."""
    names = sorted(specs)
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map")

    def is_element_object(v):
        return isinstance(v, dict) and not _is_b64(v)

    elements_are_objects = is_element_object(instances[0])
    rows: dict[str, list[np.ndarray]] = {}
    shapes: dict[str, list[int]] = {}

    def add_item(item, name):
        if name not in specs:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        array = tensor_from_json(item, specs[name])
        if name not in shapes:
            shapes[name] = list(array.shape)
        elif math.prod(shapes[name]) != array.size:
            raise invalid_argument(
                f"Expecting tensor size: {math.prod(shapes[name])} but got: {array.size}")
        elif shapes[name] != list(array.shape):
            raise invalid_argument(f"Expecting shape {shape_string(shapes[name])} but got: "
                                   f"{shape_string(array.shape)}")
        rows.setdefault(name, []).append(array)

    for index, element in enumerate(instances):
        if elements_are_objects:
            if not is_element_object(element):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                try:
                    add_item(item, name)
                except ServingError as e:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: {e.to_string()}") from None
            if set(element) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_rapidjson.debug_string(element)} keys must be equal to: "
                    + ",".join(names))
        else:
            if is_element_object(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list")
            try:
                add_item(element, names[0])
            except ServingError as e:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. "
                    f"Error: {e.to_string()}") from None
    return {name: np.stack(arrays) for name, arrays in rows.items()}


def _inputs(value, specs: Mapping[str, DType]) -> dict[str, np.ndarray]:
    """`FillTensorMapFromInputsMap`: one tensor, or an object of named tensors."""
    names = sorted(specs)
    if not isinstance(value, dict) or _is_b64(value):
        if len(specs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map")
        return {names[0]: tensor_from_json(value, specs[names[0]])}
    tensors = {}
    for name in names:
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = tensor_from_json(value[name], specs[name])
    return tensors


def predict_inputs(doc: dict, specs: Mapping[str, DType]) -> tuple[dict[str, np.ndarray], Format]:
    """The input tensors of a predict request (`FillPredictRequestFromJson` after the map)."""
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' or "
                                 "'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        return _instances(instances, specs), Format.ROW
    if has_inputs:
        return _inputs(doc["inputs"], specs), Format.COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# --------------------------------------------------------------------------------------------
# Classify and regress requests: tf.Example features in JSON (checked, never run here).

def _check_feature_value(value, name: str, kinds: dict) -> None:
    def kind_error():
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: "
                               f"{kinds[name]}")

    def set_kind(kind):
        if kinds.setdefault(name, kind) != kind:
            kind_error()

    if value is None or isinstance(value, list) or (isinstance(value, dict) and not
                                                     _is_b64(value)):
        raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: "
                               f"{_rapidjson.type_name(value)}")
    if value is True or value is False:
        set_kind("int64")
    elif isinstance(value, dict):
        set_kind("bytes")
        _decode_b64(value)
    elif isinstance(value, str):
        set_kind("bytes")
    elif _rapidjson.is_rapidjson_double(value):
        set_kind("float")
    else:
        set_kind("int64")
        if not _is_int64(value):
            raise invalid_argument(
                f"Feature: {name} has uint64_t element. Only int64_t is supported.")


def _check_example(value) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(
            f"Example must be JSON object but got JSON {_rapidjson.type_name(value)}")
    kinds: dict[str, str] = {}
    for name, content in value.items():
        for v in content if isinstance(content, list) else [content]:
            _check_feature_value(v, name, kinds)


def check_classify_regress_request(doc: dict) -> None:
    """`FillClassifyRegressRequestFromJson`'s checks (its message says 'classify' for both)."""
    if "context" in doc:
        _check_example(doc["context"])
    if "examples" not in doc:
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was "
                                 "not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    for example in examples:
        _check_example(example)


# --------------------------------------------------------------------------------------------
# numpy -> JSON.

def _float_strings(array: np.ndarray, float_type, digits: int) -> list[str]:
    """`WriteDecimal`: %.6g when it round-trips, else max_digits10; '.0' for whole numbers."""
    flat = array.ravel()
    values = flat.tolist()
    texts = [f"{v:.6g}" for v in values]
    with np.errstate(invalid="ignore", over="ignore"):
        back = np.array([float(t) for t in texts], dtype=float_type)
    for i in np.flatnonzero(back != flat):
        texts[i] = f"{values[i]:.{digits}g}"
    for i, (v, t) in enumerate(zip(values, texts)):
        if v != v:
            texts[i] = "NaN"
        elif v in (math.inf, -math.inf):
            texts[i] = "Infinity" if v > 0 else "-Infinity"
        elif "." not in t and "e" not in t:
            texts[i] = t + ".0"
    return texts


def value_strings(name: str, array: np.ndarray) -> list[str]:
    """Each element of an output tensor as TF Serving writes it, in row-major order."""
    dt = dtype_of_array(array)
    if dt.name == "DT_FLOAT":
        return _float_strings(array, np.float32, 9)
    if dt.name == "DT_DOUBLE":
        return _float_strings(array, np.float64, 17)
    if dt.name in ("DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8", "DT_INT64", "DT_UINT32",
                   "DT_UINT64"):
        return [str(v) for v in array.ravel().tolist()]
    if dt.name == "DT_BOOL":
        return ["true" if v else "false" for v in array.ravel().tolist()]
    if dt.name == "DT_STRING":
        items = [v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist()]
        if name.endswith("_bytes"):
            return ['{"b64": "' + base64.b64encode(v).decode() + '"}' for v in items]
        return [_rapidjson.quote(v.decode("utf-8", "surrogateescape")) for v in items]
    raise invalid_argument(f"Failed to write JSON value for tensor type: {dt.short}")


def _nest(texts: list[str], shape: tuple[int, ...], depth: int, single_line: bool) -> str:
    """Nested arrays of pre-formatted values; `depth`: levels open around this array."""
    if not shape:
        return texts[0]
    if shape[0] == 0:
        return "[]"
    step = len(texts) // shape[0] if shape[0] else 0
    items = [_nest(texts[i * step:(i + 1) * step], shape[1:], depth + 1, single_line)
             for i in range(shape[0])]
    if single_line:
        return "[" + ", ".join(items) + "]"
    inner = "\n" + " " * (4 * (depth + 1))
    return "[" + ",".join(inner + item for item in items) + "\n" + " " * (4 * depth) + "]"


def predict_response(outputs: Mapping[str, np.ndarray], fmt: Format) -> str:
    """`MakeJsonFromTensors`: the response body of a predict request."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt is Format.ROW:
        batch = -1
        for name in names:
            array = outputs[name]
            if array.ndim == 0:
                raise invalid_argument(f"Tensor name: {name} has no shape information ")
            if batch >= 0 and batch != array.shape[0]:
                raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: "
                                       f"{array.shape[0]} expecting: {batch}")
            batch = array.shape[0]
        rows = {}
        for name in names:
            texts, shape = value_strings(name, outputs[name]), outputs[name].shape
            step = len(texts) // shape[0] if shape[0] else 0
            rows[name] = [_nest(texts[i * step:(i + 1) * step], shape[1:], 0, True)
                          for i in range(shape[0])]
        if len(names) == 1:
            items = rows[names[0]]
        else:
            items = ["{" + ",".join(f'\n{" " * 12}{_rapidjson.quote(n)}: {rows[n][i]}'
                                    for n in names) + "\n" + " " * 8 + "}"
                     for i in range(batch)]
        body = "[" + ", ".join(items) + ("\n    ]" if items else "]")
        return '{\n    "predictions": ' + body + "\n}"
    if len(names) == 1:
        array = outputs[names[0]]
        body = _nest(value_strings(names[0], array), array.shape, 1, False)
    else:
        parts = []
        for name in names:
            array = outputs[name]
            text = _nest(value_strings(name, array), array.shape, 2, False)
            parts.append(f'\n{" " * 8}{_rapidjson.quote(name)}: {text}')
        body = "{" + ",".join(parts) + "\n    }"
    return '{\n    "outputs": ' + body + "\n}"


def error_body(message: str) -> bytes:
    """`MakeJsonFromStatus`: `{"error": "<message>"}` in RapidJSON's layout."""
    text = '{\n    "error": ' + _rapidjson.quote(message) + "\n}"
    return text.encode("utf-8", "surrogateescape")


__all__ = ["Format", "check_classify_regress_request", "dense_shape", "error_body",
           "parse_body", "predict_inputs", "predict_response", "signature_name",
           "tensor_from_json", "value_strings"]
