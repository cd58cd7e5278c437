"""int8 quantization of forward ONNX graphs with onnxruntime.

``dynamic``: int8 weights, activations quantized on the fly (no data needed).
``static``: int8 weights and activations in QDQ format, with activation ranges calibrated on
real inputs. Quantize predict and embed graphs only: an adapt graph's gradients need float
precision.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MODES = ("dynamic", "static")


def quantize(source: str | Path, target: str | Path, mode: str,
             calibration: Iterable[np.ndarray] | None = None, input_name: str = "x") -> Path:
    """Write an int8 copy of the ONNX model ``source`` to ``target``.

    Args:
        source: a float ONNX model (a forward graph).
        target: where to write the quantized model.
        mode: ``"dynamic"`` or ``"static"``.
        calibration: for ``"static"``, batches of real inputs for ``input_name``.
        input_name: the model input the calibration batches feed.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    source, target = Path(source), Path(target)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph clean-up first, as onnxruntime recommends.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
            return target
        batches = [np.asarray(b, np.float32) for b in (calibration or [])]
        if not batches:
            raise ValueError("Static quantization needs `calibration`: batches of real inputs "
                             "(e.g. training images) to measure activation ranges.")

        class Reader(CalibrationDataReader):
            def __init__(self):
                self._it = iter(batches)

            def get_next(self):
                batch = next(self._it, None)
                return None if batch is None else {input_name: batch}

        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
    return target
