"""Tests of `load_image_folder` on small folders written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from keras_meta.datasets import load_image_folder


@pytest.fixture
def folder(tmp_path, make_image):
    """Three classes: cat (3 PNGs), dog (2 JPEGs), emu (2 PNGs of other modes)."""
    for i in range(3):
        make_image(f"cat/{i}.png", seed=i)
    make_image("dog/a.jpg", seed=10)
    make_image("dog/b.JPEG", seed=11, fmt="JPEG")
    make_image("emu/gray.png", array=np.full((4, 9), 200, np.uint8))
    rgba = np.zeros((7, 7, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: composited onto white
    make_image("emu/rgba.png", array=rgba)
    (tmp_path / "folder/cat/notes.txt").write_text("ignored")
    (tmp_path / "folder/cat/.DS_Store").write_bytes(b"\0junk")
    (tmp_path / "folder/.hidden").mkdir()
    return tmp_path / "folder"


def test_flat_layout(folder):
    pool = load_image_folder(folder, image_size=8)
    assert pool.class_names == ("cat", "dog", "emu")
    assert pool.groups == ("cat", "dog", "emu")
    assert pool.images_per_class.tolist() == [3, 2, 2]
    np.testing.assert_array_equal(pool.labels, [0, 0, 0, 1, 1, 2, 2])
    assert pool.images.shape == (7, 8, 8, 1) and pool.images.dtype == np.uint8
    emu = pool.images[pool.indices_by_class[2]]
    assert (emu[0] == 200).all()  # gray.png sorts before rgba.png
    assert (emu[1] == 255).all()  # transparent -> white
    assert dict(pool.metadata) == {
        "dataset": "image_folder", "source": str(folder), "image_size": (8, 8),
        "color_mode": "grayscale", "interpolation": "bilinear", "invert": False}


def test_rgb_non_square_size_and_invert(folder):
    pool = load_image_folder(folder, image_size=(6, 4), color_mode="rgb", invert=True)
    assert pool.images.shape == (7, 6, 4, 3)
    emu = pool.images[pool.indices_by_class[2]]
    assert (emu[1] == 0).all()  # inverted white


def test_pixels_match_pil(folder):
    pool = load_image_folder(folder, image_size=(5, 6), interpolation="nearest")
    expected = Image.open(folder / "cat/1.png").convert("L").resize((6, 5), Image.NEAREST)
    np.testing.assert_array_equal(pool.images[1, :, :, 0], np.asarray(expected))


def test_nested_layout_groups(tmp_path, make_image):
    for alphabet in ("Latin", "Greek"):
        for character in ("character01", "character02"):
            make_image(f"{alphabet}/{character}/01.png")
    pool = load_image_folder(tmp_path / "folder")
    assert pool.class_names == ("Greek/character01", "Greek/character02",
                                "Latin/character01", "Latin/character02")
    assert pool.groups == ("Greek", "Greek", "Latin", "Latin")
    assert pool.image_shape == (6, 5, 1)  # image_size=None keeps the size


def test_classes_selects_and_orders(folder):
    pool = load_image_folder(folder, image_size=4, classes=["emu", "cat"])
    assert pool.class_names == ("emu", "cat")
    assert pool.images_per_class.tolist() == [2, 3]


def test_min_images_per_class(folder):
    load_image_folder(folder, image_size=4, min_images_per_class=2)
    with pytest.raises(ValueError, match=r"Class 'dog' .* has 2 image\(s\); at least "
                                         r"min_images_per_class=3"):
        load_image_folder(folder, image_size=4, min_images_per_class=3)
    assert load_image_folder(folder, image_size=4, classes=["cat"],
                             min_images_per_class=3).num_classes == 1


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_invalid_min_images_per_class(folder, value):
    with pytest.raises(ValueError, match="`min_images_per_class` must be an integer >= 1"):
        load_image_folder(folder, image_size=4, min_images_per_class=value)


def test_different_sizes_need_image_size(folder):
    with pytest.raises(ValueError, match=r"Image '.*emu/gray\.png' has size \(4, 9\) but "
                                         r"'.*cat/0\.png' has \(6, 5\) .* Pass `image_size=`"):
        load_image_folder(folder, classes=["cat", "emu"])


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="Image folder not found.*nowhere"):
        load_image_folder(tmp_path / "nowhere")


def test_path_is_a_file(tmp_path):
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"must be a folder .*file\.png"):
        load_image_folder(tmp_path / "file.png")


def test_corrupt_image_is_named(folder):
    (folder / "dog/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=r"Cannot read image '.*dog/broken\.png'"):
        load_image_folder(folder, image_size=4)


def test_empty_class_folder(folder):
    (folder / "fox").mkdir()
    with pytest.raises(ValueError, match=r"Class folder '.*fox' has no images \(it is empty\)"):
        load_image_folder(folder, image_size=4)
    # Leaving it out is fine.
    assert load_image_folder(folder, image_size=4, classes=["cat"]).num_classes == 1


def test_class_folder_without_image_files(folder):
    (folder / "fox").mkdir()
    (folder / "fox/readme.md").write_text("x")
    with pytest.raises(ValueError, match=r"'.*fox' has no images \(it has 1 non-image file"):
        load_image_folder(folder, image_size=4)


def test_images_directly_in_path(tmp_path, make_image):
    make_image("loose.png")
    with pytest.raises(ValueError, match=r"holds images directly \(e\.g\. 'loose\.png'\)"):
        load_image_folder(tmp_path / "folder")


def test_images_in_a_non_leaf_folder(tmp_path, make_image):
    make_image("Latin/stray.png")
    make_image("Latin/character01/01.png")
    with pytest.raises(ValueError, match=r"Found images in folder 'Latin' .*also has sub-folders"):
        load_image_folder(tmp_path / "folder")


def test_no_class_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="contains no class folders"):
        load_image_folder(tmp_path / "empty")


@pytest.mark.parametrize("classes, message", [
    (["cat", "wolf"], r"1 unknown class\(es\) .*\['wolf'\]\. Available: \['cat', 'dog', 'emu'\]"),
    (["cat", "cat"], r"must not repeat a class.*\['cat'\]"),
    ([], r"must not be empty"),
    ("cat", r"must be a sequence of class names"),
])
def test_bad_classes(folder, classes, message):
    with pytest.raises(ValueError, match=message):
        load_image_folder(folder, image_size=4, classes=classes)


@pytest.mark.parametrize("kwargs, message", [
    ({"color_mode": "cmyk"}, r"`color_mode` must be one of .*Received: color_mode='cmyk'"),
    ({"interpolation": "fancy"}, r"`interpolation` must be one of"),
    ({"image_size": (4, 0)}, r"`image_size` must be positive"),
    ({"image_size": (4, 4, 3)}, r"`image_size` must be a positive int or a \(height, width\)"),
])
def test_bad_arguments(folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_image_folder(folder, **kwargs)


def test_palette_with_transparency(tmp_path):
    palette = Image.new("P", (3, 3), 0)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.info["transparency"] = 0
    (tmp_path / "folder/p").mkdir(parents=True)
    palette.save(tmp_path / "folder/p/x.png", transparency=0)
    pool = load_image_folder(tmp_path / "folder", color_mode="rgb")
    assert (pool.images == 255).all()  # the transparent index becomes white


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    (tmp_path / "folder/deep").mkdir(parents=True)
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "folder/deep/x.png")
    pool = load_image_folder(tmp_path / "folder")
    np.testing.assert_array_equal(pool.images[0, :, :, 0], [[0, 1, 128, 255]])
