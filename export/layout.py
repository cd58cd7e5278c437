"""TF Serving's model layout: ``<base>/<model>/<version>/``, written atomically.

A version is written into a hidden sibling folder whose name is not an integer (so neither TF
Serving nor keras-meta's server ever considers it), checked there, and renamed into place in one
`os.rename`: a reader sees either no version or a complete one.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ValueError("`name` must be a model name of letters, digits, '_', '.' or '-' "
                         f"(it becomes a folder and a URL part). Received: name={name!r}")
    return name


def versions(model_dir: str | Path) -> list[int]:
    """The integer versions present under ``model_dir``, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir()
                  if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


def next_version(model_dir: str | Path) -> int:
    present = versions(model_dir)
    return present[-1] + 1 if present else 1


@contextlib.contextmanager
def version_dir(model_dir: str | Path, version: int | None = None, *,
                overwrite: bool = False) -> Iterator[tuple[Path, int]]:
    """Yield ``(staging folder, version)``; on success the folder becomes ``<version>``.

    If the body raises, the staging folder is deleted and nothing becomes visible. An existing
    version is replaced only with ``overwrite=True`` (the old folder is moved aside first and
    deleted after the new one is in place, so the path never holds a partial version).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if version is None:
        version = next_version(model_dir)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version!r}")
    final = model_dir / str(version)
    if final.exists() and not overwrite:
        raise FileExistsError(f"Version {version} of {model_dir.name!r} already exists at "
                              f"{final}. Pass overwrite=True (CLI: --overwrite) to replace it, "
                              "or choose another version.")
    staging = model_dir / f".incomplete-{version}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging, version
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = model_dir / f".replaced-{version}-{secrets.token_hex(4)}"
        os.rename(final, old)
    os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_models_config(base: str | Path) -> Path:
    """Write ``<base>/models.config`` (TF Serving's text ``ModelServerConfig``) for every model.

    Every folder of ``base`` holding at least one version is listed with its absolute path and
    the default version policy (latest). An existing config keeps its other settings (version
    policies, labels) for the models it already lists.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base = Path(base).resolve()
    path = base / "models.config"
    config = model_server_config_pb2.ModelServerConfig()
    if path.exists():
        try:
            text_format.Parse(path.read_text(), config)
        except text_format.ParseError as e:
            raise ValueError(f"{path} is not a valid ModelServerConfig: {e}. Fix or delete "
                             "it; export rewrites it.") from e
    listed = {c.name: c for c in config.model_config_list.config}
    for model_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        if not versions(model_dir):
            continue
        entry = listed.get(model_dir.name)
        if entry is None:
            entry = config.model_config_list.config.add()
            entry.name = model_dir.name
        entry.base_path = str(model_dir)
        entry.model_platform = "tensorflow"
    tmp = path.with_name(f".models.config.{secrets.token_hex(4)}")
    tmp.write_text(text_format.MessageToString(config))
    os.replace(tmp, path)
    return path
