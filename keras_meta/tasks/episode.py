"""Episodes: the unit of data of a meta-learner, and their validation.

An episode is one task: a support set to adapt on and a query set to predict. Datasets of
episodes yield Keras' usual ``(x, y)`` pair, with ``x`` a dict of the three inputs, so that
``fit``, ``evaluate`` and ``predict`` work unchanged::

    ({"support_x": [B, S, *x], "support_y": [B, S, *y], "query_x": [B, Q, *x]},
     query_y [B, Q, *y])

where ``B`` is the meta-batch size (number of tasks), ``S`` and ``Q`` the support and query sizes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from keras_meta._validation import check_int

INPUT_KEYS = ("support_x", "support_y", "query_x")


class Episode(NamedTuple):
    """One task (or a meta-batch of tasks, with a leading task axis)."""

    support_x: Any
    support_y: Any
    query_x: Any
    query_y: Any

    def inputs(self) -> dict:
        """The model inputs: a dict of ``support_x``, ``support_y`` and ``query_x``."""
        return {"support_x": self.support_x, "support_y": self.support_y, "query_x": self.query_x}

    def as_keras(self) -> tuple:
        """``(inputs, query_y)``, the ``(x, y)`` pair Keras' ``fit`` and ``evaluate`` expect."""
        return self.inputs(), self.query_y


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """Static shapes and dtypes of one episode (without the meta-batch axis).

    Args:
        x_shape: shape of one input example, e.g. ``(1,)`` or ``(28, 28, 1)``.
        support_size: examples in the support set (``ways * shots`` for classification).
        query_size: examples in the query set.
        num_classes: ``ways`` for classification (labels are int32 in ``[0, ways)``, shape
            ``()``); ``None`` for regression.
        y_shape: shape of one regression target, e.g. ``(1,)``; ignored for classification.
        x_dtype: dtype of inputs.
    """

    x_shape: tuple
    support_size: int
    query_size: int
    num_classes: int | None = None
    y_shape: tuple = (1,)
    x_dtype: str = "float32"

    def __post_init__(self):
        for name in ("support_size", "query_size"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), 1))
        # >= 2 for classification, None for regression.
        object.__setattr__(self, "num_classes",
                           check_int("num_classes", self.num_classes, 2, allow_none=True))
        object.__setattr__(self, "x_shape", tuple(int(d) for d in self.x_shape))
        object.__setattr__(self, "y_shape", tuple(int(d) for d in self.y_shape))

    @property
    def is_classification(self) -> bool:
        return self.num_classes is not None

    @property
    def target_shape(self) -> tuple:
        return () if self.is_classification else self.y_shape

    @property
    def y_dtype(self) -> str:
        return "int32" if self.is_classification else self.x_dtype

    def shapes(self, meta_batch_size: int | None = None) -> Episode:
        """Shapes of each field, with a leading task axis if ``meta_batch_size`` is given."""
        lead = () if meta_batch_size is None else (meta_batch_size,)
        return Episode(
            lead + (self.support_size,) + self.x_shape,
            lead + (self.support_size,) + self.target_shape,
            lead + (self.query_size,) + self.x_shape,
            lead + (self.query_size,) + self.target_shape,
        )

    def tensor_specs(self, meta_batch_size: int | None = None) -> Episode:
        """``tf.TensorSpec`` of each field (used by datasets and export signatures)."""
        dtypes = (self.x_dtype, self.y_dtype, self.x_dtype, self.y_dtype)
        return Episode(
            *(
                tf.TensorSpec(shape, dtype, name=name)
                for shape, dtype, name in zip(
                    self.shapes(meta_batch_size), dtypes, Episode._fields
                )
            )
        )

    def to_config(self) -> dict:
        return dataclasses.asdict(self)


