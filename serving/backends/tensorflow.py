"""TensorFlow backend: a SavedModel loaded with `tf.saved_model.load`, signatures run eagerly.

The signature table (aliases, graph tensor names, dtypes, shapes, method names) is read from the
`SignatureDef`s of the `serve` meta graph in `saved_model.pb`, exactly what TF Serving reports
as metadata.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from serving.errors import Code, ServingError, invalid_argument
from serving.signatures import Signature, TensorSpec, dtype

SERVE_TAG = "serve"


def _spec(info) -> TensorSpec:
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
    return TensorSpec(name=info.name, dtype=dtype(int(info.dtype)), shape=dims)


def _read_signatures(path: str) -> dict[str, Signature]:
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    try:
        if os.path.exists(pb):
            with open(pb, "rb") as f:
                saved_model.ParseFromString(f.read())
        elif os.path.exists(pbtxt):
            with open(pbtxt) as f:
                text_format.Parse(f.read(), saved_model)
        else:
            raise ServingError(
                Code.NOT_FOUND,
                f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
                f"{path}. Check that the directory exists and that you have the right "
                "permissions for accessing it.")
    except (message.DecodeError, text_format.ParseError) as e:
        raise ServingError(Code.DATA_LOSS, f"Could not parse SavedModel at {path}: {e}") from None
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == {SERVE_TAG}:
            return {
                name: Signature(inputs={k: _spec(v) for k, v in sig.inputs.items()},
                                outputs={k: _spec(v) for k, v in sig.outputs.items()},
                                method_name=sig.method_name)
                for name, sig in meta_graph.signature_def.items()}
    raise ServingError(
        Code.NOT_FOUND,
        "Could not find meta graph def matching supplied tags: { serve }. To inspect available "
        "tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`")


class TensorFlowModel:
    runtime = "TF"

    def __init__(self, path: str):
        import tensorflow as tf

        self._tf = tf
        self.signatures = _read_signatures(path)
        try:
            self._loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        except tf.errors.OpError as e:
            raise ServingError(Code(e.error_code), e.message) from None
        except (ValueError, OSError, KeyError) as e:
            raise ServingError(Code.UNKNOWN, f"Failed to load SavedModel at {path}: {e}") from None
        self._functions = dict(self._loaded.signatures)

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray],
            output_names: Sequence[str]) -> dict[str, np.ndarray]:
        tf = self._tf
        function = self._functions.get(signature_name)
        if function is None:
            raise invalid_argument(
                f"signature {signature_name} has no function to run in this SavedModel")
        signature = self.signatures[signature_name]
        feeds = {alias: tf.constant(array, dtype=tf.as_dtype(signature.inputs[alias].dtype.enum))
                 for alias, array in inputs.items()}
        try:
            results = function(**feeds)
        except tf.errors.OpError as e:
            raise ServingError(Code(e.error_code), e.message) from None
        except (TypeError, ValueError) as e:
            raise invalid_argument(str(e)) from None
        return {name: results[name].numpy() for name in output_names}

    def close(self) -> None:
        self._functions.clear()
        self._loaded = None


def load(path: str, **_options) -> TensorFlowModel:
    return TensorFlowModel(path)
