"""N-way K-shot episodes from pools of labelled images (Omniglot, a user's folders, ...)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from keras_meta._validation import check_int
from keras_meta.datasets.class_images import ClassImages
from keras_meta.tasks import augmentations
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
        augment: training-split augmentation (`keras_meta.tasks.augmentations`): a name, a
            config dict, an `Augmentation`, or a list of them applied in order.
            ``"rotate90"`` rotates all images of an episode by one random multiple of 90
            degrees (a new class for the episode, as with Omniglot's rotation classes);
            ``"shift"`` translates every image independently by up to ``max_shift`` pixels
            each way, filling the border by mirroring it; ``"affine"`` (or
            ``{"name": "affine", "rotation": 10, "scale": 0.1, ...}``) distorts each image
            by a random rotation, scaling, shear and translation. ``None`` for none.
            Validation and test episodes are never augmented.
        max_shift: largest translation of a ``"shift"`` given by name, in pixels.
        name: name of the task family, recorded with results.
    """

    def __init__(self, pools: Mapping[str, ClassImages], ways: int = 5, shots: int = 1,
                 queries: int = 15, augment=None, max_shift: int = 2, name: str = "images"):
        ways = check_int("ways", ways, 2)
        shots = check_int("shots", shots, 1)
        queries = check_int("queries", queries, 1)
        max_shift = check_int("max_shift", max_shift, 1)
        augment = augmentations.get_list(augment, max_shift=max_shift)
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
        for augmentation in augment:
            augmentation.check(next(iter(shapes)))
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
        self.augment = augment
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
            for augmentation, op_seed in zip(self.augment, tf.unstack(seeds)):
                x = augmentation(x, op_seed)
            x = tf.reshape(x, (self.ways, self.shots + self.queries) + self.spec.x_shape)
        labels = tf.range(self.ways, dtype=tf.int32)[:, None]
        support_x = tf.reshape(x[:, : self.shots], (-1,) + self.spec.x_shape)
        query_x = tf.reshape(x[:, self.shots :], (-1,) + self.spec.x_shape)
        support_y = tf.reshape(tf.tile(labels, [1, self.shots]), [-1])
        query_y = tf.reshape(tf.tile(labels, [1, self.queries]), [-1])
        return Episode(support_x, support_y, query_x, query_y)

    def get_config(self) -> dict:
        return {"ways": self.ways, "shots": self.shots, "queries": self.queries,
                "augment": [a.get_config() for a in self.augment],
                "pools": {s: _plain(p.metadata) | {"classes": p.num_classes}
                          for s, p in self.pools.items()}}


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
