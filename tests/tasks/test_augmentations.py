"""Training-split image augmentations: geometry, determinism and identifiers."""

import numpy as np
import pytest
import tensorflow as tf

from keras_meta.tasks import augmentations
from keras_meta.tasks.augmentations import Affine, Rotate90, Shift

SEED = tf.constant([3, 4], tf.int64)


def dots(n, side=21, offset=(0, 6)):
    """``n`` images with one bright 3x3 dot ``offset`` (rows, cols) from the centre."""
    x = np.zeros((n, side, side, 1), np.float32)
    r, c = side // 2 + offset[0], side // 2 + offset[1]
    x[:, r - 1 : r + 2, c - 1 : c + 2] = 1.0
    return x


def polar(images):
    """Distance and angle (degrees) of each image's intensity centroid from the centre."""
    side = images.shape[1]
    grid = np.arange(side) - (side - 1) / 2
    mass = images[..., 0].sum(axis=(1, 2))
    rows = (images[..., 0] * grid[None, :, None]).sum(axis=(1, 2)) / mass
    cols = (images[..., 0] * grid[None, None, :]).sum(axis=(1, 2)) / mass
    return np.hypot(rows, cols), np.degrees(np.arctan2(rows, cols))


def test_affine_without_distortion_is_the_identity():
    x = np.random.default_rng(0).random((5, 9, 9, 1)).astype(np.float32)
    out = Affine(rotation=0, scale=0, shear=0, translation=0)(tf.constant(x), SEED)
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_affine_rotation_turns_each_image_about_its_centre_within_the_bound():
    out = Affine(rotation=90, scale=0)(tf.constant(dots(64)), SEED).numpy()
    distance, angle = polar(out)
    np.testing.assert_allclose(distance, 6.0, atol=0.3)  # about the centre, no scaling
    assert np.abs(angle).max() <= 90.5
    assert np.abs(angle).max() > 70 and angle.std() > 25  # each image its own angle
    assert (angle > 5).any() and (angle < -5).any()  # both ways


def test_affine_scale_moves_points_along_their_ray_within_the_bound():
    out = Affine(rotation=0, scale=0.2)(tf.constant(dots(64)), SEED).numpy()
    distance, angle = polar(out)
    np.testing.assert_allclose(angle, 0.0, atol=0.5)
    assert distance.min() >= 6 * 0.8 - 0.3 and distance.max() <= 6 * 1.2 + 0.3
    assert distance.max() - distance.min() > 1.0


def test_affine_translation_and_shear_stay_within_their_bounds():
    moved = Affine(rotation=0, scale=0, translation=2)(tf.constant(dots(64, offset=(0, 0))),
                                                       SEED).numpy()
    distance, _ = polar(moved)
    assert distance.max() <= 2 * np.sqrt(2) + 0.1 and distance.max() > 1.0
    # Shear along the rows moves a dot below the centre sideways, by at most shear * 6.
    sheared = Affine(rotation=0, scale=0, shear=0.3)(tf.constant(dots(64, offset=(6, 0))),
                                                     SEED).numpy()
    distance, angle = polar(sheared)
    sideways = distance * np.cos(np.radians(angle))
    assert np.abs(sideways).max() <= 0.3 * 6 + 0.2 and np.abs(sideways).max() > 0.5


def test_augmentations_are_deterministic_per_seed_and_keep_the_value_range():
    x = tf.constant(np.random.default_rng(1).random((6, 12, 12, 1)).astype(np.float32))
    for augmentation in (Rotate90(), Shift(2), Affine(20, 0.1, 0.2, 1.5)):
        a, b = augmentation(x, SEED), augmentation(x, SEED)
        np.testing.assert_array_equal(a, b)
        others = [augmentation(x, SEED + i) for i in range(1, 6)]
        assert not all(np.array_equal(a, other) for other in others)
        assert a.shape == x.shape and 0.0 <= np.min(a) and np.max(a) <= 1.0


def test_rotate90_turns_the_whole_episode_together():
    x = tf.constant(dots(4, offset=(0, 6)))
    out = Rotate90()(x, SEED).numpy()
    _, angle = polar(out)
    assert np.allclose(angle, angle[0])


@pytest.mark.parametrize("identifier, expected", [
    ("rotate90", Rotate90()),
    ("shift", Shift(3)),  # a bare name takes the sampler's max_shift
    ({"name": "shift", "max_shift": 1}, Shift(1)),
    ({"name": "affine", "rotation": 5}, Affine(rotation=5)),
    ("affine", Affine()),
])
def test_identifiers(identifier, expected):
    got = augmentations.get(identifier, max_shift=3)
    assert got == expected
    assert augmentations.get(got.get_config()) == got  # configs round-trip


@pytest.mark.parametrize("identifier, message", [
    ("flip", "`augment` entries must be one of \\['affine', 'rotate90', 'shift'\\]"),
    ({"rotation": 5}, "a config dict with such a 'name'"),
    ({"name": "affine", "angle": 5}, "Bad arguments for augmentation 'affine'"),
    ({"name": "affine", "scale": 0.9}, "`scale` must be a number in \\[0.0, 0.5\\]"),
    ({"name": "affine", "rotation": float("nan")}, "`rotation` must be a number"),
    ({"name": "shift", "max_shift": 0}, "`max_shift` must be an integer >= 1"),
])
def test_bad_identifiers_are_refused_by_name(identifier, message):
    with pytest.raises(ValueError, match=message):
        augmentations.get(identifier)


def test_augmentations_check_the_image_size():
    with pytest.raises(ValueError, match="`translation` must be smaller than the images' side 4"):
        Affine(translation=4).check((4, 6, 1))
    with pytest.raises(ValueError, match="`max_shift` must be smaller than the images' side 4"):
        Shift(4).check((6, 4, 1))
