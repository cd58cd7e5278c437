import keras
import pytest

import keras_meta  # noqa: F401  (quiet TensorFlow start-up)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
