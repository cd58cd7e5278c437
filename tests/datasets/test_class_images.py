"""Tests of the `ClassImages` container."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from keras_meta.datasets import ClassImages


def make(num_classes: int = 3, per_class: int = 2, **overrides) -> ClassImages:
    n = num_classes * per_class
    kwargs = {
        "images": np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2, 1),
        "labels": np.repeat(np.arange(num_classes), per_class),
        "class_names": [f"c{i}" for i in range(num_classes)],
        "groups": ["g0"] * (num_classes - 1) + ["g1"],
        "metadata": {"dataset": "fake", "nested": {"a": [1, 2]}},
    }
    kwargs.update(overrides)
    return ClassImages(**kwargs)


def test_fields_and_derived_values():
    pool = make()
    assert pool.num_classes == 3 and pool.num_images == 6
    assert pool.image_shape == (2, 2, 1)
    assert pool.labels.dtype == np.int32
    assert pool.images_per_class.tolist() == [2, 2, 2]
    assert [i.tolist() for i in pool.indices_by_class] == [[0, 1], [2, 3], [4, 5]]
    assert pool.class_index("c2") == 2
    assert "num_classes=3" in repr(pool) and "dataset='fake'" in repr(pool)


def test_interleaved_labels_and_default_groups():
    pool = ClassImages(np.zeros((4, 1, 1, 3), np.uint8), [1, 0, 1, 0], ("a", "b"))
    assert [i.tolist() for i in pool.indices_by_class] == [[1, 3], [0, 2]]
    assert pool.groups == ("a", "b")


def test_is_immutable():
    images = np.zeros((2, 1, 1, 1), np.uint8)
    pool = ClassImages(images, [0, 1], ["a", "b"], metadata={"x": [1]})
    with pytest.raises(ValueError, match="read-only"):
        pool.images[0] = 1
    with pytest.raises(ValueError, match="read-only"):
        pool.labels[0] = 1
    with pytest.raises(AttributeError):
        pool.images = images
    with pytest.raises(AttributeError):
        pool.extra = 1
    with pytest.raises(TypeError):
        pool.metadata["x"] = 2
    assert pool.metadata["x"] == (1,)
    images[0] = 7  # the caller's own array stays writable
    assert images.flags.writeable


def test_subset_relabels_in_given_order():
    pool = make()
    sub = pool.subset([2, 0])
    assert sub.class_names == ("c2", "c0") and sub.groups == ("g1", "g0")
    np.testing.assert_array_equal(sub.labels, [0, 0, 1, 1])
    np.testing.assert_array_equal(sub.images, pool.images[[4, 5, 0, 1]])
    assert sub.metadata == pool.metadata
    assert pool.subset(["c1"]).class_names == ("c1",)
    assert pool.subset(np.array([1])).class_names == ("c1",)


@pytest.mark.parametrize("classes, message", [
    ([], "must not be empty"),
    ([0, 3], r"indices must lie in \[0, 2\]. Received: \[3\]"),
    ([0, 0], "must not repeat a class"),
    (["c0", "zz"], r"1 unknown class\(es\). Received: \['zz'\]"),
    ([0, "c1"], "all ints .* or all strs"),
    ("c0", "must be a sequence"),
    ([True], "all ints"),
])
def test_subset_errors(classes, message):
    with pytest.raises(ValueError, match=message):
        make().subset(classes)


def test_class_index_unknown():
    with pytest.raises(KeyError, match="Received: name='nope'"):
        make().class_index("nope")


def test_pickle_round_trip():
    pool = make()
    copy = pickle.loads(pickle.dumps(pool))
    np.testing.assert_array_equal(copy.images, pool.images)
    assert copy.class_names == pool.class_names and copy.metadata == pool.metadata
    assert not copy.images.flags.writeable


def test_with_metadata():
    pool = make().with_metadata(split="x")
    assert pool.metadata["split"] == "x" and pool.metadata["dataset"] == "fake"


@pytest.mark.parametrize("overrides, message", [
    ({"images": [[0]]}, r"`images` must be a numpy array .*Received: images of type list"),
    ({"images": np.zeros((6, 2, 2, 1), np.float32)},
     r"`images` must have dtype uint8.*Received: images.dtype=float32"),
    ({"images": np.zeros((6, 2, 2), np.uint8)},
     r"shape \[N, H, W, C\].*Received: images.shape=\(6, 2, 2\)"),
    ({"images": np.zeros((6, 2, 0, 1), np.uint8)}, r"H, W, C > 0"),
    ({"labels": np.zeros(5, int)}, r"`labels` must have shape \[N\] = \[6\].*\(5,\)"),
    ({"labels": np.zeros(6, float)}, r"`labels` must be integers.*float64"),
    ({"labels": [0, 0, 1, 1, 2, 3]}, r"lie in \[0, 2\].*Received: labels in \[0, 3\]"),
    ({"labels": [0, 0, 1, 1, -1, 0]}, r"Received: labels in \[-1, 1\]"),
    ({"labels": [0, 0, 0, 0, 2, 2]}, r"no images for class 1 \('c1'\)"),
    ({"class_names": "abc"}, r"`class_names` must be a sequence of strings"),
    ({"class_names": ["a", "b", "a"]}, r"must be unique.*\['a'\]"),
    ({"class_names": ["a", "", "c"]}, r"non-empty strings"),
    ({"class_names": [], "labels": np.zeros(6, int)}, r"at least one class"),
    ({"groups": ["g"]}, r"`groups` must have one entry per class \(3\).*len\(groups\)=1"),
    ({"groups": ["g", 1, "g"]}, r"`groups` must contain non-empty strings"),
    ({"metadata": [("a", 1)]}, r"`metadata` must be a mapping"),
])
def test_constructor_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)
