import keras
import numpy as np
import pytest

from keras_meta import learners
from keras_meta.cross_validation import cross_validate
from keras_meta.datasets import ClassImages


def clustered_pool(classes=24, per_class=6, groups=6):
    """Classes are Gaussian blobs in pixel space; each group holds classes//groups classes."""
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 255, size=(classes, 4, 4, 1))
    images = np.clip(np.repeat(centres, per_class, 0) + rng.normal(0, 20, (classes * per_class,
                                                                            4, 4, 1)), 0, 255)
    return ClassImages(images.astype(np.uint8), np.repeat(np.arange(classes), per_class),
                       [f"c{i}" for i in range(classes)],
                       groups=[f"g{i % groups}" for i in range(classes)])


def make_learner():
    net = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(16)])
    learner = learners.ProtoNet(net)
    learner.compile(keras.optimizers.Adam(1e-3))
    return learner


def test_folds_hold_out_disjoint_groups_and_report_spread():
    result = cross_validate(make_learner, clustered_pool(), folds=3, ways=3, shots=1, queries=2,
                            train_steps=20, episodes=50)
    assert len(result.folds) == 3
    held = [set(g) for g in result.held_out_groups]
    assert set().union(*held) == {f"g{i}" for i in range(6)}
    assert all(not (a & b) for i, a in enumerate(held) for b in held[i + 1:])
    mean, std = result.spread("accuracy")
    assert mean > 0.6 and std >= 0  # chance is 1/3: blobs are easy
    assert "std over 3 folds" in str(result)


def test_too_many_folds():
    with pytest.raises(ValueError, match="folds"):
        cross_validate(make_learner, clustered_pool(), folds=7)
