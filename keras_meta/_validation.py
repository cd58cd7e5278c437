"""Argument checks shared by the whole package: one wording for every bad number.

Each check names the argument, says what was expected and echoes what was received, in
Keras' style (``"`ways` must be an integer >= 2. Received: ways=1"``). Booleans are not
integers here (``True`` is an int to Python, never a meant count), NumPy integers are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> int | None:
    """Validates an integer argument ``>= minimum`` (or None, if `allow_none`).

    Args:
        name: the argument's name, quoted in the error.
        value: the value received (a Python or NumPy integer).
        minimum: the smallest allowed value.
        allow_none: accept None (returned as is).

    Returns:
        `value` as a Python int, or None.

    Raises:
        ValueError: naming `name`, if `value` is not such an integer.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}"
                         f"{' or None' if allow_none else ''}. Received: {name}={value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float | None = None,
                strict: bool = False) -> float:
    """Validates a number in ``[low, high]`` (``(low, high]`` if `strict`); NaN is refused.

    Returns:
        `value` as a Python float.

    Raises:
        ValueError: naming `name`, if `value` is not such a number.
    """
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    ok = (number > low if strict else number >= low) and (high is None or number <= high)
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        expected = bound if high is None else f"in {'(' if strict else '['}{low}, {high}]"
        raise ValueError(f"`{name}` must be a number {expected}. Received: {name}={value!r}")
    return number