def validate_episode(episode, spec: EpisodeSpec | None = None, *, batched: bool = True) -> Episode:
    """Check an episode (or meta-batch of episodes) once, at the boundary, and return it.

    Checks ranks and shapes (against ``spec`` when given, else for mutual consistency), that
    support and query have the same feature shape, that labels are integers in ``[0, ways)``
    and that no input or target is NaN or infinite. Works on numpy arrays or eager tensors.

    Args:
        episode: an ``Episode``, a 4-tuple, or ``(inputs_dict, query_y)``.
        spec: the expected ``EpisodeSpec``; if ``None``, shapes are only checked for consistency.
        batched: whether fields carry a leading task axis.

    Returns:
        The episode as an ``Episode`` of numpy arrays.

    Raises:
        ValueError: naming the field, what was received and what was expected.
    """
    episode = as_episode(episode)
    arrays = Episode(*(np.asarray(v) for v in episode))
    lead = 1 if batched else 0
    where = "meta-batch" if batched else "episode"
    sx, sy, qx, qy = arrays

    for name, arr in zip(Episode._fields, arrays):
        if arr.ndim < lead + 1:
            raise ValueError(
                f"`{name}` of the {where} must have rank >= {lead + 1} "
                f"({'[tasks, examples, ...]' if batched else '[examples, ...]'}). "
                f"Received: {name}.shape={arr.shape}"
            )
    if batched:
        tasks = {name: arr.shape[0] for name, arr in zip(Episode._fields, arrays)}
        if len(set(tasks.values())) != 1:
            raise ValueError(f"All fields must have the same number of tasks. Received: {tasks}")
    if sx.shape[lead + 1 :] != qx.shape[lead + 1 :]:
        raise ValueError(
            "`support_x` and `query_x` must have the same feature shape. Received: "
            f"support_x.shape={sx.shape}, query_x.shape={qx.shape}"
        )
    for xname, yname in (("support_x", "support_y"), ("query_x", "query_y")):
        x, y = getattr(arrays, xname), getattr(arrays, yname)
        if x.shape[: lead + 1] != y.shape[: lead + 1]:
            raise ValueError(
                f"`{xname}` and `{yname}` must have the same number of examples. Received: "
                f"{xname}.shape={x.shape}, {yname}.shape={y.shape}"
            )

    if spec is not None:
        expected = spec.shapes()
        for name, arr, shape in zip(Episode._fields, arrays, expected):
            if arr.shape[lead:] != tuple(shape):
                raise ValueError(
                    f"`{name}` has the wrong shape for this task distribution. Expected "
                    f"{'[tasks, ' if batched else '['}{', '.join(map(str, shape))}]. "
                    f"Received: {name}.shape={arr.shape}"
                )

    for name in ("support_x", "query_x"):
        arr = getattr(arrays, name)
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"`{name}` must be numeric. Received: dtype={arr.dtype}")
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise ValueError(
                f"`{name}` contains NaN or infinite values "
                f"(first at index {tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])})."
            )

    classification = spec.is_classification if spec is not None else (
        np.issubdtype(sy.dtype, np.integer) and sy.ndim == lead + 1
    )
    for name in ("support_y", "query_y"):
        arr = getattr(arrays, name)
        if classification:
            if not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(
                    f"`{name}` must hold integer class labels. Received: dtype={arr.dtype}"
                )
            ways = spec.num_classes if spec is not None else int(sy.max()) + 1
            bad = (arr < 0) | (arr >= ways)
            if bad.any():
                raise ValueError(
                    f"`{name}` has labels outside [0, {ways}) (ways={ways}). Received: "
                    f"label {arr[bad].flat[0]} at index "
                    f"{tuple(int(i) for i in np.argwhere(bad)[0])}"
                )
        elif not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` contains NaN or infinite values.")
    return arrays


def as_episode(data) -> Episode:
    """Normalise ``Episode``, a 4-tuple/list, or Keras' ``(inputs_dict, query_y)``."""
    if isinstance(data, Episode):
        return data
    if isinstance(data, dict):
        missing = [k for k in Episode._fields if k not in data]
        if missing:
            raise ValueError(f"Episode dict is missing keys {missing}. Received keys: {list(data)}")
        return Episode(*(data[k] for k in Episode._fields))
    if isinstance(data, (tuple, list)):
        if len(data) == 4:
            return Episode(*data)
        if len(data) == 2 and isinstance(data[0], dict):
            return Episode(*(unpack_inputs(data[0])), data[1])
    raise ValueError(
        "Expected an episode: an `Episode`, a 4-tuple (support_x, support_y, query_x, query_y) "
        f"or ({{'support_x', 'support_y', 'query_x'}}, query_y). Received: {type(data).__name__}"
    )


def unpack_inputs(inputs) -> tuple:
    """``(support_x, support_y, query_x)`` from a dict or a 3-tuple."""
    if isinstance(inputs, dict):
        missing = [k for k in INPUT_KEYS if k not in inputs]
        if missing:
            raise ValueError(
                f"Inputs are missing keys {missing}; expected {list(INPUT_KEYS)}. "
                f"Received keys: {list(inputs)}"
            )
        return tuple(inputs[k] for k in INPUT_KEYS)
    if isinstance(inputs, (tuple, list)) and len(inputs) == 3:
        return tuple(inputs)
    raise ValueError(
        "Inputs must be a dict with keys 'support_x', 'support_y', 'query_x' or a 3-tuple. "
        f"Received: {type(inputs).__name__}"
    )


def episode_dataset(episodes, meta_batch_size: int, spec: EpisodeSpec | None = None, *,
                    repeat: bool = False):
    """A `tf.data.Dataset` of meta-batches from a user's own episodes, validated once here.

    Args:
        episodes: an `Episode` (or 4-tuple, or ``(inputs, query_y)``) of arrays with a leading
            task axis.
        meta_batch_size: tasks per element (the last, smaller meta-batch is dropped, so shapes
            stay static).
        spec: the expected `EpisodeSpec`, if known.
        repeat: cycle endlessly (for ``fit`` with ``steps_per_epoch``).

    Raises:
        ValueError: from `validate_episode`, naming the field; or if there are fewer tasks than
            ``meta_batch_size``.
    """
    episode = validate_episode(episodes, spec)
    tasks = len(episode.support_x)
    if tasks < meta_batch_size:
        raise ValueError(f"`episodes` holds {tasks} tasks, fewer than "
                         f"meta_batch_size={meta_batch_size}.")
    ds = tf.data.Dataset.from_tensor_slices(episode.as_keras())
    if repeat:
        ds = ds.repeat()
    return ds.batch(meta_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
