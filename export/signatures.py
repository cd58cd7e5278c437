"""The serving signatures of a meta-learner: predict, adapt-and-predict, embed.

A `Signature` is a named function of named tensors returning a dict of named tensors, with its
input specs twice: dynamic (for the SavedModel: any batch, support or query size) and the ones
declared for ONNX and LiteRT (static episode shapes for ``adapt``, whose gradient graph converts
exactly only with fixed shapes; a dynamic batch for the forward graphs). Every exporter
(SavedModel, ONNX, LiteRT) works from the same list, so they cannot disagree about names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_meta.learners import MAML, MetaLearner
from keras_meta.learners.metric import MetricLearner
from keras_meta.tasks.episode import EpisodeSpec, validate_episode

TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class Signature:
    """One serving signature.

    Attributes:
        name: the signature key (``serving_default``, ``adapt``, ``embed``).
        function: called with one tensor per input, in ``inputs`` order; returns a dict.
        inputs: input name -> dynamic `tf.TensorSpec` (SavedModel).
        edge_inputs: input name -> `tf.TensorSpec` declared for ONNX and LiteRT.
    """

    name: str
    function: Callable[..., dict]
    inputs: dict[str, tf.TensorSpec]
    edge_inputs: dict[str, tf.TensorSpec]
    classes: int = 2

    def specs(self, edge: bool = False) -> list[tf.TensorSpec]:
        return list((self.edge_inputs if edge else self.inputs).values())

    def sample_inputs(self, examples: dict | None = None, batch: int = 8,
                      seed: int = 0) -> dict[str, np.ndarray]:
        """Inputs that fit ``edge_inputs``: ``examples`` where given, else random data.

        Unknown (batch) sizes become ``batch``.
        """
        rng = np.random.default_rng(seed)
        out = {}
        for name, spec in self.edge_inputs.items():
            shape = [batch if d is None else d for d in spec.shape]
            dtype = spec.dtype.as_numpy_dtype
            if examples is not None and name in examples:
                value = np.asarray(examples[name], dtype)
                if spec.shape[0] is not None and len(value) != spec.shape[0]:
                    raise ValueError(
                        f"`{name}` of the example episode has {len(value)} rows; the export "
                        f"declares {spec.shape[0]}. Declare the episode shape of the examples.")
                out[name] = value
            elif spec.dtype.is_integer:
                out[name] = (np.arange(shape[0]) % self.classes).astype(dtype)
            else:
                out[name] = rng.standard_normal(shape).astype(dtype)
        return out


def task_of(learner: MetaLearner) -> str:
    """``"classification"`` or ``"regression"``, from the learner's kind and loss."""
    if isinstance(learner, MetricLearner):
        return "classification"
    loss = learner._task_loss
    name = (getattr(loss, "name", None) or getattr(loss, "__name__", "") or "").lower()
    if "categorical" in name or "crossentropy" in name:
        return "classification"
    return "regression"


