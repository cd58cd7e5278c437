"""N-way K-shot episodes from pools of labelled images (Omniglot, a user's folders, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from keras_meta._validation import check_int
from keras_meta.datasets.class_images import ClassImages
from keras_meta.tasks.distribution import SPLITS, TaskDistribution
from keras_meta.tasks.episode import Episode, EpisodeSpec


class ImageClassTasks(TaskDistribution):
    """N-way K-shot classification episodes drawn from disjoint class pools per split.

    Each episode draws ``ways`` distinct classes of the split, then ``shots + queries`` distinct
    images of each (so support and query never share an image), and labels the classes
    ``0..ways-1`` in a random order (labels are permuted per episode). Support and query are
    ordered by label. Sampling runs inside the `tf.data` graph on a stateless seed, so episodes
    are deterministic for a seed and a pipeline can resume at any meta-batch. Images are
    scaled to ``[0, 1]`` float32.

    Args:
        pools: ``{"train": ClassImages, "val": ..., "test": ...}`` with disjoint classes.
        ways: classes per episode.
        shots: support images per class.
        queries: query images per class.
        augment: training-split augmentation, a name or a list of names applied in order:
            ``"rotate90"`` rotates all images of an episode by one random multiple of 90
            degrees (a new class for the episode, as with Omniglot's rotation classes);
            ``"shift"`` translates every image independently by up to ``max_shift`` pixels
            each way, filling the border by mirroring it. ``None`` for none. Validation
            and test episodes are never augmented.
        max_shift: largest translation of ``"shift"``, in pixels.
        name: name of the task family, recorded with results.
    """

    def __init__(self, pools: Mapping[str, ClassImages], ways: int = 5, shots: int = 1,
                 queries: int = 15, augment: str | Sequence[str] | None = None,
                 max_shift: int = 2, name: str = "images"):
        ways = check_int("ways", ways, 2)
        shots = check_int("shots", shots, 1)
        queries = check_int("queries", queries, 1)
        augment = _augmentations(augment)
        max_shift = check_int("max_shift", max_shift, 1)
        unknown = set(pools) - set(SPLITS)
        if unknown or not pools:
            raise ValueError(f"`pools` keys must be among {SPLITS}. Received: {sorted(pools)}")
        names = {split: set(pool.class_names) for split, pool in pools.items()}
        for a in names:
            for b in names:
                if a < b and names[a] & names[b]:
                    raise ValueError(f"Splits {a!r} and {b!r} share classes, e.g. "
                                     f"{sorted(names[a] & names[b])[:3]}; they must be disjoint.")
        shapes = {pool.image_shape for pool in pools.values()}
        if len(shapes) != 1:
            raise ValueError(f"All pools must have the same image shape. Received: {shapes}")
        side = min(next(iter(shapes))[:2])
        if "shift" in augment and max_shift >= side:
            raise ValueError(f"`max_shift` must be smaller than the images' side {side}. "
                             f"Received: max_shift={max_shift}")
        need = shots + queries
        for split, pool in pools.items():
            if pool.num_classes < ways:
                raise ValueError(f"Split {split!r} has {pool.num_classes} classes, fewer than "
                                 f"ways={ways}.")
            short = np.flatnonzero(pool.images_per_class < need)
            if len(short):
                raise ValueError(
                    f"Class {pool.class_names[short[0]]!r} of split {split!r} has "
                    f"{pool.images_per_class[short[0]]} images, fewer than shots + queries = "
                    f"{need}. Lower shots/queries or drop such classes.")
        self.pools = dict(pools)
        self.ways, self.shots, self.queries = ways, shots, queries
        self.augment, self.max_shift = augment, max_shift
        self.name = name
        self.spec = EpisodeSpec(x_shape=next(iter(shapes)), support_size=ways * shots,
                                query_size=ways * queries, num_classes=ways)
        self._tables = {split: _tables(pool) for split, pool in self.pools.items()}

    def sample_episode(self, split: str, seed: tf.Tensor) -> Episode:
        if split not in self._tables:
            raise ValueError(f"No class pool for split {split!r}; have {sorted(self._tables)}.")
        images, members, counts = self._tables[split]
        class_seed, image_seed, aug_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, num=3))
        num_classes = tf.shape(counts)[0]
        classes = tf.argsort(tf.random.stateless_uniform([num_classes], class_seed))[: self.ways]
        # Distinct images per class: rank uniform noise, pushing padding slots to the end.
        noise = tf.random.stateless_uniform([self.ways, tf.shape(members)[1]], image_seed)
        valid = tf.range(tf.shape(members)[1])[None] < tf.gather(counts, classes)[:, None]
        order = tf.argsort(tf.where(valid, noise, 2.0), axis=1)[:, : self.shots + self.queries]
        picked = tf.gather(tf.gather(members, classes), order, batch_dims=1)  # [ways, s+q]
        x = tf.cast(tf.gather(images, picked), tf.float32) / 255.0
        if self.augment and split == "train":
            x = tf.reshape(x, (-1,) + self.spec.x_shape)
            seeds = tf.random.experimental.stateless_split(aug_seed, num=len(self.augment))
            for name, op_seed in zip(self.augment, tf.unstack(seeds)):
                if name == "rotate90":
                    turns = tf.random.stateless_uniform([], op_seed, 0, 4, dtype=tf.int32)
                    x = tf.image.rot90(x, turns)
                else:
                    x = _shift(x, self.max_shift, op_seed)
            x = tf.reshape(x, (self.ways, self.shots + self.queries) + self.spec.x_shape)
        labels = tf.range(self.ways, dtype=tf.int32)[:, None]
        support_x = tf.reshape(x[:, : self.shots], (-1,) + self.spec.x_shape)
        query_x = tf.reshape(x[:, self.shots :], (-1,) + self.spec.x_shape)
        support_y = tf.reshape(tf.tile(labels, [1, self.shots]), [-1])
        query_y = tf.reshape(tf.tile(labels, [1, self.queries]), [-1])
        return Episode(support_x, support_y, query_x, query_y)

    def get_config(self) -> dict:
        return {"ways": self.ways, "shots": self.shots, "queries": self.queries,
                "augment": list(self.augment), "max_shift": self.max_shift,
                "pools": {s: _plain(p.metadata) | {"classes": p.num_classes}
                          for s, p in self.pools.items()}}


AUGMENTATIONS = ("rotate90", "shift")


def _augmentations(augment) -> tuple[str, ...]:
    if isinstance(augment, str):
        names = (augment,)
    elif isinstance(augment, Sequence) or augment is None:
        names = tuple(augment or ())
    else:
        names = (augment,)  # not a name: refused below with the rest
    if any(name not in AUGMENTATIONS for name in names):
        raise ValueError(f"`augment` must be None, one of {AUGMENTATIONS} or a list of them. "
                         f"Received: {augment!r}")
    return names


def _shift(x: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
    """Translates each image of ``[n, h, w, c]`` by its own random offset in
    ``[-max_shift, max_shift]`` per axis; the border is mirrored (background stays background)."""
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    m = max_shift
    padded = tf.pad(x, [[0, 0], [m, m], [m, m], [0, 0]], mode="SYMMETRIC")
    start = tf.random.stateless_uniform([n, 2], seed, 0, 2 * m + 1, dtype=tf.int32)
    rows = start[:, :1] + tf.range(h)[None]  # [n, h]
    cols = start[:, 1:] + tf.range(w)[None]  # [n, w]
    x = tf.gather(padded, rows, axis=1, batch_dims=1)  # [n, h, w + 2m, c]
    return tf.gather(x, cols, axis=2, batch_dims=1)


def _plain(value):
    """JSON-ready copy of (possibly read-only) metadata."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tables(pool: ClassImages):
    """Images and a padded ``[classes, max images]`` index table, as constants."""
    members = np.zeros((pool.num_classes, int(pool.images_per_class.max())), np.int32)
    for c, idx in enumerate(pool.indices_by_class):
        members[c, : len(idx)] = idx
    return (tf.constant(pool.images), tf.constant(members),
            tf.constant(pool.images_per_class.astype(np.int32)))
