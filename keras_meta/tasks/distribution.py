"""`TaskDistribution`: a family of tasks and the `tf.data` pipeline of its episodes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_meta._validation import check_int
from keras_meta.tasks.episode import Episode, EpisodeSpec

SPLITS = ("train", "val", "test")

# Distinct stateless-RNG streams per (seed, split): tasks of different splits never coincide.
_SPLIT_STREAMS = {name: i for i, name in enumerate(SPLITS)}


class TaskDistribution:
    """A distribution over tasks, sampled as episodes with static shapes.

    Subclasses set ``spec`` (an `EpisodeSpec`) and implement ``sample_episode(split, seed)``, a
    pure TensorFlow function of a stateless seed (shape ``[2]``, int64), so that episodes are
    produced inside the `tf.data` graph, deterministically. A subclass may override
    ``sample_meta_batch`` to draw a whole meta-batch with vectorised ops.

    Episode ``i`` of meta-batch ``b`` of a split is a pure function of ``(seed, split, b, i)``:
    a pipeline can start at any meta-batch (``start``), which is how a resumed run continues
    exactly where the interrupted one stopped.
    """

    spec: EpisodeSpec
    name: str = "tasks"

    def sample_episode(self, split: str, seed: tf.Tensor) -> Episode:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `sample_episode(split, seed)`."
        )

    def sample_meta_batch(self, split: str, seeds: tf.Tensor) -> Episode:
        """Draw ``len(seeds)`` episodes; ``seeds`` has shape ``[tasks, 2]``."""
        specs = self.spec.tensor_specs()
        return tf.map_fn(
            lambda s: self.sample_episode(split, s),
            seeds,
            fn_output_signature=Episode(*specs),
        )

    def dataset(
        self,
        split: str = "train",
        meta_batch_size: int = 32,
        *,
        seed: int = 0,
        start: int | tf.Variable | Callable[[], tf.Tensor] = 0,
        num_batches: int | None = None,
    ) -> tf.data.Dataset:
        """A `tf.data.Dataset` of meta-batches ``(inputs, query_y)`` with static shapes.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            meta_batch_size: tasks per element.
            seed: base seed; the same seed gives the same episodes.
            start: index of the first meta-batch. A variable (for example the optimizer's
                ``iterations``) or a callable is read when iteration begins, so a restored
                checkpoint resumes the task stream where it stopped.
            num_batches: number of meta-batches, or ``None`` for an endless stream.
        """
        check_split(split)
        meta_batch_size = check_int("meta_batch_size", meta_batch_size, 1)
        stream = tf.constant([int(seed), _SPLIT_STREAMS[split]], tf.int64)

        def first_batch(_):
            value = start() if callable(start) else start
            value = getattr(value, "value", value)  # a keras.Variable's tf.Variable
            first = tf.cast(tf.convert_to_tensor(value), tf.int64)
            stop = first + num_batches if num_batches is not None else tf.int64.max
            return tf.data.Dataset.range(first, stop)

        def make_batch(batch_index):
            tasks = tf.range(meta_batch_size, dtype=tf.int64)
            # One 64-bit stream id per (seed, split); one counter per episode.
            key = stream[0] * 4 + stream[1]
            seeds = tf.stack(
                [tf.fill([meta_batch_size], key), batch_index * meta_batch_size + tasks], axis=1
            )
            episode = self.sample_meta_batch(split, seeds)
            return episode.as_keras()

        ds = tf.data.Dataset.from_tensors(0).flat_map(first_batch)
        ds = ds.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if num_batches is not None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(num_batches))
        return ds.prefetch(tf.data.AUTOTUNE)

    def episodes(self, split: str, num_episodes: int, *, seed: int = 0,
                 meta_batch_size: int | None = None) -> Episode:
        """``num_episodes`` episodes of ``split`` as numpy arrays with a leading task axis."""
        meta_batch_size = meta_batch_size or min(num_episodes, 100)
        batches = -(-num_episodes // meta_batch_size)
        parts = list(
            self.dataset(split, meta_batch_size, seed=seed, num_batches=batches).as_numpy_iterator()
        )
        fields = [np.concatenate([p[0][k] for p in parts]) for k in ("support_x", "support_y",
                                                                     "query_x")]
        fields.append(np.concatenate([p[1] for p in parts]))
        return Episode(*(f[:num_episodes] for f in fields))

    def get_config(self) -> dict:
        return {}


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
