"""Machine, versions and command, recorded next to every benchmark result."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path

# A benchmark imports the keras_meta of the checkout it is run from: the repository root goes
# first on the path, ahead of the checkout an editable install points at (a run from a
# snapshot worktree would otherwise measure the main tree's code). Benchmarks import this
# module before keras_meta.
CHECKOUT = Path(__file__).resolve().parent.parent
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))


def environment(packages=("tensorflow", "keras", "numpy")) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }


def markdown_header(title: str, env: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    return (f"# {title}\n\n- Date: {env['date']}\n- Machine: {env['machine']}\n"
            f"- Python {env['python']}; {versions}\n- Command: `{env['command']}`\n\n")
