"""TF Serving's request semantics, shared by the REST and gRPC front ends.

Each function mirrors one of TF Serving's implementations (`predict_util.cc::RunPredict`,
`get_model_metadata_impl.cc`, `get_model_status_impl.cc`, `classifier.cc`, `regressor.cc`,
`multi_inference.cc`): the same checks in the same order, with the same status codes and
messages. Inputs and outputs are numpy arrays; the front ends convert from and to JSON or
TensorProtos.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from serving.errors import Code, ServingError, failed_precondition, invalid_argument, not_found
from serving.models import ModelManager
from serving.signatures import (
    CLASSIFY_METHOD_NAME,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD_NAME,
    DType,
    Signature,
    check_inputs,
)


class ModelSpec(NamedTuple):
    """What a request names: model, optional version or label, optional signature."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


def _signature_key(name: str) -> str:
    return name or DEFAULT_SIGNATURE


def input_dtypes(signature_defs: Mapping[str, Signature],
                 signature_name: str) -> dict[str, DType]:
    """`HttpRestApiHandler::GetInfoMap`: the dtypes of a signature's inputs, for JSON parsing."""
    key = _signature_key(signature_name)
    signature = signature_defs.get(key)
    if signature is None:
        raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
    return {alias: spec.dtype for alias, spec in signature.inputs.items()}


def run_predict(model, model_name: str, signature_name: str, inputs: Mapping[str, object],
                output_filter: Sequence[str] = (),
                decode: Callable[[object], np.ndarray] | None = None,
                record_runtime: Callable[[str, str, float], None] | None = None,
                ) -> tuple[str, dict[str, np.ndarray]]:
    """`internal::RunPredict` on a loaded model; returns (signature key, outputs by alias).

    `inputs` are arrays, or anything `decode` turns into one (gRPC TensorProtos), decoded in the
    order TensorFlow's `GetInputValues` visits them so that errors come in TF Serving's order.
    """
    key = _signature_key(signature_name)
    signature = model.signatures.get(key)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{key}" not found.')
    sig_inputs = signature.inputs
    if len(inputs) != len(sig_inputs):  # the signatures of an export have no defaults
        sent, wanted = set(inputs), set(sig_inputs)
        raise invalid_argument(
            f"input size does not match signature: {len(inputs)}!={len(sig_inputs)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - sent))}}}.")
    arrays: dict[str, np.ndarray] = {}
    for alias in sorted(sig_inputs):
        if alias not in inputs:
            raise invalid_argument(
                f"Signature input alias: {alias}(feed name: {sig_inputs[alias].name}) not found "
                "in request and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sorted(inputs))}}}, or default input alias set: ")
        value = inputs[alias]
        if decode is not None:
            try:
                value = decode(value)
            except ValueError:
                raise invalid_argument(f"tensor parsing error: {alias}") from None
        arrays[alias] = value
    outputs = list(output_filter)
    seen = set()
    for alias in outputs:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                f"the set {{{','.join(sorted(signature.outputs))}}}.")
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    if not outputs:
        outputs = sorted(signature.outputs)
    check_inputs(signature, arrays)
    started = time.perf_counter()
    results = model.run(key, arrays, outputs)
    if record_runtime is not None:
        record_runtime(model_name, model.runtime, time.perf_counter() - started)
    return key, results


def _classification_checks(signature: Signature) -> None:
    """`PreProcessClassification` (the method name check is off by default in TF Serving)."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(
            f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if "inputs" not in signature.inputs:
        raise invalid_argument(
            f"No classification inputs found in SignatureDef: {signature.debug_string()}")
    if "classes" not in signature.outputs and "scores" not in signature.outputs:
        raise invalid_argument(
            'Expected classification signature outputs to contain at least one of "classes" or '
            f'"scores". Signature was: {signature.debug_string()}')


def _regression_checks(signature: Signature) -> None:
    """`PreProcessRegression`."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if "inputs" not in signature.inputs:
        raise invalid_argument(
            f"No regression inputs found in SignatureDef: {signature.debug_string()}")
    if "outputs" not in signature.outputs:
        raise invalid_argument(
            f"No regression outputs found in SignatureDef: {signature.debug_string()}")


_EXAMPLES_UNSUPPORTED = ServingError(
    Code.UNIMPLEMENTED,
    "this server runs keras-meta exports, whose signatures take tensors; signatures that parse "
    "serialized tf.Example inputs are not supported")


def classify_or_regress(model, method: str, signature_name: str) -> None:
    """`RunClassify`/`RunRegress` up to running the model: the signature checks, which a
    keras-meta export (tensor-input `predict` signatures) never passes."""
    key = _signature_key(signature_name)
    signature = model.signatures.get(key)
    if signature is None:
        raise invalid_argument(f"No signature was found with the name: {key}")
    (_classification_checks if method == "classify" else _regression_checks)(signature)
    raise _EXAMPLES_UNSUPPORTED


def multi_inference(model, tasks: Sequence[tuple[str, str, str]], num_examples: int) -> None:
    """`TensorFlowMultiInferenceRunner::Infer`'s checks; `tasks`: (model, signature, method)."""
    model_name = ""
    signatures = set()
    for name, signature_name, method_name in tasks:
        if not name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if not model_name:
            model_name = name
        elif model_name != name:
            raise invalid_argument(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        key = _signature_key(signature_name)
        if key in signatures:
            raise invalid_argument(f"Duplicate evaluation of signature: {key}")
        signatures.add(key)
        signature = model.signatures.get(key)
        if signature is None:
            raise invalid_argument(f"Requested signature not found in model graph: {key}")
        if method_name == CLASSIFY_METHOD_NAME:
            _classification_checks(signature)
        elif method_name == REGRESS_METHOD_NAME:
            _regression_checks(signature)
        else:
            raise ServingError(Code.UNIMPLEMENTED,
                               f"Unsupported signature method_name: {method_name}")
    if num_examples == 0:
        raise invalid_argument("Input is empty.")
    raise _EXAMPLES_UNSUPPORTED


class VersionState(NamedTuple):
    version: int
    state: str
    error_code: Code
    error_message: str


def model_status(manager: ModelManager, name: str, version: int | None) -> list[VersionState]:
    """`GetModelStatusImpl::GetModelStatusWithModelSpec` (a label reports all versions)."""
    states = manager.version_states(name)
    if version is not None:
        if version not in states:
            raise not_found(f"Could not find version {version} of model {name}")
        states = {version: states[version]}
    elif not states:
        raise not_found(f"Could not find any versions of model {name}")
    return [VersionState(v, s.state, s.error.code if s.error else Code.OK,
                         s.error.message if s.error else "")
            for v, s in states.items()]


def check_metadata_fields(fields: Sequence[str]) -> None:
    """`ValidateGetModelMetadataRequest`."""
    if not fields:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != "signature_def":
            raise invalid_argument(f"Metadata field {field} is not supported")
