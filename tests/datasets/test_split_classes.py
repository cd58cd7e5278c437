"""Tests of `split_classes`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_meta.datasets import ClassImages, load_omniglot, split_classes


def pool_of(num_classes: int, groups: int = 4) -> ClassImages:
    return ClassImages(
        images=np.zeros((num_classes, 1, 1, 1), np.uint8),
        labels=np.arange(num_classes),
        class_names=[f"c{i:03d}" for i in range(num_classes)],
        groups=[f"g{i % groups}" for i in range(num_classes)],
        metadata={"dataset": "fake"},
    )


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(1, 80),
    weights=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_fractions_give_disjoint_covering_splits(num_classes, weights, seed):
    fractions = {f"s{i}": w / sum(weights) for i, w in enumerate(weights)}
    pool = pool_of(num_classes)
    try:
        parts = split_classes(pool, fractions, seed=seed)
    except ValueError as e:
        # Only allowed when some split would be empty.
        assert "would get no class" in str(e)
        assert min(round(f * num_classes) for f in fractions.values()) <= 1
        return
    assert list(parts) == list(fractions)
    names = [set(p.class_names) for p in parts.values()]
    assert sum(len(n) for n in names) == num_classes  # disjoint ...
    assert set().union(*names) == set(pool.class_names)  # ... and covering
    for name, part in parts.items():
        assert abs(part.num_classes - fractions[name] * num_classes) <= 1
        assert part.metadata["partition"] == name
        assert part.metadata["partition_seed"] == seed
    again = split_classes(pool, fractions, seed=seed)
    assert all(again[k].class_names == parts[k].class_names for k in parts)


def test_default_names_and_seed_changes_assignment():
    pool = pool_of(40)
    parts = split_classes(pool)
    assert {k: v.num_classes for k, v in parts.items()} == {"train": 28, "val": 6, "test": 6}
    assert split_classes(pool, (0.5, 0.5))["test"].num_classes == 20
    other = split_classes(pool, seed=1)
    assert other["train"].class_names != parts["train"].class_names
    # Classes keep the pool's order inside a split.
    assert list(parts["train"].class_names) == sorted(parts["train"].class_names)


def test_lists_of_names():
    pool = pool_of(6)
    parts = split_classes(pool, {"a": ["c005", "c001"], "b": ["c002"]})
    assert parts["a"].class_names == ("c001", "c005")
    assert parts["b"].metadata["partition_seed"] is None
    parts = split_classes(pool, [["c000"], ["c001"], ["c002"]])
    assert list(parts) == ["train", "val", "test"]


def test_by_group_keeps_groups_whole():
    pool = pool_of(40, groups=5)
    parts = split_classes(pool, (0.6, 0.2, 0.2), seed=3, by_group=True)
    groups = [set(p.groups) for p in parts.values()]
    assert [len(g) for g in groups] == [3, 1, 1]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert sum(p.num_classes for p in parts.values()) == 40
    assert parts["val"].metadata["partition_by"] == "group"
    named = split_classes(pool, {"x": ["g0"], "y": ["g1", "g2"]}, by_group=True)
    assert set(named["y"].groups) == {"g1", "g2"} and named["x"].num_classes == 8


def test_on_an_omniglot_pool(omniglot_dir, cache_dir):
    pool = load_omniglot(root=omniglot_dir, cache_dir=cache_dir, subset="all", image_size=8)
    parts = split_classes(pool, (0.5, 0.5), seed=0, by_group=True)
    assert not set(parts["train"].groups) & set(parts["test"].groups)
    assert parts["train"].metadata["dataset"] == "omniglot"


@pytest.mark.parametrize("fractions, message", [
    ((0.5, 0.6), r"must sum to 1.*sum 1\.1"),
    ((1.2, -0.2), "must be positive and finite"),
    ((0.5, float("nan"), 0.5), "must be positive and finite"),
    ((1.0,), "must have 2 .* or 3 .* entries"),
    ((0.25,) * 4, "use a dict"),
    ({}, "must not be empty"),
    ({"a": 0.5, 1: 0.5}, "keys must be non-empty split names"),
    ({"a": 0.5, "b": ["c000"]}, "either only positive numbers or only lists"),
    ("train", "must be a sequence or a mapping"),
    ({"a": ["c000", "zzz"]}, r"Split 'a' names 1 unknown class\(es\): \['zzz'\]"),
    ({"a": ["c000"], "b": ["c001", "c000"]}, r"'c000' is listed in split 'b' and in 'a'"),
    ({"a": ["c000", "c000"]}, r"'c000' is listed in split 'a' twice"),
    ({"a": ["c000"], "b": []}, r"Split 'b' lists no class"),
    ((0.98, 0.01, 0.01), r"Split 'val' would get no class"),
])
def test_errors(fractions, message):
    with pytest.raises(ValueError, match=message):
        split_classes(pool_of(10), fractions)


def test_argument_type_errors():
    with pytest.raises(ValueError, match="`class_images` must be a ClassImages"):
        split_classes([1, 2, 3])
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0. Received: seed=-1"):
        split_classes(pool_of(10), seed=-1)
    with pytest.raises(ValueError, match="`by_group` must be a bool"):
        split_classes(pool_of(10), by_group="yes")
