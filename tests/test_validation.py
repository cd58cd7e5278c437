"""The shared argument checks: one wording, booleans refused, NumPy numbers accepted."""

import re

import numpy as np
import pytest

from keras_meta._validation import check_float, check_int


@pytest.mark.parametrize("value", [0, -3, 1.0, "2", True, None, np.float32(2)])
def test_check_int_names_the_argument_and_what_it_received(value):
    expected = f"`ways` must be an integer >= 1. Received: ways={value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_int("ways", value, 1)


def test_check_int_accepts_python_and_numpy_integers_and_optional_none():
    assert check_int("ways", 5, 2) == 5
    value = check_int("ways", np.int64(5), 2)
    assert value == 5 and type(value) is int
    assert check_int("task_chunk_size", None, 1, allow_none=True) is None
    with pytest.raises(ValueError, match=r"`task_chunk_size` must be an integer >= 1 or None"):
        check_int("task_chunk_size", 0, 1, allow_none=True)


@pytest.mark.parametrize("value, kwargs", [
    (-0.1, {"low": 0.0}), (1.5, {"low": 0.0, "high": 1.0}), (0.0, {"low": 0.0, "strict": True}),
    ("x", {"low": 0.0}), (float("nan"), {"low": 0.0}), (True, {"low": 0.0}),
])
def test_check_float_names_the_argument(value, kwargs):
    with pytest.raises(ValueError, match="`discount` must be a number"):
        check_float("discount", value, **kwargs)


def test_check_float_accepts_bounds_and_numpy_numbers():
    assert check_float("discount", 1, 0.0, 1.0) == 1.0
    assert check_float("clip_ratio", 0.2, 0.0, strict=True) == 0.2
    assert check_float("discount", np.float32(0.5), 0.0, 1.0) == 0.5
