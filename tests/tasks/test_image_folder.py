"""Episodes from a user's own folder of class folders."""

import numpy as np
import pytest
from PIL import Image

from keras_meta.tasks import ImageFolder


def make_folder(root, classes=6, per_class=4, size=(20, 14)):
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, size=size + (3,), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_folder_episodes_have_static_shapes_and_disjoint_class_splits(tmp_path):
    tasks = ImageFolder(make_folder(tmp_path / "data"), ways=2, shots=1, queries=2,
                        splits=(0.5, 0.5), image_size=8, color_mode="rgb")
    assert set(tasks.pools) == {"train", "test"}
    train = set(tasks.pools["train"].class_names)
    assert not train & set(tasks.pools["test"].class_names)
    ep = tasks.episodes("test", 3)
    assert ep.support_x.shape == (3, 2, 8, 8, 3) and ep.query_y.shape == (3, 4)


def test_classes_with_too_few_images_are_named(tmp_path):
    root = make_folder(tmp_path / "data", per_class=3)
    with pytest.raises(ValueError, match="class_"):
        ImageFolder(root, ways=2, shots=2, queries=2, image_size=8)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "nope", image_size=8)


def test_interpolation_is_passed_to_the_loader(tmp_path):
    root = make_folder(tmp_path / "data")
    kwargs = dict(ways=2, shots=1, queries=2, splits=(0.5, 0.5), image_size=5,
                  color_mode="grayscale")
    nearest = ImageFolder(root, interpolation="nearest", **kwargs)
    area = ImageFolder(root, interpolation="area", **kwargs)
    assert nearest.pools["train"].metadata["interpolation"] == "nearest"
    assert not np.array_equal(nearest.pools["train"].images, area.pools["train"].images)
    with pytest.raises(ValueError, match="`interpolation` must be one of"):
        ImageFolder(root, interpolation="fancy", **kwargs)
