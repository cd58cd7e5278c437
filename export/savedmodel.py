"""SavedModel for TF Serving: signatures, warm-up requests, and checks with both loaders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from export.parity import ExportCheckError, ParityReport
from export.signatures import Signature

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def write_savedmodel(path: str | Path, signatures: Sequence[Signature],
                     track: Sequence) -> None:
    """Write a SavedModel with one signature per `Signature` (named inputs, dict outputs).

    Uses `keras.export.ExportArchive`, whose variables TF Serving's session-based loader finds
    (a `tf.Module` around a Keras 3 model loads in Python but not there).
    """
    archive = keras.export.ExportArchive()
    for resource in track:
        archive.track(resource)
    for signature in signatures:
        archive.add_endpoint(signature.name, signature.function,
                             input_signature=signature.specs())
    archive.write_out(str(path), verbose=False)


def write_warmup_requests(path: str | Path, model_name: str, signatures: Sequence[Signature],
                          inputs: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write TF Serving's warm-up file: one PredictRequest per signature, replayed at load."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    target = Path(path) / WARMUP_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for signature in signatures:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name,
                                               signature_name=signature.name))
            for name, value in inputs[signature.name].items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return target


def reference_outputs(signatures: Sequence[Signature],
                      inputs: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """What the in-memory model answers, per signature."""
    out = {}
    for signature in signatures:
        args = [tf.constant(inputs[signature.name][k]) for k in signature.inputs]
        out[signature.name] = {k: np.asarray(v) for k, v in
                               tf.function(signature.function)(*args).items()}
    return out


def check_savedmodel(path: str | Path, signatures: Sequence[Signature],
                     inputs: dict[str, dict[str, np.ndarray]],
                     expected: dict[str, dict[str, np.ndarray]],
                     report: ParityReport) -> ParityReport:
    """Load ``path`` as TF 2 does and as TF Serving does; compare every signature's outputs."""
    path = str(path)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - any load failure means a broken export
        raise ExportCheckError(f"tf.saved_model.load cannot load the export: {e}") from e
    for signature in signatures:
        fn = loaded.signatures.get(signature.name)
        if fn is None:
            raise ExportCheckError(f"The SavedModel lacks signature {signature.name!r}; it has "
                                   f"{sorted(loaded.signatures)}.")
        outputs = fn(**{k: tf.constant(v) for k, v in inputs[signature.name].items()})
        report.add("savedmodel(tf2)", signature.name,
                   {k: v.numpy() for k, v in outputs.items()}, expected[signature.name])
    del loaded
    for name, outputs in _run_with_session_loader(path, signatures, inputs).items():
        report.add("savedmodel(session)", name, outputs, expected[name])
    return report


def _run_with_session_loader(path, signatures, inputs):
    """Run each signature through the TF1 session loader, the path TF Serving takes."""
    results = {}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        level = tf.get_logger().level
        tf.get_logger().setLevel("ERROR")  # the TF1 loader logs its deprecation on every call
        try:
            meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], path)
        except Exception as e:  # noqa: BLE001
            raise ExportCheckError(
                f"TF Serving's session-based loader cannot load the export: {e}") from e
        finally:
            tf.get_logger().setLevel(level)
        for signature in signatures:
            sig = meta_graph.signature_def[signature.name]
            if sig.method_name != "tensorflow/serving/predict":
                raise ExportCheckError(f"Signature {signature.name!r} has method name "
                                       f"{sig.method_name!r}, not tensorflow/serving/predict.")
            feed = {sig.inputs[k].name: v for k, v in inputs[signature.name].items()}
            fetch = {k: t.name for k, t in sig.outputs.items()}
            results[signature.name] = session.run(fetch, feed)
    return results
