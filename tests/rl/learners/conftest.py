"""Shared setup of the meta-RL learner tests: Keras seeding from tests/conftest.py."""

import keras
import pytest


@pytest.fixture(autouse=True)
def _seed():
    """Seeds Keras (weights) before each test; overrides tests/rl/conftest.py's no-op."""
    keras.utils.set_random_seed(0)
    yield
