"""The public API of keras_meta.rl and its quiet import."""

import subprocess
import sys

import keras_meta.rl as rl
from keras_meta.rl import baselines, envs


def test_all_exports_exist():
    for module in (rl, envs, baselines):
        assert module.__all__, module
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)
    assert set(envs.__all__) | set(baselines.__all__) | {"envs", "baselines"} == set(rl.__all__)


def test_import_hides_only_the_known_tf_agents_and_gym_noise():
    code = "import keras_meta.rl, tf_agents.environments.utils; print('imported')"
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                            text=True, timeout=120, check=True)
    assert "imported" in result.stdout
    assert "distutils Version classes are deprecated" not in result.stderr
    assert "Gym has been unmaintained" not in result.stderr
