"""Invariants of the N-way K-shot image episode sampler."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_meta.datasets import ClassImages
from keras_meta.tasks import ImageClassTasks
from keras_meta.tasks.augmentations import Affine, Rotate90, Shift


def pool(classes, per_class, prefix, size=4, seed=0):
    """Every image is unique: pixel 0 encodes (class, index) so episodes can be decoded."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(classes * per_class, size, size, 1), dtype=np.uint8)
    ids = np.arange(classes * per_class)
    images[:, 0, 0, 0] = ids % 256
    images[:, 0, 1, 0] = ids // 256
    labels = np.repeat(np.arange(classes), per_class)
    return ClassImages(images, labels, [f"{prefix}{c}" for c in range(classes)])


def decode(x):
    """Image ids from the two marker pixels of float images in [0, 1]."""
    low = np.rint(x[..., 0, 0, 0] * 255).astype(int)
    return low + 256 * np.rint(x[..., 0, 1, 0] * 255).astype(int)


POOLS = {"train": pool(12, 7, "a"), "val": pool(6, 7, "b", seed=1), "test": pool(8, 7, "c", seed=2)}


@settings(max_examples=15, deadline=None)
@given(ways=st.integers(2, 6), shots=st.integers(1, 3), queries=st.integers(1, 4),
       seed=st.integers(0, 2**31 - 1), split=st.sampled_from(["train", "val", "test"]))
def test_episode_invariants(ways, shots, queries, seed, split):
    tasks = ImageClassTasks(POOLS, ways, shots, queries)
    ep = tasks.episodes(split, 3, seed=seed)
    assert ep.support_x.shape == (3, ways * shots, 4, 4, 1)
    assert ep.query_x.shape == (3, ways * queries, 4, 4, 1)
    assert ep.support_x.dtype == np.float32 and 0 <= ep.support_x.min() <= ep.support_x.max() <= 1
    source = POOLS[split]
    for t in range(3):
        s_ids, q_ids = decode(ep.support_x[t]), decode(ep.query_x[t])
        assert not set(s_ids) & set(q_ids), "support and query share an image"
        assert len(set(s_ids)) == len(s_ids) and len(set(q_ids)) == len(q_ids)
        # Labels are 0..ways-1, each used shots (support) / queries (query) times...
        assert np.bincount(ep.support_y[t], minlength=ways).tolist() == [shots] * ways
        assert np.bincount(ep.query_y[t], minlength=ways).tolist() == [queries] * ways
        # ...and a label means the same source class in support and query.
        s_class = source.labels[s_ids]
        q_class = source.labels[q_ids]
        mapping = dict(zip(ep.support_y[t], s_class))
        assert len(set(mapping.values())) == ways
        assert all(mapping[y] == c for y, c in zip(ep.query_y[t], q_class))
        assert all(mapping[y] == c for y, c in zip(ep.support_y[t], s_class))


def test_labels_are_permuted_across_episodes():
    tasks = ImageClassTasks(POOLS, 5, 1, 1)
    ep = tasks.episodes("train", 40, seed=0)
    first_class = POOLS["train"].labels[decode(ep.support_x[:, 0])]
    assert len(set(first_class)) > 3  # label 0 is not always the same class


def test_deterministic_and_split_disjoint():
    tasks = ImageClassTasks(POOLS, 3, 2, 2)
    a, b = tasks.episodes("train", 5, seed=7), tasks.episodes("train", 5, seed=7)
    np.testing.assert_array_equal(a.support_x, b.support_x)
    c = tasks.episodes("train", 5, seed=8)
    assert not np.array_equal(a.support_x, c.support_x)


def test_rotation_augmentation_only_on_train():
    tasks = ImageClassTasks(POOLS, 3, 1, 1, augment="rotate90")
    test = tasks.episodes("test", 10, seed=0)
    plain = ImageClassTasks(POOLS, 3, 1, 1).episodes("test", 10, seed=0)
    np.testing.assert_array_equal(test.support_x, plain.support_x)
    train = tasks.episodes("train", 20, seed=0)
    ids_ok = [np.isin(decode(x), np.arange(84)).all() for x in train.support_x]
    assert not all(ids_ok)  # rotated images no longer carry the marker in the corner


