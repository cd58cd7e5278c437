"""Export a meta-learner, or a model it adapted, as one checked version in TF Serving's layout.

Every artifact is written into a staging folder, loaded back and compared with the in-memory
model (SavedModel with both of TensorFlow's loaders, ONNX with onnxruntime, LiteRT with its
interpreter); only if every check passes does the folder become ``<base>/<name>/<version>``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import numpy as np

from export import layout
from export.parity import DEFAULT_TOLERANCE, ParityReport, relative_error
from export.signatures import (
    Signature,
    episode_examples,
    learner_signatures,
    model_signatures,
    task_of,
)
from keras_meta.tasks.episode import EpisodeSpec

log = logging.getLogger(__name__)

FORMATS = ("savedmodel", "onnx", "litert")
_ALIASES = {"tflite": "litert", "saved_model": "savedmodel", "tf": "savedmodel"}
METADATA_FILE = Path("assets.extra") / "keras_meta.json"


@dataclasses.dataclass
class ExportResult:
    """What an export wrote and how well it matched the in-memory model."""

    path: Path
    model_name: str
    version: int
    formats: tuple[str, ...]
    signatures: tuple[str, ...]
    files: dict[str, int]
    parity: ParityReport
    quantized: dict[str, dict]

    def __str__(self) -> str:
        lines = [f"Exported {self.model_name!r} version {self.version} to {self.path}",
                 f"  formats: {', '.join(self.formats)}; signatures: "
                 f"{', '.join(self.signatures)}",
                 f"  parity with the in-memory model: worst relative error "
                 f"{self.parity.worst:.1e} (tolerance {self.parity.tolerance:g})"]
        worst: dict[str, float] = {}
        for key, err in self.parity.errors.items():
            artifact = key.split("/")[0]
            worst[artifact] = max(worst.get(artifact, 0.0), err)
        lines.append("    " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
        for name, info in sorted(self.quantized.items()):
            lines.append(f"  {name}: {info['bytes'] / 1e6:.2f} MB "
                         f"({info['size_ratio']:.2f}x the float file), relative error "
                         f"{info['relative_error']:.1e} on the check inputs")
        return "\n".join(lines)


def normalize_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f for f in formats.split(",") if f.strip()]
    out = []
    for f in formats:
        f = _ALIASES.get(f.strip().lower(), f.strip().lower())
        if f not in FORMATS:
            raise ValueError(f"Unknown export format {f!r}; expected some of "
                             f"{', '.join(FORMATS)} (tflite is an alias of litert).")
        if f not in out:
            out.append(f)
    if not out:
        raise ValueError("`formats` must name at least one of " + ", ".join(FORMATS))
    return tuple(out)


def export_learner(
    learner,
    base_path: str | Path,
    name: str,
    *,
    spec: EpisodeSpec,
    formats: str | Sequence[str] = ("savedmodel", "onnx"),
    version: int | None = None,
    overwrite: bool = False,
    support: tuple | None = None,
    examples: tuple | None = None,
    quantization: Sequence[str] = (),
    calibration: Iterable[np.ndarray] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    task: str | None = None,
    metadata: dict | None = None,
) -> ExportResult:
    """Export a meta-learner with ``serving_default``, ``adapt`` (and ``embed``) signatures.

    Args:
        learner: a trained `keras_meta.learners` learner (MAML family, ProtoNet, RidgeHead).
        base_path: TF Serving's base folder; the version goes to ``<base>/<name>/<version>``.
        name: the model name (folder and URL part).
        spec: the episode shapes to declare (`keras_meta.tasks.EpisodeSpec`, e.g. the
            ``spec`` of the training tasks); ONNX's adapt graph is fixed to them.
        formats: some of ``savedmodel``, ``onnx``, ``litert`` (list or comma-separated).
        version: a positive integer; default: one above the latest present.
        overwrite: replace an existing version.
        support: optional ``(support_x, support_y)``: ``serving_default`` then predicts with
            the model adapted to it (for metric learners, a classifier of its classes).
        examples: optional ``(support_x, support_y, query_x)`` of the declared shapes, used for
            the parity checks and TF Serving's warm-up requests (default: random data).
        quantization: int8 variants of the forward ONNX graphs: ``dynamic`` and/or ``static``.
        calibration: batches of real inputs for static quantization.
        tolerance: largest relative error accepted between artifact and in-memory model.
        task: ``classification`` or ``regression`` (default: from the learner's loss).
        metadata: extra JSON-serialisable facts recorded in ``keras_meta.json``.
    """
    task = task or task_of(learner)
    adapted = None
    if support is not None:
        adapted = learner.adapt(*support)
    signatures = learner_signatures(learner, spec, adapted=adapted, task=task)
    info = {"learner": type(learner).__name__, "task": task, "ways": spec.num_classes,
            "x_shape": list(spec.x_shape), "support_size": spec.support_size,
            "query_size": spec.query_size, "inner_steps": learner.eval_inner_steps,
            "bn_policy": learner.bn_policy, "protocol": _jsonable(learner.protocol()),
            "serving_default": "adapted to the given support set" if adapted is not None
            else "meta-learned weights", **(metadata or {})}
    return _export(signatures, [learner] + ([adapted] if adapted is not None else []),
                   base_path, name, formats=formats, version=version, overwrite=overwrite,
                   examples=examples, quantization=quantization, calibration=calibration,
                   tolerance=tolerance, info=info)


def export_model(
    model: keras.Model,
    base_path: str | Path,
    name: str,
    *,
    task: str = "classification",
    formats: str | Sequence[str] = ("savedmodel", "onnx"),
    version: int | None = None,
    overwrite: bool = False,
    examples: np.ndarray | None = None,
    quantization: Sequence[str] = (),
    calibration: Iterable[np.ndarray] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    metadata: dict | None = None,
) -> ExportResult:
    """Export an ordinary Keras model (e.g. from ``learner.adapt``) with ``serving_default``."""
    signatures = model_signatures(model, task=task)
    examples = None if examples is None else (None, None, np.asarray(examples))
    info = {"learner": None, "model": model.name, "task": task, **(metadata or {})}
    return _export(signatures, [model], base_path, name, formats=formats, version=version,
                   overwrite=overwrite, examples=examples, quantization=quantization,
                   calibration=calibration, tolerance=tolerance, info=info)


def export_signatures(
    signatures: Sequence[Signature],
    track: Sequence,
    base_path: str | Path,
    name: str,
    *,
    formats: str | Sequence[str] = ("savedmodel", "onnx"),
    version: int | None = None,
    overwrite: bool = False,
    inputs: dict[str, dict[str, np.ndarray]] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    metadata: dict | None = None,
    models_config: bool = True,
) -> ExportResult:
    """Export any list of `Signature`s (the general mechanism under `export_learner`).

    Args:
        signatures: the signatures to serve.
        track: the Keras models and layers whose variables the signatures use.
        inputs: per signature, check inputs fitting its ``edge_inputs`` (default: random).
        models_config: update ``<base>/models.config`` (TF Serving's model list).
        Other arguments as `export_learner`.
    """
    return _export(list(signatures), list(track), base_path, name, formats=formats,
                   version=version, overwrite=overwrite, examples=None, quantization=(),
                   calibration=None, tolerance=tolerance, info=dict(metadata or {}),
                   inputs=inputs, models_config=models_config)


def _export(signatures: list[Signature], track, base_path, name, *, formats, version,
            overwrite, examples, quantization, calibration, tolerance, info,
            inputs=None, models_config=True) -> ExportResult:
    from export.savedmodel import (
        check_savedmodel,
        reference_outputs,
        write_savedmodel,
        write_warmup_requests,
    )

    layout.check_model_name(name)
    formats = normalize_formats(formats)
    quantization = tuple(quantization or ())
    if quantization and "onnx" not in formats:
        raise ValueError("`quantization` quantizes the ONNX graphs: add 'onnx' to `formats`.")
    if examples is not None and examples[0] is not None:
        examples = episode_examples(*examples)
    elif examples is not None:
        examples = {"x": examples[2]}
    inputs = {s.name: (inputs or {}).get(s.name) or s.sample_inputs(examples)
              for s in signatures}
    expected = reference_outputs(signatures, inputs)
    _check_finite(expected)
    report = ParityReport(tolerance)
    base_path = Path(base_path)
    quantized = {}
    with layout.version_dir(base_path / name, version, overwrite=overwrite) as (staging,
                                                                               version):
        with tempfile.TemporaryDirectory() as tmp:
            saved_model = staging if "savedmodel" in formats else Path(tmp) / "saved_model"
            if "savedmodel" in formats or "litert" in formats:
                log.info("Writing the SavedModel")
                write_savedmodel(saved_model, signatures, track)
                write_warmup_requests(saved_model, name, signatures, inputs)
                check_savedmodel(saved_model, signatures, inputs, expected, report)
            if "onnx" in formats:
                from export.onnx import check_onnx, run_onnx, write_onnx

                log.info("Converting to ONNX")
                files = write_onnx(staging / "onnx", signatures)
                check_onnx(files, signatures, inputs, expected, report)
                for signature in signatures:
                    if signature.name == "adapt":
                        continue
                    for mode in quantization:
                        quantized.update(_quantize(files[signature.name], mode, signature,
                                                   calibration, inputs, expected, run_onnx))
            if "litert" in formats:
                from export.litert import check_litert, write_litert

                log.info("Converting to LiteRT")
                files = write_litert(saved_model, staging / "litert",
                                     [s.name for s in signatures])
                check_litert(files, inputs, expected, report)
        report.check()
        info = {"format": 1, "keras_meta_version": _version(), "model_name": name,
                "version": version, **info, "signatures": [s.name for s in signatures],
                "formats": list(formats), "parity": report.to_json(), "quantized": quantized,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        (staging / METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
        (staging / METADATA_FILE).write_text(json.dumps(info, indent=2) + "\n")
        files = {str(p.relative_to(staging)): p.stat().st_size
                 for p in sorted(staging.rglob("*")) if p.is_file()}
    if "savedmodel" in formats and models_config:
        layout.write_models_config(base_path)
    return ExportResult(base_path / name / str(version), name, version, formats,
                        tuple(s.name for s in signatures), files, report, quantized)


def _quantize(float_file: Path, mode, signature, calibration, inputs, expected, run_onnx):
    from export.quantize import quantize

    target = float_file.with_name(f"{signature.name}.int8-{mode}.onnx")
    batches = None
    if mode == "static":
        batches = list(calibration) if calibration is not None else None
    quantize(float_file, target, mode, batches)
    outputs = run_onnx(target, inputs[signature.name])
    error = max(relative_error(outputs[k], v) for k, v in expected[signature.name].items())
    size = target.stat().st_size
    return {target.name: {"bytes": size, "size_ratio": size / float_file.stat().st_size,
                          "relative_error": error}}


def _check_finite(expected) -> None:
    """Refuse to export a model whose outputs on the check inputs are not finite."""
    for signature, outputs in expected.items():
        for key, value in outputs.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"The {signature!r} signature gives NaN or infinite {key!r} on the check "
                    "inputs; " + ("the inner loop diverges (check its step size)."
                                  if signature == "adapt" else "check the trained weights."))


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _version() -> str:
    import keras_meta

    return keras_meta.__version__
