"""``keras-meta export``: a trained run directory to TF Serving's layout, ONNX and LiteRT."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Export the trained learner of a run directory as one version of a model in TF Serving's layout
(<base>/<name>/<version>/), with the signatures serving_default (predict), adapt (support set +
queries -> query predictions, adapting inside the graph) and, for metric learners, embed. Every
artifact is loaded back and compared with the in-memory model on a held-out test episode before
the version folder appears; a failed check publishes nothing."""

EPILOG = """examples:
  keras-meta export runs/omniglot-protonet-5way-1shot
  keras-meta export runs/sinusoid-maml --format savedmodel,onnx,tflite --version 3 --overwrite
  keras-meta export runs/omniglot-protonet-5way-1shot --quantize dynamic,static
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `keras-meta train`")
    parser.add_argument("--format", default="savedmodel,onnx", metavar="FORMATS",
                        help="comma-separated: savedmodel (TF Serving), onnx (onnxruntime at "
                        "the edge), tflite or litert (LiteRT; forward signatures only). "
                        "Default: savedmodel,onnx")
    parser.add_argument("--base-path", default="exports",
                        help="TF Serving's model base folder (default: exports); models.config "
                        "there lists every model")
    parser.add_argument("--name", help="model name (default: the run's config name)")
    parser.add_argument("--version", type=int,
                        help="version number (default: one above the latest present)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the version if it exists (otherwise that is an error)")
    parser.add_argument("--quantize", default="", metavar="MODES",
                        help="also write int8 ONNX variants of the forward graphs: dynamic "
                        "(int8 weights) and/or static (int8 weights and activations, "
                        "calibrated on training images), comma-separated")
    parser.add_argument("--support", metavar="NPZ",
                        help="an .npz file with support_x and support_y: serving_default then "
                        "predicts with the model adapted to this support set")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest relative error accepted against the in-memory model "
                        "(default 1e-4)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the test episode used for checks and warm-up requests")


def run(args) -> int:
    from export.exporter import export_learner
    from keras_meta import config as config_lib
    from keras_meta import runs

    learner, config = runs.load_learner(args.run_dir)
    tasks = config_lib.build_tasks(config, **config["evaluation"].get("tasks", {}))
    test = tasks.episodes("test", 1, seed=args.seed)
    examples = (test.support_x[0], test.support_y[0], test.query_x[0])
    support = None
    if args.support:
        support = _load_support(args.support)
    modes = [m.strip() for m in args.quantize.split(",") if m.strip()]
    calibration = None
    if "static" in modes:
        train = tasks.episodes("train", 16, seed=args.seed)
        calibration = [q for q in train.query_x]
    result = export_learner(
        learner, args.base_path, args.name or config["name"], spec=tasks.spec,
        formats=args.format, version=args.version, overwrite=args.overwrite, support=support,
        examples=examples, quantization=modes, calibration=calibration,
        tolerance=args.tolerance, metadata={"run_dir": str(Path(args.run_dir).resolve()),
                                            "config": config.get("name")})
    print(result)
    return 0


def _load_support(path):
    import numpy as np

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--support: {path} does not exist.")
    try:
        data = np.load(path)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for a bad file
        raise ValueError(f"--support: {path} is not a readable .npz file: {e}") from e
    missing = {"support_x", "support_y"} - set(data.files)
    if missing:
        raise ValueError(f"--support: {path} lacks {sorted(missing)}; it has {data.files}.")
    return data["support_x"], data["support_y"]
