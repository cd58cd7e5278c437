"""Omniglot (Lake et al., 2015) as a `ClassImages` pool, with the Vinyals and MAML splits."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from keras_meta._validation import check_int
from keras_meta.datasets import _cache, _imaging
from keras_meta.datasets.class_images import ClassImages

__all__ = [
    "OMNIGLOT_ROTATIONS",
    "OMNIGLOT_SPLITS",
    "OMNIGLOT_SUBSETS",
    "load_omniglot",
    "omniglot_root",
]

OMNIGLOT_SPLITS = ("vinyals", "maml")
OMNIGLOT_SUBSETS = ("train", "val", "test", "trainval", "all")
OMNIGLOT_ROTATIONS = (0, 90, 180, 270)

ZIP_NAMES = ("images_background.zip", "images_evaluation.zip")
MAML_NUM_TRAIN = 1100
MAML_NUM_VAL = 100
INK = "strokes 255 (white), background 0 (black)"

# Bump when the decoded pool's content or the cache file format changes.
_CACHE_VERSION = 1
_SPLIT_LINE = re.compile(r"^(?P<character>[^/\s]+/[^/\s]+)/rot(?P<angle>\d{3})$")


def omniglot_root() -> Path:
    """The folder of the Omniglot copy shipped with keras-meta.

    It holds `images_background.zip`, `images_evaluation.zip`,
    `splits/vinyals/*.txt`, `LICENSE` and `README.md`.
    """
    return Path(__file__).resolve().parent / "data" / "omniglot"


class _Pool(NamedTuple):
    """All decoded, unrotated Omniglot images: one entry per character."""

    images: np.ndarray  # uint8 [M, H, W, 1], characters in sorted order
    character_index: np.ndarray  # int32 [M], index into `characters`
    characters: tuple[str, ...]  # "Alphabet/characterNN", sorted


def load_omniglot(
    split: str = "vinyals",
    subset: str = "train",
    image_size: int | Sequence[int] = 28,
    root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    *,
    rotations: Sequence[int] = OMNIGLOT_ROTATIONS,
    interpolation: str = "nearest",
    use_cache: bool = True,
) -> ClassImages:
    """Loads Omniglot as a pool of classes for few-shot episodes.

    Both zips (background and evaluation: 50 alphabets, 1623 characters, 20
    drawings each) are read directly, without unpacking, and pooled. Each
    class is a character at one rotation, named
    `"<Alphabet>/characterNN/rotDDD"`; its group is the alphabet.

    Conventions:

    - Pixels: uint8 `[H, W, 1]`, **ink 255 (white strokes) on background
      0**, i.e. the PNGs inverted. `images / 255` gives the float inputs of
      ProtoNets and MAML (`1 - png`).
    - Resizing: 105x105 -> `image_size` with `interpolation`. The default
      "nearest" resizes the 1-bit image and keeps it binary (0/255): this is
      what the reference pipelines produce (Pillow always resizes mode-"1"
      images with NEAREST, so MAML's `resize(..., LANCZOS)` and ProtoNets'
      `resize(...)` both yield nearest-neighbour binary images). Pass
      "lanczos", "bilinear" or "area" for anti-aliased grey levels (the image
      is converted to 8-bit first).
    - Rotation: `rotDDD` is the character rotated **counter-clockwise** by
      DDD degrees, `np.rot90(image, k=DDD // 90)`; that is the direction of
      PIL's `Image.rotate(DDD)` used by jakesnell/prototypical-networks,
      whose split files name these classes. Images are resized first and
      then rotated, so a rotated class is exactly `np.rot90` of the base one.

    Splits:

    - `"vinyals"` (Vinyals et al. 2016; ProtoNets and most later work): the
      classes listed in `splits/vinyals/<subset>.txt`, in file order.
      train/val/test/trainval have 4112/688/1692/4800 classes (1028/172/
      423/1200 characters x 4 rotations) and mix background and evaluation
      alphabets. `seed` is not used.
    - `"maml"` (Finn et al. 2017): a random character split. The 1623
      characters, sorted by name, are permuted with
      `np.random.default_rng(seed)`; the first 1100 are train, the next 100
      val and the remaining 423 test (trainval = the first 1200). Every
      subset has all rotations: 4400/400/1692/4800 classes. The MAML code
      shuffles `os.listdir` order with Python's `random.seed(1)`, which is
      not reproducible across file systems, so this is the same protocol,
      not the same characters. Classes are sorted by name.
    - `subset="all"`: every character (6492 classes with 4 rotations), for
      your own splits (see `split_classes`).

    Decoding the 32,460 PNGs takes a few seconds, so the decoded, resized,
    unrotated pool is cached as an `.npz` file under `cache_dir`, keyed by
    the zips' sha256, `image_size` and `interpolation`. The file is written
    atomically; an unreadable or stale one is rebuilt (with a warning).

    Example:

    >>> train = load_omniglot("vinyals", "train")  # doctest: +SKIP
    >>> train.num_classes, train.image_shape  # doctest: +SKIP
    (4112, (28, 28, 1))

    Args:
        split: "vinyals" or "maml".
        subset: "train", "val", "test", "trainval" or "all".
        image_size: output size, an int or a `(height, width)` pair. Must be
            square when `rotations` includes 90 or 270.
        root: folder with `images_background.zip` and
            `images_evaluation.zip` (layout
            `images_background/<Alphabet>/characterNN/<id>_<drawer>.png`, as in
            brendenlake/omniglot). Defaults to the packaged copy. The Vinyals
            split files are read from `<root>/splits/vinyals/` when that folder
            exists, else from the packaged copy.
        cache_dir: folder for the decoded-pool cache. Defaults to
            `$KERAS_META_CACHE/omniglot`, else `~/.cache/keras_meta/omniglot`.
        seed: seed of the "maml" character split (non-negative int).
        rotations: the rotations (degrees, subset of 0/90/180/270) that make
            classes. `(0,)` gives unrotated characters only (e.g. the
            Reptile protocol's test set); with "vinyals" it keeps only the
            split file's lines with those rotations.
        interpolation: resize filter: "nearest" (default, binary),
            "lanczos", "bilinear", "bicubic", "area"/"box" or "hamming".
        use_cache: read and write the on-disk cache.

    Returns:
        A `ClassImages` whose `metadata` holds `dataset`, `split`, `subset`,
        `seed` (None for "vinyals"), `image_size`, `interpolation`,
        `rotations`, `ink`, `source` (the root folder), `source_sha256` and,
        for "vinyals", `split_file`.

    Raises:
        ValueError: for an invalid argument, a corrupt zip or PNG (bad CRC,
            not a zip), a zip with an unexpected layout, or a split file with
            a malformed line or naming a character missing from the zips; the
            message names the file.
        FileNotFoundError: if `root`, a zip or a split file is missing.
    """
    if split not in OMNIGLOT_SPLITS:
        raise ValueError(
            f"`split` must be one of {list(OMNIGLOT_SPLITS)}. Received: split={split!r}"
        )
    if subset not in OMNIGLOT_SUBSETS:
        raise ValueError(
            f"`subset` must be one of {list(OMNIGLOT_SUBSETS)}. "
            f"Received: subset={subset!r}"
        )
    size = _imaging.parse_image_size(image_size)
    assert size is not None
    _imaging.parse_interpolation(interpolation)  # validates the name early
    angles = _parse_rotations(rotations)
    if size[0] != size[1] and any(a in (90, 270) for a in angles):
        raise ValueError(
            "`image_size` must be square when `rotations` includes 90 or 270 "
            "(a quarter turn swaps height and width). "
            f"Received: image_size={image_size!r}, rotations={rotations!r}"
        )
    if split == "maml":
        check_int("seed", seed, 0)
    root_path = _resolve_root(root)
    zip_paths = [root_path / name for name in ZIP_NAMES]
    for path in zip_paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"Omniglot zip not found: {str(path)!r}. `root` must contain "
                f"{list(ZIP_NAMES)} (from brendenlake/omniglot, folder python/). "
                f"Received: root={str(root_path)!r}"
            )
    checksums = {path.name: _cache.file_sha256(path) for path in zip_paths}
    pool = _load_pool(zip_paths, checksums, size, interpolation, cache_dir, use_cache)

    metadata: dict[str, Any] = {
        "dataset": "omniglot",
        "split": split,
        "subset": subset,
        "seed": int(seed) if split == "maml" else None,
        "image_size": size,
        "interpolation": interpolation,
        "rotations": angles,
        "ink": INK,
        "source": str(root_path),
        "source_sha256": checksums,
    }
    if split == "vinyals":
        classes, split_files = _vinyals_classes(root_path, subset, pool, angles)
        metadata["split_file"] = [str(p) for p in split_files]
    else:
        classes = _maml_classes(pool, subset, int(seed), angles)
    return _build(pool, classes, metadata)


def _parse_rotations(rotations: Sequence[int]) -> tuple[int, ...]:
    if isinstance(rotations, str) or not isinstance(rotations, Sequence):
        raise ValueError(
            f"`rotations` must be a sequence of angles from {OMNIGLOT_ROTATIONS}. "
            f"Received: rotations={rotations!r}"
        )
    angles = tuple(rotations)
    if (
        not angles
        or len(set(angles)) != len(angles)
        or any(isinstance(a, bool) or a not in OMNIGLOT_ROTATIONS for a in angles)
    ):
        raise ValueError(
            "`rotations` must be a non-empty sequence of distinct angles from "
            f"{OMNIGLOT_ROTATIONS}. Received: rotations={rotations!r}"
        )
    return tuple(sorted(int(a) for a in angles))


def _resolve_root(root: str | Path | None) -> Path:
    if root is None:
        return omniglot_root()
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            "`root` must be an existing folder holding the Omniglot zips "
            f"{list(ZIP_NAMES)}. Received: root={str(root)!r}"
        )
    return path


def _load_pool(
    zip_paths: list[Path],
    checksums: dict[str, str],
    size: tuple[int, int],
    interpolation: str,
    cache_dir: str | Path | None,
    use_cache: bool,
) -> _Pool:
    """Returns the decoded pool from the cache, decoding (and caching) on a miss."""
    key = json.dumps(
        {
            "version": _CACHE_VERSION,
            "sha256": checksums,
            "image_size": list(size),
            "interpolation": interpolation,
            "ink": INK,
        },
        sort_keys=True,
    )
    folder = (
        Path(cache_dir).expanduser()
        if cache_dir is not None
        else _cache.default_cache_root() / "omniglot"
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = folder / f"pool_{size[0]}x{size[1]}_{interpolation}_{digest}.npz"
    if use_cache:
        arrays = _cache.load_npz(path, key)
        if arrays is not None:
            pool = _pool_from_arrays(arrays, size)
            if pool is not None:
                return pool
    pool = _decode_pool(zip_paths, size, _imaging.parse_interpolation(interpolation))
    if use_cache:
        _cache.save_npz(
            path,
            key,
            {
                "images": pool.images,
                "character_index": pool.character_index,
                "characters": np.array(pool.characters),
            },
        )
    return pool


def _pool_from_arrays(arrays: dict[str, np.ndarray], size: tuple[int, int]) -> _Pool | None:
    """Checks a cached pool's structure; None when it is inconsistent."""
    try:
        images = arrays["images"]
        character_index = arrays["character_index"].astype(np.int32)
        characters = tuple(str(c) for c in arrays["characters"].tolist())
    except (KeyError, AttributeError):
        return None
    if (
        images.dtype != np.uint8
        or images.shape[1:] != (*size, 1)
        or character_index.shape != images.shape[:1]
        or not characters
        or character_index.min(initial=0) < 0
        or character_index.max(initial=0) >= len(characters)
    ):
        return None
    return _Pool(images, character_index, characters)


def _index_zip(path: Path) -> dict[str, list[str]]:
    """Maps "Alphabet/characterNN" to its sorted PNG member names in one zip.

    Raises:
        ValueError: if the file is not a zip or its layout is unexpected.
    """
    top = path.stem
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(
            f"Omniglot zip {str(path)!r} is not a readable zip file ({e}). "
            "Replace it with a fresh copy of "
            f"brendenlake/omniglot python/{path.name}."
        ) from e
    characters: dict[str, list[str]] = {}
    for name in names:
        parts = name.split("/")
        if name.endswith("/") or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        if not name.lower().endswith(".png"):
            continue
        if len(parts) != 4 or parts[0] != top or not all(parts):
            raise ValueError(
                f"Unexpected layout in Omniglot zip {str(path)!r}: member "
                f"{name!r}. Expected every PNG at "
                f"'{top}/<Alphabet>/<characterNN>/<id>_<drawer>.png' (the "
                f"layout of brendenlake/omniglot python/{path.name})."
            )
        characters.setdefault(f"{parts[1]}/{parts[2]}", []).append(name)
    if not characters:
        raise ValueError(
            f"Omniglot zip {str(path)!r} contains no PNG images under '{top}/'. "
            f"Expected '{top}/<Alphabet>/<characterNN>/<id>_<drawer>.png'."
        )
    return {c: sorted(members) for c, members in characters.items()}


def _decode_pool(
    zip_paths: list[Path], size: tuple[int, int], resample: Image.Resampling
) -> _Pool:
    """Decodes, inverts and resizes every PNG of the zips (the slow path).

    Raises:
        ValueError: for a corrupt zip, member or PNG, or a character present
            in two zips; the message names the zip and member.
    """
    owner: dict[str, tuple[Path, list[str]]] = {}
    for path in zip_paths:
        for character, members in _index_zip(path).items():
            if character in owner:
                raise ValueError(
                    f"Character {character!r} appears in both "
                    f"{str(owner[character][0])!r} and {str(path)!r}; the "
                    "background and evaluation zips must hold disjoint alphabets."
                )
            owner[character] = (path, members)
    characters = tuple(sorted(owner))
    total = sum(len(members) for _, members in owner.values())
    images = np.empty((total, *size, 1), dtype=np.uint8)
    character_index = np.empty((total,), dtype=np.int32)
    archives: dict[Path, zipfile.ZipFile] = {}
    position = 0
    try:
        for path in zip_paths:
            archives[path] = zipfile.ZipFile(path)
        for index, character in enumerate(characters):
            path, members = owner[character]
            for member in members:
                images[position] = _decode_member(archives[path], path, member, size, resample)
                character_index[position] = index
                position += 1
    finally:
        for archive in archives.values():
            archive.close()
    return _Pool(images, character_index, characters)


def _decode_member(
    archive: zipfile.ZipFile,
    path: Path,
    member: str,
    size: tuple[int, int],
    resample: Image.Resampling,
) -> np.ndarray:
    try:
        data = archive.read(member)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise ValueError(
            f"Corrupt member {member!r} in Omniglot zip {str(path)!r} ({e}). "
            "Replace the zip with a fresh copy."
        ) from e
    try:
        return _imaging.decode_image(
            data, size=size, pil_mode="L", resample=resample, invert=True
        )
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(
            f"Cannot decode image {member!r} in Omniglot zip {str(path)!r} ({e})."
        ) from e


def _vinyals_classes(
    root: Path, subset: str, pool: _Pool, angles: tuple[int, ...]
) -> tuple[list[tuple[str, int]], list[Path]]:
    """Reads the (character, angle) classes of a Vinyals split file."""
    folder = root / "splits" / "vinyals"
    if not folder.is_dir():
        folder = omniglot_root() / "splits" / "vinyals"
    files = [folder / f"{s}.txt" for s in (("trainval", "test") if subset == "all" else (subset,))]
    known = set(pool.characters)
    classes: list[tuple[str, int]] = []
    seen: dict[tuple[str, int], str] = {}
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(
                f"Vinyals split file not found: {str(file)!r}. Expected "
                f"splits/vinyals/{{train,val,test,trainval}}.txt under `root` "
                f"(from jakesnell/prototypical-networks). Received: subset={subset!r}"
            )
        lines = file.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                continue
            match = _SPLIT_LINE.match(text)
            angle = int(match["angle"]) if match else -1
            if match is None or angle not in OMNIGLOT_ROTATIONS:
                raise ValueError(
                    f"Malformed line {number} of split file {str(file)!r}: "
                    f"{text!r}. Expected '<Alphabet>/characterNN/rotDDD' with "
                    "DDD in 000, 090, 180, 270."
                )
            character = match["character"]
            if character not in known:
                raise ValueError(
                    f"Line {number} of split file {str(file)!r} names character "
                    f"{character!r}, which is not in the Omniglot zips under "
                    f"{str(root)!r} ({len(known)} characters found)."
                )
            if (character, angle) in seen:
                raise ValueError(
                    f"Line {number} of split file {str(file)!r} repeats class "
                    f"{text!r} (already listed at {seen[(character, angle)]})."
                )
            seen[(character, angle)] = f"{file.name}:{number}"
            if angle in angles:
                classes.append((character, angle))
    if not classes:
        raise ValueError(
            f"Split file(s) {[str(f) for f in files]} list no classes with "
            f"rotations {angles}."
        )
    return classes, files


def _maml_classes(
    pool: _Pool, subset: str, seed: int, angles: tuple[int, ...]
) -> list[tuple[str, int]]:
    """The (character, angle) classes of the seeded MAML character split."""
    num_characters = len(pool.characters)
    if num_characters <= MAML_NUM_TRAIN + MAML_NUM_VAL:
        raise ValueError(
            f"The 'maml' split needs more than {MAML_NUM_TRAIN + MAML_NUM_VAL} "
            f"characters ({MAML_NUM_TRAIN} train, {MAML_NUM_VAL} val, the rest "
            f"test). Received: {num_characters} characters in the zips."
        )
    order = np.random.default_rng(seed).permutation(num_characters)
    bounds = {
        "train": (0, MAML_NUM_TRAIN),
        "val": (MAML_NUM_TRAIN, MAML_NUM_TRAIN + MAML_NUM_VAL),
        "test": (MAML_NUM_TRAIN + MAML_NUM_VAL, num_characters),
        "trainval": (0, MAML_NUM_TRAIN + MAML_NUM_VAL),
        "all": (0, num_characters),
    }
    start, stop = bounds[subset]
    chosen = sorted(pool.characters[i] for i in order[start:stop])
    return [(character, angle) for character in chosen for angle in angles]


def _build(
    pool: _Pool, classes: list[tuple[str, int]], metadata: dict[str, Any]
) -> ClassImages:
    """Gathers (and rotates) the images of `classes` into a `ClassImages`."""
    lookup = {c: i for i, c in enumerate(pool.characters)}
    order = np.argsort(pool.character_index, kind="stable")
    counts = np.bincount(pool.character_index, minlength=len(pool.characters))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_class = [int(counts[lookup[c]]) for c, _ in classes]
    images = np.empty((sum(per_class), *pool.images.shape[1:]), dtype=np.uint8)
    position = 0
    for (character, angle), count in zip(classes, per_class, strict=True):
        start = starts[lookup[character]]
        base = pool.images[order[start : start + count]]
        images[position : position + count] = np.rot90(base, k=angle // 90, axes=(1, 2))
        position += count
    labels = np.repeat(np.arange(len(classes), dtype=np.int32), per_class)
    return ClassImages(
        images=images,
        labels=labels,
        class_names=[f"{c}/rot{a:03d}" for c, a in classes],
        groups=[c.split("/")[0] for c, _ in classes],
        metadata=metadata,
    )
