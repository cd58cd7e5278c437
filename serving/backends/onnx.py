"""ONNX Runtime backend: the `onnx/` part of an export version, no TensorFlow involved.

`onnx/signatures.json` (docs/export-format.md) maps each signature to an `.onnx` file and its
tensors (TF Serving alias -> name in the ONNX graph, dtype, shape); it carries what the metadata
endpoint prints, so this backend answers `GetModelMetadata` like the TensorFlow one. Two
differences remain, both from the artifact: a tensor's graph `name` is its ONNX name unless the
table gives a `name`, and `adapt` has the static support and query sizes of the export.
Like every TF2 SavedModel, the table gets an `__saved_model_init_op` entry for metadata parity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from serving.errors import Code, ServingError, invalid_argument
from serving.signatures import (
    INIT_OP_SIGNATURE,
    Signature,
    TensorSpec,
    dtype,
    init_op_signature,
)

SIGNATURES_FILE = os.path.join("onnx", "signatures.json")
SUPPORTED_FORMAT = 1

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_, "tensor(float16)": np.float16,
    "tensor(string)": np.object_,
}


def _table(path: str) -> dict:
    file = os.path.join(path, SIGNATURES_FILE)
    if not os.path.exists(file):
        raise ServingError(
            Code.NOT_FOUND,
            f"Could not find {SIGNATURES_FILE} at supplied export directory path: {path}. The "
            "ONNX backend serves the onnx/ folder of a keras-meta export "
            "(docs/export-format.md).")
    try:
        with open(file) as f:
            table = json.load(f)
    except (OSError, ValueError) as e:
        raise ServingError(Code.DATA_LOSS, f"Could not parse {file}: {e}") from None
    if not isinstance(table, dict) or table.get("format") != SUPPORTED_FORMAT or not isinstance(
            table.get("signatures"), dict):
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"{file} is not an ONNX signature table of format {SUPPORTED_FORMAT}: expected "
            '{"format": 1, "signatures": {...}}')
    return table


def _spec(entry: dict, where: str) -> TensorSpec:
    try:
        shape = entry.get("shape")
        return TensorSpec(name=str(entry.get("name", entry["onnx_name"])),
                          dtype=dtype(entry["dtype"]),
                          shape=None if shape is None else tuple(int(s) for s in shape))
    except (KeyError, TypeError, ValueError) as e:
        raise ServingError(Code.INVALID_ARGUMENT,
                           f"bad tensor entry {where} in {SIGNATURES_FILE}: {e}") from None


class _Function:
    """One ONNX Runtime session and the alias <-> graph-name maps of its signature."""

    def __init__(self, session, inputs: dict[str, str], outputs: dict[str, str]):
        self.session = session
        self.inputs = inputs  # alias -> ONNX input name
        self.outputs = outputs  # alias -> ONNX output name
        self.input_types = {i.name: _ORT_TYPES.get(i.type) for i in session.get_inputs()}


class OnnxModel:
    runtime = "ONNX"

    def __init__(self, path: str, variant: str | None = None, threads: int = 0):
        import onnxruntime as ort

        self._ort = ort
        table = _table(path)
        self.signatures: dict[str, Signature] = {}
        self._functions: dict[str, _Function] = {}
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle intra-op threads would spin for work, taking the CPU from the threads that parse
        # requests (which measured twice as slow for `adapt` over REST on 2 cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        for name, entry in table["signatures"].items():
            try:
                inputs = {a: _spec(e, f"{name}.inputs.{a}") for a, e in entry["inputs"].items()}
                outputs = {a: _spec(e, f"{name}.outputs.{a}")
                           for a, e in entry["outputs"].items()}
                file = os.path.join(path, "onnx", entry["file"])
            except (KeyError, TypeError, AttributeError) as e:
                raise ServingError(Code.INVALID_ARGUMENT,
                                   f"bad signature {name} in {SIGNATURES_FILE}: {e}") from None
            if variant:
                stem, ext = os.path.splitext(file)
                candidate = f"{stem}.{variant}{ext}"
                file = candidate if os.path.exists(candidate) else file
            if not os.path.exists(file):
                raise ServingError(Code.NOT_FOUND,
                                   f"signature {name}: ONNX file {file} does not exist")
            try:
                session = ort.InferenceSession(file, options, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own exception types
                raise ServingError(Code.DATA_LOSS,
                                   f"signature {name}: cannot load {file}: {e}") from None
            graph_inputs = {i.name for i in session.get_inputs()}
            graph_outputs = {o.name for o in session.get_outputs()}
            onnx_inputs = {a: entry["inputs"][a]["onnx_name"] for a in inputs}
            onnx_outputs = {a: entry["outputs"][a]["onnx_name"] for a in outputs}
            missing = sorted(set(onnx_inputs.values()) - graph_inputs) + sorted(
                set(onnx_outputs.values()) - graph_outputs)
            if missing:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"signature {name}: {file} has no tensor(s) {', '.join(missing)} named in "
                    f"{SIGNATURES_FILE}")
            self.signatures[name] = Signature(
                inputs=inputs, outputs=outputs,
                method_name=entry.get("method_name", "tensorflow/serving/predict"))
            self._functions[name] = _Function(session, onnx_inputs, onnx_outputs)
        self.signatures.setdefault(INIT_OP_SIGNATURE, init_op_signature())

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray],
            output_names: Sequence[str]) -> dict[str, np.ndarray]:
        function = self._functions.get(signature_name)
        if function is None:
            raise invalid_argument(
                f"signature {signature_name} has no function to run in this model")
        feed = {}
        for alias, array in inputs.items():
            onnx_name = function.inputs[alias]
            wanted = function.input_types.get(onnx_name)
            feed[onnx_name] = array.astype(wanted) if wanted and array.dtype != wanted else array
        fetch = [function.outputs[name] for name in output_names]
        try:
            results = function.session.run(fetch, feed)
        except Exception as e:  # onnxruntime's InvalidArgument, Fail, RuntimeException...
            kind = type(e).__name__
            code = Code.INVALID_ARGUMENT if kind == "InvalidArgument" else Code.INTERNAL
            raise ServingError(code, str(e)) from None
        return dict(zip(output_names, results))

    def close(self) -> None:
        self._functions.clear()


def load(path: str, variant: str | None = None, threads: int = 0, **_options) -> OnnxModel:
    return OnnxModel(path, variant=variant, threads=threads)
