"""Models and versions: discovery on disk, version policies, loading, swapping, status.

This is the part of TF Serving's `ServerCore` a client can observe:

- A model is a base path holding one folder per version, named by a positive integer; other
  names (such as the export's `.incomplete-<version>-<random>`) are never served. The folders are
  polled every `poll_seconds`.
- The version policy of `models.config` (`latest` (default, 1 version), `all`, `specific`)
  decides which versions should be loaded ("aspired"). Versions load highest first, each fully
  (and warmed up) before it serves; a version that is no longer aspired is unloaded only once an
  aspired version serves (TF Serving's `AvailabilityPreservingPolicy`), and its memory is freed
  only after the requests that hold it have finished.
- A version that fails to load is reported as `END` with the error and never serves; the versions
  that served before keep serving. It is retried when its folder changes.
- `version_labels` map labels to versions; a request names a model and optionally a version or a
  label, and without either gets the highest available version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping

from serving import backends
from serving.errors import Code, ServingError, invalid_argument, not_found

log = logging.getLogger("serving")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
_VERSION_DIR = re.compile(r"\d+")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One model to serve (a `tensorflow.serving.ModelConfig`)."""

    name: str
    base_path: str
    platform: str = ""
    policy: str = "latest"  # "latest", "all" or "specific"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: Mapping[str, int] = dataclasses.field(default_factory=dict)


def configs_from_proto(config, root_dir: str | None = None) -> list[ModelConfig]:
    """`ModelConfig`s of a `ModelServerConfig` proto; relative base paths join `root_dir`.

    TF Serving requires absolute base paths; resolving relative ones against the directory of the
    config file lets one `models.config` travel with its models.
    """
    if config.WhichOneof("config") != "model_config_list":
        raise invalid_argument("ServerModelConfig type not supported by "
                               "HandleReloadConfigRequest. Only ModelConfigList is currently "
                               "supported")
    models, names = [], set()
    for entry in config.model_config_list.config:
        if entry.name in names:
            raise invalid_argument(
                f"Illegal to list model {entry.name} multiple times in config list")
        names.add(entry.name)
        base = entry.base_path
        if root_dir and not os.path.isabs(base) and "://" not in base:
            base = os.path.join(root_dir, base)
        policy = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        models.append(ModelConfig(
            name=entry.name, base_path=base, platform=entry.model_platform, policy=policy,
            num_versions=max(entry.model_version_policy.latest.num_versions, 1),
            versions=tuple(entry.model_version_policy.specific.versions),
            labels=dict(entry.version_labels)))
    return models


def read_config_file(path: str) -> list[ModelConfig]:
    """Parses a text `ModelServerConfig` file, like `--model_config_file`."""
    from google.protobuf import text_format

    from serving import _protos

    pb2 = _protos.load_config()
    config = pb2.ModelServerConfig()
    try:
        with open(path) as f:
            text_format.Parse(f.read(), config)
    except (OSError, text_format.ParseError) as e:
        raise ValueError(f"cannot read model config file {path}: {e}") from None
    try:
        return configs_from_proto(config, root_dir=os.path.dirname(os.path.abspath(path)))
    except ServingError as e:
        raise ValueError(f"model config file {path}: {e.message}") from None


def version_folders(base_path: str) -> dict[int, str]:
    """Integer-named subfolders of a base path, by version (`IndexChildrenByVersion`)."""
    folders = {}
    for name in sorted(os.listdir(base_path)):
        full = os.path.join(base_path, name)
        if _VERSION_DIR.fullmatch(name) and os.path.isdir(full):
            folders[int(name)] = full
    return folders


def discover(path: str) -> list[ModelConfig]:
    """The models under a path given on the command line.

    `path/models.config` if present; else `path` itself when it holds version folders (the model
    is named after the folder); else every subfolder that holds version folders.
    """
    path = os.path.abspath(path)
    config_file = os.path.join(path, "models.config")
    if os.path.exists(config_file):
        models = read_config_file(config_file)
        # An export tree copied elsewhere keeps the absolute base paths of where it was
        # written; its models still sit next to the config.
        for i, model in enumerate(models):
            moved = os.path.join(path, os.path.basename(model.base_path.rstrip("/")))
            if not os.path.isdir(model.base_path) and os.path.isdir(moved):
                log.info("model %s: %s does not exist, serving %s", model.name,
                         model.base_path, moved)
                models[i] = dataclasses.replace(model, base_path=moved)
        return models
    if not os.path.isdir(path):
        raise ValueError(f"model base path {path} is not a directory")
    if version_folders(path):
        return [ModelConfig(name=os.path.basename(path), base_path=path)]
    models = [ModelConfig(name=name, base_path=os.path.join(path, name))
              for name in sorted(os.listdir(path))
              if os.path.isdir(os.path.join(path, name))
              and version_folders(os.path.join(path, name))]
    if not models:
        raise ValueError(f"no models under {path}: expected {path}/<model>/<version>/ folders "
                         "or a models.config")
    return models


def _fingerprint(path: str) -> tuple:
    """What changes when a version folder is (re)written: names, sizes and times of its files."""
    entries = []
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size,
                            st.st_mtime_ns))
    return tuple(sorted(entries))


