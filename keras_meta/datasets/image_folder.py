"""A user's folder of class folders of images as a `ClassImages` pool."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_meta._validation import check_int
from keras_meta.datasets import _imaging
from keras_meta.datasets.class_images import ClassImages

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder"]

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)


def load_image_folder(
    path: str | Path,
    image_size: int | Sequence[int] | None = None,
    color_mode: str = "grayscale",
    classes: Sequence[str] | None = None,
    *,
    min_images_per_class: int = 1,
    interpolation: str = "bilinear",
    invert: bool = False,
) -> ClassImages:
    """Loads a folder of class folders of images as a pool of classes.

    A class is a leaf folder (one without sub-folders) holding images; its
    name is its path relative to `path` with "/" separators, and its group
    is the first component of that path. So both layouts work::

        path/cat/001.jpg                 -> class "cat", group "cat"
        path/Latin/character01/01.png    -> class "Latin/character01", group "Latin"

    Classes are sorted by name (or follow `classes`) and numbered from 0;
    images in a class are sorted by file name. Hidden files and folders
    (starting with ".") and files without an image extension
    (`IMAGE_EXTENSIONS`, case-insensitive) are ignored. Images of any mode
    are converted to `color_mode`; transparent pixels are composited onto
    white. Images are read with PIL and resized directly to `image_size`
    (the aspect ratio is not kept).

    Args:
        path: the root folder.
        image_size: output size, an int or `(height, width)`. None keeps the
            original size, which must then be the same for every image.
        color_mode: "grayscale" (1 channel) or "rgb" (3 channels).
        classes: class names to load, in this order; default: all, sorted.
        min_images_per_class: minimum number of images every loaded class
            must have (an episode sampler sets it to shots + queries).
        interpolation: resize filter: "bilinear" (default), "nearest",
            "bicubic", "lanczos", "area"/"box" or "hamming".
        invert: map pixel values `v -> 255 - v` after resizing, e.g. to
            turn dark ink on white paper into bright strokes on black, the
            convention of `load_omniglot`.

    Returns:
        A `ClassImages` with uint8 images `[N, H, W, C]` and metadata
        `dataset="image_folder"`, `source`, `image_size`, `color_mode`,
        `interpolation`, `invert`.

    Raises:
        FileNotFoundError: if `path` does not exist or is not a folder.
        ValueError: for an invalid argument, a folder with no class folders,
            images directly in `path` or in a non-leaf folder, an empty
            class folder, a class with fewer than `min_images_per_class`
            images, an unreadable/corrupt image (named), images of different
            sizes with `image_size=None`, or unknown/duplicate `classes`.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"Image folder not found. Received: path={str(path)!r}"
        )
    if not root.is_dir():
        raise FileNotFoundError(
            "`path` must be a folder of class folders of images. "
            f"Received: path={str(path)!r} (not a folder)"
        )
    size = _imaging.parse_image_size(image_size, allow_none=True)
    pil_mode, channels = _imaging.parse_color_mode(color_mode)
    resample = _imaging.parse_interpolation(interpolation)
    check_int("min_images_per_class", min_images_per_class, 1)

    found, empty = _find_classes(root)
    if classes is None:
        names = sorted(found)
    else:
        names = _check_requested(classes, found, root)

    files: list[Path] = []
    counts: list[int] = []
    for name in names:
        images = found[name]
        if name in empty:
            raise ValueError(
                f"Class folder {str(root / name)!r} has no images "
                f"({empty[name]}). Add images, remove the folder, or leave "
                "it out with `classes=`."
            )
        if len(images) < min_images_per_class:
            raise ValueError(
                f"Class {name!r} ({str(root / name)!r}) has {len(images)} "
                f"image(s); at least min_images_per_class="
                f"{min_images_per_class} are required. Add images, drop the "
                "class with `classes=`, or lower `min_images_per_class`."
            )
        files.extend(images)
        counts.append(len(images))

    arrays: list[np.ndarray] = []
    for file in files:
        try:
            data = file.read_bytes()
            array = _imaging.decode_image(
                data, size=size, pil_mode=pil_mode, resample=resample, invert=invert
            )
        except (OSError, ValueError, SyntaxError) as e:
            raise ValueError(
                f"Cannot read image {str(file)!r} ({type(e).__name__}: {e}). "
                "Remove or replace the file."
            ) from e
        if arrays and array.shape != arrays[0].shape:
            raise ValueError(
                f"Image {str(file)!r} has size {array.shape[:2]} but "
                f"{str(files[0])!r} has {arrays[0].shape[:2]} (height, width); "
                "with image_size=None all images must have the same size. "
                "Pass `image_size=` to resize them."
            )
        arrays.append(array)
    stacked = np.stack(arrays).reshape(len(arrays), *arrays[0].shape[:2], channels)
    labels = np.repeat(np.arange(len(names), dtype=np.int32), counts)
    return ClassImages(
        images=stacked,
        labels=labels,
        class_names=names,
        groups=[name.split("/")[0] for name in names],
        metadata={
            "dataset": "image_folder",
            "source": str(root),
            "image_size": tuple(stacked.shape[1:3]),
            "color_mode": color_mode,
            "interpolation": interpolation,
            "invert": bool(invert),
        },
    )


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _find_classes(root: Path) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Maps each class (leaf folder, relative posix path) to its sorted images.

    Returns:
        The classes, and for each class without images a description of why.

    Raises:
        ValueError: for images outside leaf folders or a root without class
            folders.
    """
    found: dict[str, list[Path]] = {}
    empty: dict[str, str] = {}
    for folder, subfolders, filenames in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not _is_hidden(d))
        images = sorted(
            f
            for f in filenames
            if not _is_hidden(f) and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        )
        current = Path(folder)
        relative = current.relative_to(root).as_posix()
        if subfolders:
            if images:
                where = "`path` itself" if relative == "." else f"folder {relative!r}"
                raise ValueError(
                    f"Found images in {where} ({str(current / images[0])!r}, ...), "
                    "which also has sub-folders. Images must sit in leaf class "
                    f"folders: {str(root)}/<class>/<image>. "
                    f"Received: path={str(root)!r}"
                )
            continue
        if relative == ".":
            if images:
                raise ValueError(
                    "`path` must be a folder of class folders, but holds images "
                    f"directly (e.g. {images[0]!r}). Move them into "
                    f"<path>/<class>/ folders. Received: path={str(root)!r}"
                )
            raise ValueError(
                "`path` contains no class folders. Expected "
                f"<path>/<class>/<image>. Received: path={str(root)!r}"
            )
        if not images:
            others = sorted(f for f in filenames if not _is_hidden(f))
            empty[relative] = (
                f"it has {len(others)} non-image file(s), e.g. {others[0]!r}; "
                f"supported extensions: {list(IMAGE_EXTENSIONS)}"
                if others
                else "it is empty"
            )
        found[relative] = [current / f for f in images]
    return found, empty


def _check_requested(
    classes: Sequence[str], found: dict[str, list[Path]], root: Path
) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise ValueError(
            "`classes` must be a sequence of class names (folder paths "
            f"relative to `path`). Received: classes={classes!r}"
        )
    names = list(classes)
    if not names:
        raise ValueError("`classes` must not be empty. Received: classes=[]")
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValueError(
            f"`classes` names {len(unknown)} unknown class(es) under "
            f"{str(root)!r}: {unknown[:5]}. Available: {sorted(found)[:10]}"
            f"{' ...' if len(found) > 10 else ''}"
        )
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(
            f"`classes` must not repeat a class. Received duplicates: {duplicates}"
        )
    return names
