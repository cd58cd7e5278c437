"""Private on-disk cache of decoded arrays: atomic `.npz` files under a cache dir."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

CACHE_ENV_VAR = "KERAS_META_CACHE"


def default_cache_root() -> Path:
    """The keras-meta cache root.

    `$KERAS_META_CACHE` if set, else `$XDG_CACHE_HOME/keras_meta`, else
    `~/.cache/keras_meta`.
    """
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "keras_meta"
    return Path.home() / ".cache" / "keras_meta"


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_npz(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """Loads a cache file written by `save_npz` with the same key.

    Returns None (and warns) when the file is missing, unreadable, truncated,
    or was written for another key; the caller then rebuilds it.
    """
    if not path.exists():
        return None
    try:
        # Open the file ourselves: np.load leaks its handle when it fails.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        if str(arrays.pop("__cache_key__")) != key:
            raise ValueError("cache key mismatch")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        warnings.warn(
            f"Ignoring unusable cache file {str(path)!r} ({type(e).__name__}: {e}); "
            "rebuilding it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def save_npz(path: Path, key: str, arrays: dict[str, np.ndarray]) -> bool:
    """Writes `arrays` (+ key) to `path` atomically: temp file, then `os.replace`.

    Failures (read-only or full disk) only warn, since the cache is an
    optimisation. Returns whether the file was written.
    """
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=path.name + ".", suffix=".tmp", delete=False
        ) as handle:
            tmp_name = handle.name
            np.savez(handle, __cache_key__=np.array(key), **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # NamedTemporaryFile creates it 0600
        os.replace(tmp_name, path)
        tmp_name = None
        return True
    except OSError as e:
        warnings.warn(
            f"Could not write cache file {str(path)!r} ({e}); continuing "
            "without it. Pass `cache_dir=` or set $KERAS_META_CACHE to a "
            "writable folder.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