class LoadedVersion:
    """A version that serves: the backend's model and a count of the requests using it."""

    def __init__(self, name: str, version: int, path: str, model: backends.Model, backend: str):
        self.name, self.version, self.path = name, version, path
        self.model = model
        self.backend = backend
        self._users = 0
        self._idle = threading.Condition()

    @property
    def signatures(self):
        return self.model.signatures

    def _acquire(self):
        with self._idle:
            self._users += 1

    def _release(self):
        with self._idle:
            self._users -= 1
            if self._users == 0:
                self._idle.notify_all()

    def wait_idle(self):
        with self._idle:
            self._idle.wait_for(lambda: self._users == 0)


@dataclasses.dataclass
class VersionStatus:
    """The state of one version as `GetModelStatus` reports it."""

    state: str
    error: ServingError | None = None
    path: str = ""
    fingerprint: tuple | None = None


class ModelManager:
    """Loads, swaps and unloads versions of the configured models; resolves requests.

    Args:
        models: the models to serve.
        backend_for: the backend name ("tensorflow" or "onnx") of a `ModelConfig`.
        poll_seconds: seconds between polls of the base paths; 0 or less polls only at start.
        warmup: `warmup(loaded_version)` replays its warm-up requests, raising on failure.
        backend_options: keyword options per backend name, passed to its `load`.
    """

    def __init__(self, models: list[ModelConfig], backend_for: Callable[[ModelConfig], str],
                 poll_seconds: float = 1.0,
                 warmup: Callable[[LoadedVersion], None] | None = None,
                 backend_options: Mapping[str, dict] | None = None):
        self._models = {m.name: m for m in models}
        self._backend_for = backend_for
        self._poll_seconds = poll_seconds
        self._warmup = warmup
        self._backend_options = dict(backend_options or {})
        self._lock = threading.Lock()  # guards _available and _states
        self._available: dict[str, dict[int, LoadedVersion]] = {}
        self._states: dict[str, dict[int, VersionStatus]] = {}
        self._poll_lock = threading.Lock()  # one poll at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unloaders: list[threading.Thread] = []
        self._warned_missing: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Loads what the policies aspire to (blocking), then polls in a background thread."""
        self.poll()
        if self._poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="serving-poll",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            loaded = [v for versions in self._available.values() for v in versions.values()]
            self._available = {}
        for version in loaded:
            version.wait_idle()
            version.model.close()
        for thread in list(self._unloaders):
            thread.join()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
            except Exception:  # never let the poller die
                log.exception("polling the model base paths failed")

    def reload_config(self, models: list[ModelConfig]) -> None:
        """Serves a new list of models (`HandleReloadConfigRequest`, config file polling)."""
        with self._poll_lock:
            self._models = {m.name: m for m in models}
        self.poll()

    # -- polling and loading -----------------------------------------------------------------
    def poll(self) -> None:
        """One pass over all models: load new aspired versions, unload replaced ones."""
        with self._poll_lock:
            for name in list(self._available):
                if name not in self._models:
                    self._unload_all(name)
            for config in list(self._models.values()):
                if self._stop.is_set():
                    return
                self._reconcile(config)

    def _failed(self, name: str, version: int, path: str) -> bool:
        """Whether a version failed to load and its folder has not changed since."""
        status = self._states.get(name, {}).get(version)
        return (status is not None and status.error is not None
                and _fingerprint(path) == status.fingerprint)

    def _aspired(self, config: ModelConfig, on_disk: dict[int, str],
                 skip_failed: bool = True) -> dict[int, str]:
        if config.policy == "all":
            return dict(on_disk)
        if config.policy == "specific":
            return {v: p for v, p in on_disk.items() if v in set(config.versions)}
        # `latest`: the newest versions, passing over those that failed to load (TF Serving
        # would keep aspiring a broken newest version and, after a restart, serve nothing).
        newest = [v for v in sorted(on_disk, reverse=True)
                  if not (skip_failed and self._failed(config.name, v, on_disk[v]))]
        newest = newest[:config.num_versions]
        return {v: on_disk[v] for v in newest}

    def _reconcile(self, config: ModelConfig) -> None:
        try:
            on_disk = version_folders(config.base_path)
        except OSError as e:
            if config.name not in self._warned_missing:
                log.error("Could not find base path %s for servable %s with error %s",
                          config.base_path, config.name, e)
                self._warned_missing.add(config.name)
            return  # keep serving what is loaded, as TF Serving does
        self._warned_missing.discard(config.name)
        if not on_disk:
            log.warning("No versions of servable %s found under base path %s. Did you forget "
                        "to name your leaf directory as a number (eg. '/1/')?", config.name,
                        config.base_path)
        # Load what the policy aspires to, highest first, one version at a time; a failed load
        # can change what `latest` aspires to, hence the recomputation.
        for _ in range(len(on_disk) + 1):
            aspired = self._aspired(config, on_disk)
            pending = [v for v in sorted(aspired, reverse=True)
                       if self._needs_load(config.name, v, aspired[v])]
            if not pending:
                break
            self._load(config, pending[0], aspired[pending[0]])
        wanted = set(self._aspired(config, on_disk, skip_failed=False))
        self._unload_replaced(config.name, set(aspired), wanted | set(aspired))

    def _needs_load(self, name: str, version: int, path: str) -> bool:
        status = self._states.get(name, {}).get(version)
        if status is not None and status.state in (START, LOADING, AVAILABLE, UNLOADING):
            return False
        return not self._failed(name, version, path)

    def _set_state(self, name: str, version: int, status: VersionStatus) -> None:
        with self._lock:
            self._states.setdefault(name, {})[version] = status

    def _load(self, config: ModelConfig, version: int, path: str) -> None:
        self._set_state(config.name, version, VersionStatus(START, path=path))
        self._set_state(config.name, version, VersionStatus(LOADING, path=path))
        fingerprint = _fingerprint(path)
        started = time.monotonic()
        model, backend = None, "?"
        try:
            backend = backends.canonical_name(self._backend_for(config))
            model = backends.load(backend, path, **self._backend_options.get(backend, {}))
            loaded = LoadedVersion(config.name, version, path, model, backend)
            if self._warmup is not None:
                self._warmup(loaded)
        except Exception as e:  # a broken version must never take the server down
            error = e if isinstance(e, ServingError) else ServingError(
                Code.UNKNOWN, f"{type(e).__name__}: {e}")
            log.error("Loading servable: {name: %s version: %d} failed: %s", config.name,
                      version, error.to_string())
            if model is not None:
                with contextlib.suppress(Exception):
                    model.close()
            self._set_state(config.name, version,
                            VersionStatus(END, error=error, path=path, fingerprint=fingerprint))
            return
        with self._lock:
            versions = dict(self._available.get(config.name, {}))
            versions[version] = loaded
            self._available = {**self._available, config.name: versions}
            self._states.setdefault(config.name, {})[version] = VersionStatus(AVAILABLE,
                                                                              path=path)
        log.info("Successfully loaded servable version {name: %s version: %d} (%s, %.2f s)",
                 config.name, version, backend, time.monotonic() - started)

    def _unload_replaced(self, name: str, aspired: set[int], wanted: set[int]) -> None:
        """`AvailabilityPreservingPolicy`: unload unaspired versions while availability holds.

        `wanted`: what the policy asks for, including versions that failed to load (a failed
        version, like in TF Serving, does not make the versions serving before it unload).
        """
        while True:
            with self._lock:
                available = self._available.get(name, {})
                unaspired = sorted(v for v in available if v not in aspired)
                states = self._states.get(name, {})
                has_aspired = any(v in wanted for v in states)
                has_aspired_serving = any(v in aspired for v in available)
            if not unaspired or not (not has_aspired or has_aspired_serving or
                                     len(unaspired) > 1):
                return
            self._unload(name, unaspired[0])

    def _unload_all(self, name: str) -> None:
        for version in sorted(self._available.get(name, {})):
            self._unload(name, version)

    def _unload(self, name: str, version: int) -> None:
        with self._lock:
            versions = dict(self._available.get(name, {}))
            loaded = versions.pop(version)
            self._available = {**self._available, name: versions}
            self._states[name][version] = VersionStatus(UNLOADING, path=loaded.path)

        def finish():
            loaded.wait_idle()  # requests in flight finish on the old version
            loaded.model.close()
            self._set_state(name, version, VersionStatus(END, path=loaded.path))
            log.info("Unloaded servable version {name: %s version: %d}", name, version)

        thread = threading.Thread(target=finish, name=f"serving-unload-{name}-{version}",
                                  daemon=True)
        self._unloaders = [t for t in self._unloaders if t.is_alive()] + [thread]
        thread.start()

    # -- requests ----------------------------------------------------------------------------
    def _resolve(self, name: str, version: int | None, label: str | None) -> LoadedVersion:
        """`ServerCore::GetServableHandle` under the lock; raises TF Serving's errors."""
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        if label is not None:
            config = self._models.get(name)
            if config is None or label not in config.labels:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            version = config.labels[label]
        versions = self._available.get(name, {})
        if version is None:
            if versions:
                return versions[max(versions)]
            raise not_found(f"Servable not found for request: Latest({name})")
        if version in versions:
            return versions[version]
        raise not_found(f"Servable not found for request: Specific({name}, {version})")

    @contextlib.contextmanager
    def handle(self, name: str, version: int | None = None,
               label: str | None = None) -> Iterator[LoadedVersion]:
        """The version a request asks for, held (not unloaded) until the block ends."""
        with self._lock:
            loaded = self._resolve(name, version, label)
            loaded._acquire()
        try:
            yield loaded
        finally:
            loaded._release()

    def version_states(self, name: str) -> dict[int, VersionStatus]:
        """Every version of a model seen so far, highest first (`ServableStateMonitor`)."""
        with self._lock:
            states = dict(self._states.get(name, {}))
        return {v: states[v] for v in sorted(states, reverse=True)}

    def available_versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(self._available.get(name, {}))
