"""Every benchmark script imports against the current package and explains itself with --help.

The benchmarks are how the numbers in docs/ are reproduced; this catches a script that an API
change has broken long before someone reruns it.
"""

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_benchmarks_are_found():
    assert {"omniglot.py", "rl2_bandits.py", "sampler_speed.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    description = out.split("\n\n")[1].strip()  # argparse: usage, description, options
    assert description and not description.startswith("options:"), out
