"""Task streams: deterministic, independent of chunking, disjoint across splits."""

import numpy as np
import pytest

from keras_meta.rl import (
    SPLITS,
    BanditTasks,
    TaskStream,
    concat_tasks,
    draw_tasks,
    sample_bandit_tasks,
    sample_mdp_tasks,
    sample_navigation_tasks,
)
from keras_meta.rl.envs.sampler import TASK_BLOCK, noise_generator


def _uniform(rng, n):
    return BanditTasks(rng.random((n, 3)))


def test_same_seed_same_tasks():
    a = sample_mdp_tasks(50, split="test", seed=7)
    b = sample_mdp_tasks(50, split="test", seed=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = sample_mdp_tasks(50, split="test", seed=8)
    assert not np.array_equal(a.rewards, c.rewards)


@pytest.mark.parametrize("seed", [0, 1, 2**40])
def test_splits_are_disjoint(seed):
    tasks = {split: sample_bandit_tasks(2000, 5, split=split, seed=seed).probs
             for split in SPLITS}
    rows = [set(map(tuple, probs)) for probs in tasks.values()]
    assert all(len(r) == 2000 for r in rows)
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]
    goals = {split: sample_navigation_tasks(500, split=split, seed=seed).goals
             for split in SPLITS}
    assert not set(map(tuple, goals["train"])) & set(map(tuple, goals["test"]))


@pytest.mark.parametrize("starts", [(0, 10, 150), (0, 64, 128), (0, 1, 2), (0, 150, 151)])
def test_task_index_does_not_depend_on_chunking(starts):
    end = 3 * TASK_BLOCK
    whole = draw_tasks(_uniform, 3, "train", 0, end)
    bounds = list(starts) + [end]
    parts = [draw_tasks(_uniform, 3, "train", a, b - a) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(whole.probs, concat_tasks(parts).probs)
    assert draw_tasks(_uniform, 3, "train", 70, 0).probs.shape == (0, 3)


def test_task_stream_cursor_and_cache():
    stream = TaskStream(_uniform, 0, "test")
    first, second = stream.next(100), stream.next(100)
    assert stream.position == 200
    np.testing.assert_array_equal(concat_tasks([first, second]).probs,
                                  draw_tasks(_uniform, 0, "test", 0, 200).probs)
    np.testing.assert_array_equal(stream.take(0, 200).probs,
                                  concat_tasks([first, second]).probs)


def test_noise_stream_is_not_a_task_stream():
    task_draw = draw_tasks(_uniform, 0, "train", 0, 2).probs.ravel()[:4]
    assert not np.array_equal(task_draw, noise_generator(0, "train").random(4))


@pytest.mark.parametrize("kwargs,match", [
    ({"split": "dev"}, r"`split` must be one of \('train', 'validation', 'test'\). "
                       r"Received: split='dev'"),
    ({"split": "test", "seed": -3}, r"`seed` must be an integer >= 0. Received: seed=-3"),
    ({"split": "test", "seed": 1.5}, r"Received: seed=1.5"),
    ({"split": "test", "start": -1}, r"`start` must be an integer >= 0. Received: start=-1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_bandit_tasks(3, 5, **kwargs)


def test_bad_count_and_arms():
    with pytest.raises(ValueError, match=r"`count` must be an integer >= 0. Received: count=-2"):
        sample_navigation_tasks(-2, split="test")
    with pytest.raises(ValueError, match=r"`num_arms` must be an integer >= 2. Received: num_ar"):
        sample_bandit_tasks(3, 1, split="test")