def _offsets(plain, shifted, m):
    """The (dy, dx) with which `shifted` is `plain` translated (mirrored border), or None."""
    padded = np.pad(plain, [(m, m), (m, m), (0, 0)], mode="symmetric")
    h, w = plain.shape[:2]
    for dy in range(2 * m + 1):
        for dx in range(2 * m + 1):
            if np.array_equal(padded[dy : dy + h, dx : dx + w], shifted):
                return dy - m, dx - m
    return None


def test_shift_augmentation_translates_each_training_image():
    pools = {"train": pool(12, 7, "a", size=8), "test": pool(8, 7, "c", size=8, seed=2)}
    shifted = ImageClassTasks(pools, 3, 2, 3, augment="shift", max_shift=2)
    plain = ImageClassTasks(pools, 3, 2, 3)
    np.testing.assert_array_equal(shifted.episodes("test", 4, seed=1).query_x,
                                  plain.episodes("test", 4, seed=1).query_x)
    a, b = shifted.episodes("train", 4, seed=1), plain.episodes("train", 4, seed=1)
    offsets = [_offsets(p, s, 2)
               for p, s in zip(np.concatenate([b.support_x, b.query_x], 1).reshape(-1, 8, 8, 1),
                               np.concatenate([a.support_x, a.query_x], 1).reshape(-1, 8, 8, 1))]
    assert None not in offsets  # every image is its source image, moved by at most 2 pixels
    assert len(set(offsets)) > 10  # each image has its own offset (25 possible)
    np.testing.assert_array_equal(a.support_y, b.support_y)


def test_a_list_of_augmentations_is_kept_in_order_and_deterministic():
    tasks = ImageClassTasks(POOLS, 3, 1, 1, augment=["rotate90", "shift"], max_shift=1)
    assert tasks.augment == (Rotate90(), Shift(1))
    assert tasks.get_config()["augment"] == [{"name": "rotate90"},
                                             {"name": "shift", "max_shift": 1}]
    a = tasks.episodes("train", 2, seed=0)
    np.testing.assert_array_equal(a.support_x, tasks.episodes("train", 2, seed=0).support_x)


def test_affine_augmentation_from_a_config_dict_distorts_training_images_only():
    pools = {"train": pool(12, 7, "a", size=8), "test": pool(8, 7, "c", size=8, seed=2)}
    config = {"name": "affine", "rotation": 15, "scale": 0.1}
    tasks = ImageClassTasks(pools, 3, 2, 3, augment=[config])
    plain = ImageClassTasks(pools, 3, 2, 3)
    assert tasks.get_config()["augment"] == [Affine(15, 0.1).get_config()]
    np.testing.assert_array_equal(tasks.episodes("test", 2, seed=1).query_x,
                                  plain.episodes("test", 2, seed=1).query_x)
    a, b = tasks.episodes("train", 2, seed=1), plain.episodes("train", 2, seed=1)
    assert a.support_x.shape == b.support_x.shape
    changed = np.abs(a.support_x - b.support_x).reshape(-1, 64).max(axis=1) > 0.01
    assert changed.mean() > 0.9  # each image gets its own distortion
    assert 0.0 <= a.support_x.min() and a.support_x.max() <= 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"ways": 1}, "ways"),
    ({"ways": 13}, "fewer than ways=13"),
    ({"shots": 5, "queries": 3}, "fewer than shots \\+ queries"),
    ({"augment": "flip"}, "`augment` entries must be one of"),
    ({"augment": ["shift", "flip"]}, "Received: 'flip'"),
    ({"augment": 5}, "`augment` must be None, an augmentation"),
    ({"augment": {"name": "affine", "rotation": -1}}, "`rotation` must be a number in"),
    ({"augment": "shift", "max_shift": 0}, "`max_shift` must be an integer >= 1"),
    ({"augment": "shift", "max_shift": 4}, "`max_shift` must be smaller than the images' side 4"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageClassTasks(POOLS, **{"ways": 3, **kwargs})


def test_overlapping_splits_are_refused():
    with pytest.raises(ValueError, match="share classes"):
        ImageClassTasks({"train": pool(5, 3, "a"), "test": pool(5, 3, "a")}, 2, 1, 1)


def test_config_is_json_ready():
    import json

    config = ImageClassTasks(POOLS, 3, 1, 1).get_config()
    assert json.loads(json.dumps(config))["pools"]["train"]["classes"] == 12