def learner_signatures(
    learner: MetaLearner,
    spec: EpisodeSpec,
    *,
    adapted: keras.Model | None = None,
    task: str | None = None,
) -> list[Signature]:
    """The signatures that serve ``learner``.

    Args:
        learner: a trained meta-learner.
        spec: the episode shapes to declare (`keras_meta.tasks.EpisodeSpec`; static for the
            ONNX adapt graph, dynamic in the SavedModel), e.g. ``tasks.spec`` of the task
            distribution the learner was trained on.
        adapted: a model adapted to a support set (from ``learner.adapt``); when given,
            ``serving_default`` predicts with it, otherwise with the meta-learned weights
            (metric learners, which have no head before adaptation, then return embeddings).
        task: ``"classification"`` or ``"regression"``; default: from the learner's loss.

    Returns:
        ``serving_default``, ``adapt``, and for metric learners ``embed``.
    """
    task = task or task_of(learner)
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}. Received: {task!r}")
    if not isinstance(learner, (MAML, MetricLearner)):
        raise ValueError(
            f"Cannot export a {type(learner).__name__}: export supports learners whose "
            "adaptation is a graph (MAML, FirstOrderMAML, MetaSGD, ANIL, ProtoNet, RidgeHead). "
            "Export the model it adapts instead: `export_model(learner.adapt(support_x, "
            "support_y), ...)`.")
    if not isinstance(spec, EpisodeSpec):
        raise ValueError("`spec` must be a keras_meta.tasks.EpisodeSpec (e.g. `tasks.spec`). "
                         f"Received: {type(spec).__name__}")
    ways = spec.num_classes
    if task == "classification" and ways is None:
        raise ValueError("Classification export needs `spec.num_classes` (the ways).")
    x_shape = spec.x_shape
    dtype = learner.output_dtype
    S, Q = spec.support_size, spec.query_size
    y_shape = _output_shape(learner.model, x_shape)

    def head(output):
        if task == "classification":
            return {"logits": output, "probabilities": tf.nn.softmax(output, axis=-1)}
        return {"predictions": output}

    def x_spec(batch, name="x"):
        return tf.TensorSpec((batch, *x_shape), dtype, name=name)

    def y_spec(batch):
        if task == "classification":
            return tf.TensorSpec((batch,), tf.int32, name="support_y")
        return tf.TensorSpec((batch, *y_shape), dtype, name="support_y")

    signatures = []
    metric = isinstance(learner, MetricLearner)

    if adapted is not None:
        def predict(x):
            return head(adapted(x, training=False))
    elif metric:
        def predict(x):
            return {"embedding": learner.embed(x, training=False)[0]}
    else:
        def predict(x):
            return head(learner.model(x, training=False))
    signatures.append(Signature("serving_default", predict, {"x": x_spec(None)},
                                {"x": x_spec(None)}))

    if metric:
        def adapt(support_x, support_y, query_x):
            support_y = tf.cast(support_y, tf.int32)
            emb_s, _ = learner.embed(support_x, training=False)
            emb_q, _ = learner.embed(query_x, training=False)
            # Static ways when the graph is traced with static shapes (ONNX); else from labels.
            n = ways if support_x.shape[0] is not None else tf.reduce_max(support_y) + 1
            return head(learner.head_logits(learner.fit_head(emb_s, support_y, n), emb_q))
    else:
        steps = learner.eval_inner_steps

        def adapt(support_x, support_y, query_x):
            if task == "classification":
                support_y = tf.cast(support_y, tf.int32)
            state = learner.adapt_task(support_x, support_y, steps, training=False)
            return head(learner.predict_task(state, query_x, training=False))
    signatures.append(Signature(
        "adapt", adapt,
        {"support_x": x_spec(None, "support_x"), "support_y": y_spec(None),
         "query_x": x_spec(None, "query_x")},
        {"support_x": x_spec(S, "support_x"), "support_y": y_spec(S),
         "query_x": x_spec(Q, "query_x")}))

    if metric:
        def embed(x):
            return {"embedding": learner.embed(x, training=False)[0]}
        signatures.append(Signature("embed", embed, {"x": x_spec(None)}, {"x": x_spec(None)}))
    return [dataclasses.replace(s, classes=ways or 2) for s in signatures]


def model_signatures(model: keras.Model, *, task: str = "classification") -> list[Signature]:
    """``serving_default`` for an ordinary Keras model (e.g. one returned by ``adapt``)."""
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}. Received: {task!r}")
    x_shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if x_shape is None or any(d is None for d in x_shape):
        raise ValueError(f"Model {model.name!r} needs a fully known input shape to export; "
                         "build it with `keras.Input(shape)`.")
    dtype = model.inputs[0].dtype

    def predict(x):
        output = model(x, training=False)
        if task == "classification":
            return {"logits": output, "probabilities": tf.nn.softmax(output, axis=-1)}
        return {"predictions": output}

    spec = {"x": tf.TensorSpec((None, *x_shape), dtype, name="x")}
    return [Signature("serving_default", predict, spec, spec)]


def episode_examples(support_x, support_y, query_x) -> dict[str, np.ndarray]:
    """A validated episode as the inputs of the ``adapt`` signature (and ``x`` for the rest)."""
    support_y, query_x = np.asarray(support_y), np.asarray(query_x)
    # Query targets are not an input; stand-ins of the right shape let the episode validate.
    stand_in = np.repeat(support_y[:1], len(query_x), axis=0)
    episode = validate_episode((support_x, support_y, query_x, stand_in), batched=False)
    return {"support_x": np.asarray(episode.support_x), "support_y": np.asarray(
        episode.support_y), "query_x": np.asarray(episode.query_x),
        "x": np.asarray(episode.query_x)}


def _output_shape(model: keras.Model, x_shape) -> tuple[int, ...]:
    out = model.compute_output_shape((1, *x_shape))
    return tuple(int(d) for d in out[1:])
