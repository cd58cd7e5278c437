"""The docstring examples of keras_meta.rl.learners run and print what they show."""

import doctest

import pytest

from keras_meta.rl.learners import maml_rl, rl2


@pytest.mark.parametrize("module", [rl2, maml_rl], ids=lambda m: m.__name__)
def test_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
