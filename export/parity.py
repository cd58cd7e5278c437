"""Parity between an exported artifact and the in-memory model it came from."""

from __future__ import annotations

import dataclasses

import numpy as np

DEFAULT_TOLERANCE = 1e-4


def relative_error(actual, expected) -> float:
    """``max |actual - expected| / max |expected|``: the error relative to the output's scale.

    Scaling by the largest reference value (not elementwise) keeps near-zero entries, such as
    tiny probabilities, from dominating.
    """
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    if not np.all(np.isfinite(actual)):
        return float("inf")
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-30)
    return float(np.max(np.abs(actual - expected), initial=0.0) / scale)


@dataclasses.dataclass
class ParityReport:
    """Worst relative error per ``(artifact, signature, output)``."""

    tolerance: float = DEFAULT_TOLERANCE
    errors: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, where: str, signature: str, actual: dict, expected: dict) -> None:
        missing = sorted(set(expected) - set(actual))
        if missing:
            raise ExportCheckError(f"{where}: signature {signature!r} lacks outputs {missing}; "
                                   f"it has {sorted(actual)}.")
        for key, value in expected.items():
            self.errors[f"{where}/{signature}/{key}"] = relative_error(actual[key], value)

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def failures(self) -> dict[str, float]:
        return {k: v for k, v in self.errors.items() if not v <= self.tolerance}

    def check(self) -> ParityReport:
        failures = self.failures()
        if failures:
            listed = ", ".join(f"{k}: {v:.2e}" for k, v in failures.items())
            raise ExportCheckError(
                f"Exported outputs differ from the in-memory model by more than the tolerance "
                f"{self.tolerance:g} (relative to each output's largest value): {listed}. "
                "Nothing was published.")
        return self

    def to_json(self) -> dict:
        return {"tolerance": self.tolerance, "worst": self.worst, "errors": self.errors}


class ExportCheckError(ValueError):
    """An exported artifact failed its check (loading or parity); it was not published."""
