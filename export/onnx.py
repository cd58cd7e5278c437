"""ONNX for the edge: convert each signature with tf2onnx, describe it, and run it.

The predict and embed graphs convert with stock tf2onnx; the adapt graph holds gradient ops,
converted by the handlers of `export.onnx_ops`. ``onnx/signatures.json`` lets a server without
TensorFlow answer TF Serving's metadata requests (see docs/export-format.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from export.parity import ExportCheckError, ParityReport
from export.signatures import Signature

OPSET = 17
SIGNATURES_FILE = "signatures.json"
METHOD_NAME = "tensorflow/serving/predict"

# ONNX TensorProto element types -> TF DataType enum names (what TF Serving's metadata shows).
_DTYPES = {1: "DT_FLOAT", 2: "DT_UINT8", 3: "DT_INT8", 5: "DT_INT16", 6: "DT_INT32",
           7: "DT_INT64", 9: "DT_BOOL", 10: "DT_HALF", 11: "DT_DOUBLE"}


def write_onnx(directory: str | Path, signatures: Sequence[Signature],
               opset: int = OPSET) -> dict[str, Path]:
    """Convert every signature to ``<directory>/<name>.onnx``; write ``signatures.json``."""
    from export.onnx_ops import convert_function

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files, table = {}, {}
    for signature in signatures:
        target = directory / f"{signature.name}.onnx"
        try:
            model = convert_function(tf.function(signature.function),
                                     signature.specs(edge=True), target, opset=opset)
        except ValueError as e:
            raise ValueError(f"Signature {signature.name!r} cannot be exported to ONNX: {e}") \
                from e
        files[signature.name] = target
        table[signature.name] = describe(model, target.name)
    write_signature_table(directory, table)
    return files


def describe(model, file_name: str) -> dict:
    """A ``signatures.json`` entry for one ONNX model."""

    def tensors(values):
        out = {}
        for value in values:
            tensor_type = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else -1
                     for d in tensor_type.shape.dim]
            out[value.name] = {"onnx_name": value.name,
                               "dtype": _DTYPES.get(tensor_type.elem_type, "DT_INVALID"),
                               "shape": shape}
        return out

    initializers = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return {"file": file_name, "method_name": METHOD_NAME,
            "inputs": tensors(inputs), "outputs": tensors(model.graph.output)}


def write_signature_table(directory: Path, table: dict) -> Path:
    path = Path(directory) / SIGNATURES_FILE
    path.write_text(json.dumps({"format": 1, "signatures": table}, indent=2) + "\n")
    return path


def run_onnx(path: str | Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run one ONNX model on named inputs with onnxruntime; returns named outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def check_onnx(files: dict[str, Path], signatures: Sequence[Signature],
               inputs: dict[str, dict[str, np.ndarray]],
               expected: dict[str, dict[str, np.ndarray]],
               report: ParityReport) -> ParityReport:
    """Run every converted signature in onnxruntime and compare with the in-memory model."""
    for signature in signatures:
        try:
            outputs = run_onnx(files[signature.name], inputs[signature.name])
        except Exception as e:  # noqa: BLE001 - a file onnxruntime cannot run is broken
            raise ExportCheckError(
                f"onnxruntime cannot run the ONNX {signature.name!r} graph: {e}") from e
        report.add("onnx", signature.name, outputs, expected[signature.name])
    return report
