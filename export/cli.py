"""``keras-meta export``: a trained run directory to TF Serving's layout, ONNX and LiteRT."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Export the trained learner of a run directory as one version of a model in TF Serving's layout
(<base>/<name>/<version>/), with the signatures serving_default (predict), adapt (support set +
queries -> query predictions, adapting inside the graph) and, for metric learners, embed. Every
artifact is loaded back and compared with the in-memory model on a held-out test episode before
the version folder appears; a failed check publishes nothing. An RL^2 run exports its policy's
recurrent step as serving_default (observation, previous action, reward, done flag and state ->
action distribution and next state; the client carries the state)."""

EPILOG = """examples:
  keras-meta export runs/omniglot-protonet-5way-1shot
  keras-meta export runs/sinusoid-maml --format savedmodel,onnx,tflite --version 3 --overwrite
  keras-meta export runs/omniglot-protonet-5way-1shot --quantize dynamic,static
  keras-meta export runs/rl2-bandits-k5-n10
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
    from export.runs import export_run

    print(export_run(args.run_dir, args.base_path, name=args.name, formats=args.format,
                     version=args.version, overwrite=args.overwrite,
                     quantization=args.quantize, support=args.support,
                     tolerance=args.tolerance, seed=args.seed))
    return 0
