import keras_meta  # noqa: I001, F401  (first: it quiets TensorFlow's start-up logs)
import keras
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
