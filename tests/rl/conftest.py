"""Shared setup of the meta-RL tests.

Imports keras_meta.rl first: it silences the tf-agents/gym import noise before the tests
import tf_agents themselves.
"""

import pytest

import keras_meta.rl  # noqa: F401


@pytest.fixture(autouse=True)
def _seed():
    """Overrides the Keras seeding and `clear_session` of tests/conftest.py.

    These tests use numpy and tf-agents, no Keras models; their randomness is seeded
    explicitly. `clear_session` garbage-collects on every test (0.2-0.4 s each here).
    """
    yield
