"""Fixtures for the data-layer tests: tiny synthetic Omniglot roots and PNGs."""

from __future__ import annotations

import io
import types
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Synthetic Omniglot: alphabets of the two zips and their character counts.
BACKGROUND = {"Alpha": 3, "Beta": 2}
EVALUATION = {"Gamma": 3}
DRAWERS = 3
SIZE = 12


def glyph(seed: int, size: int = SIZE) -> np.ndarray:
    """A random, asymmetric 1-bit glyph as a bool array (True = white paper)."""
    rng = np.random.default_rng(seed)
    ink = rng.random((size, size)) < 0.3
    ink[0, :3] = True  # an ink mark in the top-left corner breaks symmetry
    ink[-1, -1] = False
    return ~ink


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """Encodes a bool (mode '1') or uint8 array as PNG bytes."""
    image = Image.fromarray(array) if mode is None else Image.fromarray(array, mode)
    if array.dtype == bool:
        image = image.convert("1")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes], stored: bool = False) -> None:
    """Writes a zip with directory entries, like the Omniglot zips."""
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression) as archive:
        folders = sorted({"/".join(n.split("/")[:i]) + "/"
                          for n in members for i in range(1, n.count("/") + 1)})
        for folder in folders:
            archive.writestr(folder, b"")
        for name, data in members.items():
            archive.writestr(name, data)


def characters_of(alphabets: dict[str, int]) -> list[str]:
    return [f"{a}/character{i:02d}" for a, n in alphabets.items() for i in range(1, n + 1)]


def build_root(
    root: Path,
    background: dict[str, int] = BACKGROUND,
    evaluation: dict[str, int] = EVALUATION,
    drawers: int = DRAWERS,
    size: int = SIZE,
    splits: dict[str, Sequence[str]] | None = None,
) -> Path:
    """Writes a tiny Omniglot root: both zips and, by default, Vinyals-style splits.

    Glyph of character c (global index), drawer d: `glyph(1000 * c + d)`.
    """
    root.mkdir(parents=True, exist_ok=True)
    index = 0
    for top, alphabets in (("images_background", background),
                           ("images_evaluation", evaluation)):
        members = {}
        for character in characters_of(alphabets):
            for drawer in range(1, drawers + 1):
                name = f"{top}/{character}/{index:04d}_{drawer:02d}.png"
                members[name] = png_bytes(glyph(1000 * index + drawer, size))
            index += 1
        write_zip(root / f"{top}.zip", members)
    if splits is None:
        # 8 characters: train = Alpha (3) + Beta/character01, val = Beta/character02,
        # test = Gamma (3); all with 4 rotations.
        chars = characters_of(background) + characters_of(evaluation)
        splits = {"train": chars[:4], "val": chars[4:5], "test": chars[5:]}
        splits["trainval"] = list(splits["train"]) + list(splits["val"])
    folder = root / "splits" / "vinyals"
    folder.mkdir(parents=True, exist_ok=True)
    for subset, chars in splits.items():
        lines = [f"{c}/rot{a:03d}" for c in chars for a in (0, 90, 180, 270)]
        (folder / f"{subset}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def _seed():
    """Overrides tests/conftest.py's Keras seeding: the data layer does not use
    Keras, and `keras.backend.clear_session()` (a full `gc.collect()` with
    TensorFlow loaded) costs about 0.3 s per test."""
    yield


@pytest.fixture
def fakes() -> types.SimpleNamespace:
    """The helpers above (`glyph`, `png_bytes`, `write_zip`, `build_root`), for tests."""
    return types.SimpleNamespace(glyph=glyph, png_bytes=png_bytes, write_zip=write_zip,
                                 build_root=build_root)


@pytest.fixture
def omniglot_dir(tmp_path: Path) -> Path:
    """A tiny synthetic Omniglot root (8 characters, 3 drawers, 12x12 PNGs)."""
    return build_root(tmp_path / "omniglot")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """Writes an image file under tmp_path/<relative> and returns its path."""

    def make(relative: str, array: np.ndarray | None = None, mode: str | None = None,
             fmt: str | None = None, size: tuple[int, int] = (6, 5), seed: int = 0) -> Path:
        path = tmp_path / "folder" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if array is None:
            array = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
        image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
        image.save(path, format=fmt)
        return path

    return make
