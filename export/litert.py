"""LiteRT (TFLite) for the edge: the forward signatures, run with ``ai-edge-litert``.

Converted from the written SavedModel (``from_concrete_functions`` on Keras 3 models silently
returns garbage). Gradient ops need the Flex delegate, which LiteRT's interpreter lacks, so the
``adapt`` signature is not converted: adapt on the server, or on the device with ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from export.parity import ExportCheckError, ParityReport

FORWARD_SIGNATURES = ("serving_default", "embed")


def write_litert(saved_model: str | Path, directory: str | Path,
                 signature_names: Sequence[str]) -> dict[str, Path]:
    """Convert each forward signature of ``saved_model`` to ``<directory>/<name>.tflite``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in signature_names:
        if name not in FORWARD_SIGNATURES:
            continue
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model),
                                                             signature_keys=[name])
        # Builtin ops only: a file that needs the Flex delegate would fail on the device.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            content = converter.convert()
        except Exception as e:  # noqa: BLE001 - the converter raises many error types
            raise ValueError(
                f"Signature {name!r} cannot be converted to LiteRT with builtin ops: {e}. "
                "Export it as ONNX instead (--format onnx).") from e
        path = directory / f"{name}.tflite"
        path.write_bytes(content)
        files[name] = path
    return files


def run_litert(path: str | Path, signature: str, inputs: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """Run one signature of a .tflite file with LiteRT's interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner(signature)
    return {k: np.asarray(v) for k, v in runner(**inputs).items()}


def check_litert(files: dict[str, Path], inputs: dict[str, dict[str, np.ndarray]],
                 expected: dict[str, dict[str, np.ndarray]],
                 report: ParityReport) -> ParityReport:
    for name, path in files.items():
        try:
            outputs = run_litert(path, name, inputs[name])
        except Exception as e:  # noqa: BLE001
            raise ExportCheckError(f"LiteRT cannot run {path.name}: {e}") from e
        report.add("litert", name, outputs, expected[name])
    return report
