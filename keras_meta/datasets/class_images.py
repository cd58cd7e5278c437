"""An immutable, labelled pool of images grouped by class, for episode sampling."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ClassImages"]


def _read_only(array: np.ndarray) -> np.ndarray:
    """Returns a read-only view of `array` (the caller's array is left writable)."""
    view = array.view()
    view.flags.writeable = False
    return view


def _freeze(value: Any) -> Any:
    """Recursively turns dicts into read-only mappings and lists into tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Inverse of `_freeze` for pickling: read-only mappings back to dicts."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


class ClassImages:
    """A labelled image pool: `N` images of `num_classes` classes.

    The container is immutable: arrays are exposed as read-only views and the
    metadata as a read-only mapping. Classes are numbered `0..num_classes-1`
    and every class has at least one image. Images of a class need not be
    contiguous in `images`; `indices_by_class` gives them per class.

    Example:

    >>> import numpy as np
    >>> pool = ClassImages(
    ...     images=np.zeros((6, 4, 4, 1), np.uint8),
    ...     labels=np.array([0, 0, 1, 1, 2, 2]),
    ...     class_names=("a", "b", "c"),
    ...     groups=("x", "x", "y"),
    ... )
    >>> pool.num_classes, pool.images_per_class.tolist()
    (3, [2, 2, 2])
    >>> pool.subset(["c", "a"]).class_names
    ('c', 'a')

    Args:
        images: uint8 array of shape `[N, H, W, C]`.
        labels: integer array of shape `[N]` with values in
            `[0, len(class_names))`; stored as int32.
        class_names: one unique string per class, e.g.
            `"Latin/character01/rot090"`.
        groups: one string per class naming its group (for Omniglot the
            alphabet), used to split or cross-validate by group. Defaults to
            the class names (every class its own group).
        metadata: free-form description of where the pool comes from (for
            Omniglot: `dataset`, `split`, `subset`, `seed`, `image_size`,
            `source`, ...). Stored as a read-only mapping.

    Raises:
        ValueError: if an argument has the wrong type, shape, dtype or
            values; the message names the argument, what was received and
            what was expected.
    """

    __slots__ = (
        "_images",
        "_labels",
        "_class_names",
        "_groups",
        "_metadata",
        "_indices_by_class",
    )

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int],
        class_names: Sequence[str],
        groups: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(images, np.ndarray):
            raise ValueError(
                "`images` must be a numpy array of shape [N, H, W, C]. "
                f"Received: images of type {type(images).__name__}"
            )
        if images.dtype != np.uint8:
            raise ValueError(
                "`images` must have dtype uint8 (convert with "
                "`np.clip(x, 0, 255).astype(np.uint8)`). "
                f"Received: images.dtype={images.dtype}"
            )
        if images.ndim != 4 or 0 in images.shape[1:]:
            raise ValueError(
                "`images` must have shape [N, H, W, C] with H, W, C > 0. "
                f"Received: images.shape={images.shape}"
            )
        labels_array = np.asarray(labels)
        if labels_array.ndim != 1 or labels_array.shape[0] != images.shape[0]:
            raise ValueError(
                f"`labels` must have shape [N] = [{images.shape[0]}], one "
                "label per image. "
                f"Received: labels.shape={labels_array.shape}"
            )
        if labels_array.size and not np.issubdtype(labels_array.dtype, np.integer):
            raise ValueError(
                "`labels` must be integers. "
                f"Received: labels.dtype={labels_array.dtype}"
            )
        if isinstance(class_names, str) or not isinstance(class_names, Sequence):
            raise ValueError(
                "`class_names` must be a sequence of strings, one per class. "
                f"Received: class_names={class_names!r}"
            )
        names = tuple(class_names)
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            raise ValueError(
                "`class_names` must contain non-empty strings. "
                f"Received: class_names containing {bad[0]!r}"
            )
        if len(set(names)) != len(names):
            seen: set[str] = set()
            duplicates = sorted({n for n in names if n in seen or seen.add(n)})
            raise ValueError(
                "`class_names` must be unique. "
                f"Received: duplicated class_names {duplicates[:5]}"
            )
        num_classes = len(names)
        if num_classes == 0:
            raise ValueError(
                "`class_names` must name at least one class. Received: class_names=()"
            )
        if groups is None:
            group_names = names
        else:
            if isinstance(groups, str) or not isinstance(groups, Sequence):
                raise ValueError(
                    "`groups` must be a sequence of strings, one per class. "
                    f"Received: groups={groups!r}"
                )
            group_names = tuple(groups)
            if len(group_names) != num_classes:
                raise ValueError(
                    f"`groups` must have one entry per class ({num_classes}). "
                    f"Received: len(groups)={len(group_names)}"
                )
            bad = [g for g in group_names if not isinstance(g, str) or not g]
            if bad:
                raise ValueError(
                    "`groups` must contain non-empty strings. "
                    f"Received: groups containing {bad[0]!r}"
                )
        if labels_array.size:
            low, high = int(labels_array.min()), int(labels_array.max())
            if low < 0 or high >= num_classes:
                raise ValueError(
                    f"`labels` must lie in [0, {num_classes - 1}] "
                    f"(len(class_names)={num_classes}). "
                    f"Received: labels in [{low}, {high}]"
                )
        counts = np.bincount(labels_array.astype(np.int64), minlength=num_classes)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(
                "Every class must have at least one image (labels must be "
                "contiguous 0..num_classes-1). "
                f"Received: no images for class {int(empty[0])} "
                f"({names[int(empty[0])]!r}) and {empty.size - 1} other(s)"
            )
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(
                "`metadata` must be a mapping (e.g. a dict) or None. "
                f"Received: metadata of type {type(metadata).__name__}"
            )
        self._images = _read_only(images)
        self._labels = _read_only(labels_array.astype(np.int32, copy=False))
        self._class_names = names
        self._groups = group_names
        self._metadata = _freeze(dict(metadata or {}))
        order = np.argsort(self._labels, kind="stable")
        boundaries = np.cumsum(counts)[:-1]
        self._indices_by_class = tuple(
            _read_only(part.astype(np.int64)) for part in np.split(order, boundaries)
        )

    @property
    def images(self) -> np.ndarray:
        """Read-only uint8 array of shape `[N, H, W, C]`."""
        return self._images

    @property
    def labels(self) -> np.ndarray:
        """Read-only int32 array of shape `[N]`, values in `[0, num_classes)`."""
        return self._labels

    @property
    def class_names(self) -> tuple[str, ...]:
        """Name of each class, indexed by label."""
        return self._class_names

    @property
    def groups(self) -> tuple[str, ...]:
        """Group (e.g. alphabet) of each class, indexed by label."""
        return self._groups

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Read-only description of the pool's origin."""
        return self._metadata

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self._class_names)

    @property
    def num_images(self) -> int:
        """Number of images `N`."""
        return int(self._images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape `(H, W, C)` of one image."""
        height, width, channels = self._images.shape[1:]
        return int(height), int(width), int(channels)

    @property
    def images_per_class(self) -> np.ndarray:
        """int64 array `[num_classes]`: the number of images of each class."""
        return np.array([len(i) for i in self._indices_by_class], dtype=np.int64)

    @property
    def indices_by_class(self) -> tuple[np.ndarray, ...]:
        """For each class, the read-only indices of its images in `images`."""
        return self._indices_by_class

    def class_index(self, name: str) -> int:
        """Returns the label of the class called `name`.

        Raises:
            KeyError: if no class has that name.
        """
        try:
            return self._class_names.index(name)
        except ValueError:
            raise KeyError(
                f"Unknown class name. Received: name={name!r}; expected one "
                f"of the {self.num_classes} class_names, e.g. "
                f"{list(self._class_names[:3])}"
            ) from None

    def subset(self, classes: Sequence[int] | Sequence[str]) -> ClassImages:
        """Returns a pool restricted to some classes, relabelled in the given order.

        Args:
            classes: class indices (ints) or class names (strs), without
                duplicates. Class `classes[i]` becomes label `i`.

        Returns:
            A new `ClassImages` with the same metadata. Image arrays are
            copied (gathered), in class order.

        Raises:
            ValueError: if `classes` is empty, mixes types, has duplicates or
                names an unknown class / out-of-range index.
        """
        if isinstance(classes, str | bytes) or not isinstance(
            classes, Sequence | np.ndarray
        ):
            raise ValueError(
                "`classes` must be a sequence of class indices or names. "
                f"Received: classes={classes!r}"
            )
        items = list(classes)
        if not items:
            raise ValueError("`classes` must not be empty. Received: classes=[]")
        if all(isinstance(c, str) for c in items):
            lookup = {n: i for i, n in enumerate(self._class_names)}
            unknown = [c for c in items if c not in lookup]
            if unknown:
                raise ValueError(
                    f"`classes` names {len(unknown)} unknown class(es). "
                    f"Received: {unknown[:5]}; expected names from "
                    f"class_names, e.g. {list(self._class_names[:3])}"
                )
            indices = [lookup[c] for c in items]
        elif all(
            isinstance(c, int | np.integer) and not isinstance(c, bool) for c in items
        ):
            indices = [int(c) for c in items]
            bad = [i for i in indices if not 0 <= i < self.num_classes]
            if bad:
                raise ValueError(
                    f"`classes` indices must lie in [0, {self.num_classes - 1}]. "
                    f"Received: {bad[:5]}"
                )
        else:
            raise ValueError(
                "`classes` must be all ints (indices) or all strs (names). "
                f"Received: classes={items[:5]!r}"
            )
        if len(set(indices)) != len(indices):
            raise ValueError(
                "`classes` must not repeat a class. "
                f"Received: classes={items[:10]!r}"
            )
        gather = np.concatenate([self._indices_by_class[i] for i in indices])
        new_labels = np.repeat(
            np.arange(len(indices), dtype=np.int32),
            [len(self._indices_by_class[i]) for i in indices],
        )
        return ClassImages(
            images=self._images[gather],
            labels=new_labels,
            class_names=[self._class_names[i] for i in indices],
            groups=[self._groups[i] for i in indices],
            metadata=_thaw(self._metadata),
        )

    def with_metadata(self, **updates: Any) -> ClassImages:
        """Returns the same pool with metadata entries added or replaced."""
        metadata = _thaw(self._metadata)
        metadata.update(updates)
        return ClassImages(
            self._images, self._labels, self._class_names, self._groups, metadata
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            ClassImages,
            (
                np.array(self._images),
                np.array(self._labels),
                self._class_names,
                self._groups,
                _thaw(self._metadata),
            ),
        )

    def __repr__(self) -> str:
        details = ", ".join(
            f"{k}={self._metadata[k]!r}"
            for k in ("dataset", "split", "subset")
            if k in self._metadata
        )
        return (
            f"ClassImages(num_classes={self.num_classes}, "
            f"num_images={self.num_images}, image_shape={self.image_shape}"
            + (f", {details}" if details else "")
            + ")"
        )
