import math

import numpy as np
import pytest

from keras_meta.tasks import Sinusoid


def test_maml_protocol_ranges_and_shapes():
    tasks = Sinusoid(shots=5)
    ep = tasks.episodes("train", 400, meta_batch_size=100)
    assert ep.support_x.shape == (400, 5, 1) and ep.query_x.shape == (400, 5, 1)
    xs = np.concatenate([ep.support_x, ep.query_x], axis=1)
    ys = np.concatenate([ep.support_y, ep.query_y], axis=1)
    assert xs.min() >= -5 and xs.max() <= 5 and xs.min() < -4.9 and xs.max() > 4.9
    # Each task is A sin(x - phase): recover A and phase by least squares on sin/cos.
    amps, phases = [], []
    for x, y in zip(xs[:, :, 0], ys[:, :, 0]):
        design = np.stack([np.sin(x), -np.cos(x)], axis=1)
        (a_cos, a_sin), *_ = np.linalg.lstsq(design, y, rcond=None)
        amps.append(math.hypot(a_cos, a_sin))
        phases.append(math.atan2(a_sin, a_cos))
    amps, phases = np.array(amps), np.array(phases)
    assert amps.min() >= 0.1 - 1e-4 and amps.max() <= 5 + 1e-4
    assert phases.min() >= -1e-4 and phases.max() <= math.pi + 1e-4
    assert abs(amps.mean() - 2.55) < 0.3  # U[0.1, 5] has mean 2.55


def test_deterministic_for_a_seed_and_splits_differ():
    tasks = Sinusoid(shots=10)
    a = tasks.episodes("train", 50, seed=3)
    b = tasks.episodes("train", 50, seed=3)
    c = tasks.episodes("test", 50, seed=3)
    d = tasks.episodes("train", 50, seed=4)
    np.testing.assert_array_equal(a.support_x, b.support_x)
    assert not np.allclose(a.support_x, c.support_x)
    assert not np.allclose(a.support_x, d.support_x)


def test_start_offset_continues_the_stream():
    tasks = Sinusoid(shots=3)
    full = list(tasks.dataset("train", 4, seed=1, num_batches=5).as_numpy_iterator())
    tail = list(tasks.dataset("train", 4, seed=1, start=3, num_batches=2).as_numpy_iterator())
    np.testing.assert_array_equal(full[3][0]["support_x"], tail[0][0]["support_x"])
    np.testing.assert_array_equal(full[4][1], tail[1][1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="amplitude_range"):
        Sinusoid(amplitude_range=(5, 1))
    with pytest.raises(ValueError, match="split"):
        Sinusoid().dataset("training")
    with pytest.raises(ValueError, match="meta_batch_size"):
        Sinusoid().dataset("train", 0)
