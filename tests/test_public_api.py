import importlib

import pytest

import keras_meta

MODULES = ["keras_meta", "keras_meta.tasks", "keras_meta.learners", "keras_meta.update_rules",
           "keras_meta.layers", "keras_meta.core", "keras_meta.datasets"]


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_imports(name):
    module = importlib.import_module(name)
    for symbol in module.__all__:
        assert getattr(module, symbol) is not None, f"{name}.{symbol}"


def test_version():
    assert keras_meta.__version__.count(".") == 2
