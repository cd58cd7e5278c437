"""The docstring examples of keras_meta.rl run and print what they show."""

import doctest

import pytest

from keras_meta.rl.baselines import evaluation
from keras_meta.rl.envs import bandits, navigation, tabular_mdp


@pytest.mark.parametrize("module", [bandits, tabular_mdp, navigation, evaluation],
                         ids=lambda m: m.__name__)
def test_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
