"""Class-level (or group-level) splits of a `ClassImages` pool."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from keras_meta._validation import check_int
from keras_meta.datasets.class_images import ClassImages

__all__ = ["split_classes"]

_DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}

Fractions = Sequence[float] | Mapping[str, float]
NameLists = Sequence[Sequence[str]] | Mapping[str, Sequence[str]]


def split_classes(
    class_images: ClassImages,
    fractions: Fractions | NameLists = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    by_group: bool = False,
) -> dict[str, ClassImages]:
    """Splits a pool into pools with disjoint classes (e.g. train/val/test).

    Either by fractions, drawn at random with `seed`, or by explicit lists
    of class names. With `by_group=True` whole groups (for Omniglot:
    alphabets) are assigned instead of classes, so no group is shared
    between splits.

    Example:

    >>> import numpy as np
    >>> pool = ClassImages(np.zeros((10, 2, 2, 1), np.uint8), np.arange(10),
    ...                    [f"c{i}" for i in range(10)])
    >>> parts = split_classes(pool, (0.6, 0.2, 0.2), seed=0)
    >>> {name: part.num_classes for name, part in parts.items()}
    {'train': 6, 'val': 2, 'test': 2}
    >>> split_classes(pool, {"a": ["c0", "c1"], "b": ["c9"]})["b"].class_names
    ('c9',)

    Args:
        class_images: the pool to split.
        fractions: one of
            - 2 or 3 positive floats summing to 1, named ("train", "test")
              or ("train", "val", "test");
            - a mapping of split name to positive float, summing to 1;
            - a mapping of split name to a list of class names (of group
              names with `by_group`), or 2-3 such lists named as above. The
              lists must be disjoint; they need not cover every class.
            With fractions, split i gets `round(n * (f_1 + ... + f_i)) -
            round(n * (f_1 + ... + f_{i-1}))` of the n classes (or groups),
            so the splits cover the pool.
        seed: seed of the random assignment (non-negative int); unused
            with lists.
        by_group: assign whole groups rather than classes.

    Returns:
        A dict from split name to `ClassImages`, in the given order. Each
        keeps the pool's class order and metadata, plus `partition` (its
        name), `partition_seed` (None for lists) and `partition_by`
        ("class" or "group").

    Raises:
        ValueError: for fractions that are not positive or do not sum to 1,
            a split that would get no class, unknown or repeated names in
            the lists, lists that overlap, or a bad `seed`.
    """
    if not isinstance(class_images, ClassImages):
        raise ValueError(
            "`class_images` must be a ClassImages. "
            f"Received: class_images of type {type(class_images).__name__}"
        )
    if not isinstance(by_group, bool):
        raise ValueError(f"`by_group` must be a bool. Received: by_group={by_group!r}")
    kind = "group" if by_group else "class"
    units = (
        sorted(set(class_images.groups)) if by_group else list(class_images.class_names)
    )
    named = _name_splits(fractions)
    values = list(named.values())
    if all(_is_number(v) for v in values):
        check_int("seed", seed, 0)
        assignment = _assign_by_fraction(named, len(units), int(seed), kind)
        chosen = {name: [units[i] for i in idx] for name, idx in assignment.items()}
        partition_seed: int | None = int(seed)
    elif all(_is_name_list(v) for v in values):
        chosen = _check_lists(named, set(units), kind)
        partition_seed = None
    else:
        raise ValueError(
            "`fractions` must hold either only positive numbers or only lists "
            f"of {kind} names. Received: fractions={fractions!r}"
        )

    if by_group:
        members: dict[str, list[int]] = {}
        for index, group in enumerate(class_images.groups):
            members.setdefault(group, []).append(index)
    lookup = {n: i for i, n in enumerate(class_images.class_names)}
    result: dict[str, ClassImages] = {}
    for name, picked in chosen.items():
        if by_group:
            indices = sorted(i for group in picked for i in members[group])
        else:
            indices = sorted(lookup[c] for c in picked)
        result[name] = class_images.subset(indices).with_metadata(
            partition=name, partition_seed=partition_seed, partition_by=kind
        )
    return result


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


def _is_name_list(value: object) -> bool:
    return (
        isinstance(value, Sequence | np.ndarray)
        and not isinstance(value, str)
        and all(isinstance(v, str) for v in value)
    )


def _name_splits(fractions: object) -> dict[str, object]:
    """Turns the `fractions` argument into an ordered {name: value} dict."""
    if isinstance(fractions, Mapping):
        if not fractions:
            raise ValueError("`fractions` must not be empty. Received: fractions={}")
        bad = [k for k in fractions if not isinstance(k, str) or not k]
        if bad:
            raise ValueError(
                "`fractions` keys must be non-empty split names (str). "
                f"Received: key {bad[0]!r}"
            )
        return dict(fractions)
    if isinstance(fractions, Sequence) and not isinstance(fractions, str):
        items = list(fractions)
        if len(items) not in _DEFAULT_NAMES:
            raise ValueError(
                "`fractions` given as a sequence must have 2 (train, test) or 3 "
                "(train, val, test) entries; use a dict {name: fraction} for "
                f"other splits. Received: fractions={fractions!r}"
            )
        return dict(zip(_DEFAULT_NAMES[len(items)], items, strict=True))
    raise ValueError(
        "`fractions` must be a sequence or a mapping of fractions or of lists "
        f"of names. Received: fractions={fractions!r}"
    )


def _assign_by_fraction(
    named: dict[str, object], count: int, seed: int, kind: str
) -> dict[str, list[int]]:
    values = [float(v) for v in named.values()]  # type: ignore[arg-type]
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValueError(
            "`fractions` must be positive and finite. "
            f"Received: fractions={dict(named)!r}"
        )
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(
            f"`fractions` must sum to 1. Received: fractions={dict(named)!r} "
            f"(sum {total:g})"
        )
    bounds = [0] + [
        math.floor(count * c + 0.5) for c in np.cumsum(values)[:-1].tolist()
    ] + [count]
    sizes = dict(zip(named, np.diff(bounds).tolist(), strict=True))
    empty = [name for name, size in sizes.items() if size <= 0]
    if empty:
        raise ValueError(
            f"Split {empty[0]!r} would get no {kind}: {count} {kind}(es) split by "
            f"fractions={dict(named)!r} gives sizes {sizes}. Use fewer splits, "
            "larger fractions, or a pool with more classes."
        )
    order = np.random.default_rng(seed).permutation(count)
    return {
        name: sorted(order[start:stop].tolist())
        for name, start, stop in zip(named, bounds[:-1], bounds[1:], strict=True)
    }


def _check_lists(
    named: dict[str, object], known: set[str], kind: str
) -> dict[str, list[str]]:
    owner: dict[str, str] = {}
    chosen: dict[str, list[str]] = {}
    for name, value in named.items():
        items = list(value)  # type: ignore[call-overload]
        if not items:
            raise ValueError(f"Split {name!r} lists no {kind}. Received: {name}=[]")
        unknown = [item for item in items if item not in known]
        if unknown:
            raise ValueError(
                f"Split {name!r} names {len(unknown)} unknown {kind}(es): "
                f"{unknown[:5]}. Expected names from the pool's "
                f"{'groups' if kind == 'group' else 'class_names'}, e.g. "
                f"{sorted(known)[:3]}"
            )
        for item in items:
            if item in owner:
                where = "twice" if owner[item] == name else f"and in {owner[item]!r}"
                raise ValueError(
                    f"The {kind} {item!r} is listed in split {name!r} {where}; "
                    "splits must be disjoint."
                )
            owner[item] = name
        chosen[name] = items
    return chosen
