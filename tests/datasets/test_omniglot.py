"""Tests of `load_omniglot` on tiny synthetic zips, plus one slow test on the real data."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_meta.datasets import ClassImages, load_omniglot, omniglot, omniglot_root, split_classes

ROTATIONS = ("rot000", "rot090", "rot180", "rot270")


def load(root: Path, cache: Path, **kwargs) -> ClassImages:
    kwargs.setdefault("image_size", 12)
    return load_omniglot(root=root, cache_dir=cache, **kwargs)


def characters(pool: ClassImages) -> set[str]:
    return {name.rsplit("/", 1)[0] for name in pool.class_names}


# ----------------------------------------------------------------------------- Vinyals split


def test_vinyals_counts_order_and_groups(omniglot_dir, cache_dir):
    lines = (omniglot_dir / "splits/vinyals/train.txt").read_text().split()
    train = load(omniglot_dir, cache_dir, subset="train")
    assert train.class_names == tuple(lines)  # split-file order
    assert train.num_classes == 16
    assert train.groups == tuple(line.split("/")[0] for line in lines)
    assert train.images_per_class.tolist() == [3] * 16
    assert train.image_shape == (12, 12, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int32
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(16), 3))
    counts = {s: load(omniglot_dir, cache_dir, subset=s).num_classes
              for s in ("val", "test", "trainval", "all")}
    assert counts == {"val": 4, "test": 12, "trainval": 20, "all": 32}


def test_vinyals_subsets_are_disjoint(omniglot_dir, cache_dir):
    pools = {s: load(omniglot_dir, cache_dir, subset=s)
             for s in ("train", "val", "test", "trainval")}
    assert not characters(pools["train"]) & characters(pools["val"])
    assert not characters(pools["trainval"]) & characters(pools["test"])
    assert characters(pools["train"]) | characters(pools["val"]) == characters(pools["trainval"])


def test_metadata(omniglot_dir, cache_dir):
    pool = load(omniglot_dir, cache_dir, subset="val")
    meta = pool.metadata
    assert (meta["dataset"], meta["split"], meta["subset"], meta["seed"]) == (
        "omniglot", "vinyals", "val", None)
    assert meta["image_size"] == (12, 12)
    assert meta["rotations"] == (0, 90, 180, 270)
    assert meta["interpolation"] == "nearest"
    assert meta["source"] == str(omniglot_dir)
    assert set(meta["source_sha256"]) == {"images_background.zip", "images_evaluation.zip"}
    assert meta["split_file"] == (str(omniglot_dir / "splits/vinyals/val.txt"),)
    with pytest.raises(TypeError):
        meta["split"] = "maml"


def test_ink_is_255_on_background_0(omniglot_dir, cache_dir, fakes):
    pool = load(omniglot_dir, cache_dir, subset="train")
    # Alpha/character01 is the first character written (index 0), drawer 1.
    first = pool.images[pool.indices_by_class[pool.class_index("Alpha/character01/rot000")][0]]
    expected = np.where(fakes.glyph(1), 0, 255).astype(np.uint8)  # white paper -> 0
    np.testing.assert_array_equal(first[:, :, 0], expected)


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_rotated_class_is_rot90_of_base_class(omniglot_dir, cache_dir, angle):
    pool = load(omniglot_dir, cache_dir, subset="all")
    for character in ("Alpha/character02", "Gamma/character03"):
        base = pool.images[pool.indices_by_class[pool.class_index(f"{character}/rot000")]]
        rotated = pool.images[
            pool.indices_by_class[pool.class_index(f"{character}/rot{angle:03d}")]]
        np.testing.assert_array_equal(rotated, np.rot90(base, k=angle // 90, axes=(1, 2)))
        # Counter-clockwise, as PIL's Image.rotate(angle) used by ProtoNets.
        pil = np.asarray(Image.fromarray(base[0, :, :, 0]).rotate(angle))
        np.testing.assert_array_equal(rotated[0, :, :, 0], pil)


def test_rotations_argument_filters_classes(omniglot_dir, cache_dir):
    pool = load(omniglot_dir, cache_dir, subset="test", rotations=(0,))
    assert pool.num_classes == 3
    assert all(name.endswith("/rot000") for name in pool.class_names)
    assert pool.metadata["rotations"] == (0,)
    two = load(omniglot_dir, cache_dir, subset="test", rotations=[180, 0])
    assert {n[-6:] for n in two.class_names} == {"rot000", "rot180"}


def test_resize_and_interpolation(omniglot_dir, cache_dir):
    nearest = load(omniglot_dir, cache_dir, subset="val", image_size=(5, 5))
    assert nearest.image_shape == (5, 5, 1)
    assert set(np.unique(nearest.images)) <= {0, 255}  # binary, like the reference code
    smooth = load(omniglot_dir, cache_dir, subset="val", image_size=5, interpolation="lanczos")
    assert smooth.image_shape == (5, 5, 1)
    assert len(np.unique(smooth.images)) > 2  # anti-aliased grey levels


def test_splits_fall_back_to_packaged_files_when_root_has_none(omniglot_dir, cache_dir):
    shutil.rmtree(omniglot_dir / "splits")
    packaged = omniglot_root() / "splits" / "vinyals" / "val.txt"
    # The packaged Vinyals lines name real characters, absent from the fake zips.
    with pytest.raises(ValueError, match=f"Line 1 of split file '{re.escape(str(packaged))}'"):
        load(omniglot_dir, cache_dir, subset="val")


# ----------------------------------------------------------------------------- MAML split


@pytest.fixture
def maml_dir(tmp_path, fakes):
    # 1223 characters (1100 train + 100 val + 23 test), 1 drawer, 4x4 PNGs.
    return fakes.build_root(tmp_path / "maml", background={"A": 700, "B": 300},
                          evaluation={"C": 223}, drawers=1, size=4)


def test_maml_counts_disjoint_and_deterministic(maml_dir, cache_dir):
    pools = {s: load(maml_dir, cache_dir, split="maml", subset=s, image_size=4, seed=3)
             for s in ("train", "val", "test", "trainval")}
    assert {s: p.num_classes for s, p in pools.items()} == {
        "train": 4400, "val": 400, "test": 92, "trainval": 4800}
    assert not characters(pools["train"]) & characters(pools["val"])
    assert not characters(pools["trainval"]) & characters(pools["test"])
    assert characters(pools["train"]) | characters(pools["val"]) == characters(pools["trainval"])
    assert len(characters(pools["trainval"]) | characters(pools["test"])) == 1223
    meta = pools["val"].metadata
    assert (meta["split"], meta["subset"], meta["seed"]) == ("maml", "val", 3)
    assert "split_file" not in meta

    again = load(maml_dir, cache_dir, split="maml", subset="test", image_size=4, seed=3)
    assert again.class_names == pools["test"].class_names
    np.testing.assert_array_equal(again.images, pools["test"].images)
    other = load(maml_dir, cache_dir, split="maml", subset="test", image_size=4, seed=4)
    assert characters(other) != characters(pools["test"])


def test_maml_needs_more_than_1200_characters(omniglot_dir, cache_dir):
    with pytest.raises(ValueError, match="needs more than 1200 characters.*8 characters"):
        load(omniglot_dir, cache_dir, split="maml", subset="train")


# ----------------------------------------------------------------------------- cache


def test_second_load_reads_the_cache_without_decoding(omniglot_dir, cache_dir, monkeypatch):
    first = load(omniglot_dir, cache_dir, subset="train")
    files = list(cache_dir.glob("*.npz"))
    assert len(files) == 1 and not list(cache_dir.glob("*.tmp"))

    def fail(*args, **kwargs):
        raise AssertionError("decoded despite a valid cache")

    monkeypatch.setattr(omniglot, "_decode_pool", fail)
    second = load(omniglot_dir, cache_dir, subset="train")
    np.testing.assert_array_equal(first.images, second.images)
    assert first.class_names == second.class_names
    load(omniglot_dir, cache_dir, subset="test")  # other subsets share the pool cache


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_cache_is_rebuilt(omniglot_dir, cache_dir, damage):
    first = load(omniglot_dir, cache_dir, subset="val")
    (path,) = cache_dir.glob("*.npz")
    data = path.read_bytes()
    path.write_bytes({"garbage": b"not an npz" * 100, "truncate": data[: len(data) // 2],
                      "empty": b""}[damage])
    with pytest.warns(RuntimeWarning, match="Ignoring unusable cache file"):
        second = load(omniglot_dir, cache_dir, subset="val")
    np.testing.assert_array_equal(first.images, second.images)
    assert path.read_bytes() == data  # rewritten
    load(omniglot_dir, cache_dir, subset="val")  # and valid again: no warning


def test_cache_is_keyed_by_content_and_size(omniglot_dir, cache_dir, fakes, monkeypatch):
    calls = []
    decode = omniglot._decode_pool

    def counting(*args, **kwargs):
        calls.append(args[1])
        return decode(*args, **kwargs)

    monkeypatch.setattr(omniglot, "_decode_pool", counting)
    load(omniglot_dir, cache_dir, subset="val")
    load(omniglot_dir, cache_dir, subset="val", image_size=6)
    load(omniglot_dir, cache_dir, subset="val")
    assert calls == [(12, 12), (6, 6)]
    fakes.build_root(omniglot_dir, drawers=2)  # rewrite the zips with other content
    pool = load(omniglot_dir, cache_dir, subset="val")
    assert len(calls) == 3 and pool.images_per_class.tolist() == [2] * 4


def test_cache_location_and_opt_out(omniglot_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_META_CACHE", str(tmp_path / "env_cache"))
    load_omniglot(root=omniglot_dir, subset="val", image_size=12)
    assert len(list((tmp_path / "env_cache" / "omniglot").glob("*.npz"))) == 1
    load_omniglot(root=omniglot_dir, subset="val", image_size=8, use_cache=False,
                  cache_dir=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_unwritable_cache_only_warns(omniglot_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="Could not write cache file"):
        pool = load(omniglot_dir, blocker / "cache", subset="val")
    assert pool.num_classes == 4


# ----------------------------------------------------------------------------- bad input


def test_missing_root_and_zip(omniglot_dir, cache_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="root=.*nowhere"):
        load(tmp_path / "nowhere", cache_dir)
    (omniglot_dir / "images_evaluation.zip").unlink()
    with pytest.raises(FileNotFoundError, match="images_evaluation.zip"):
        load(omniglot_dir, cache_dir)


def test_not_a_zip(omniglot_dir, cache_dir):
    (omniglot_dir / "images_background.zip").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ValueError, match="images_background.zip.*not a readable zip"):
        load(omniglot_dir, cache_dir)


def test_bad_crc_names_zip_and_member(omniglot_dir, cache_dir, fakes):
    path = omniglot_dir / "images_evaluation.zip"
    member = "images_evaluation/Gamma/character01/0005_01.png"
    fakes.write_zip(path, {member: fakes.png_bytes(fakes.glyph(5001))}, stored=True)
    data = bytearray(path.read_bytes())
    offset = data.index(b"IHDR")  # inside the stored PNG's bytes
    data[offset + 8] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"Corrupt member .*0005_01\.png.*images_evaluation\.zip"):
        load(omniglot_dir, cache_dir, subset="test")


def test_undecodable_png_names_member(omniglot_dir, cache_dir, fakes):
    fakes.write_zip(omniglot_dir / "images_evaluation.zip",
              {"images_evaluation/Gamma/character01/x.png": b"\x89PNG but broken"})
    with pytest.raises(ValueError, match=r"Cannot decode image .*x\.png.*images_evaluation"):
        load(omniglot_dir, cache_dir, subset="test")


@pytest.mark.parametrize("member", [
    "images_evaluation/Gamma/0001_01.png",  # no character folder
    "wrong_top/Gamma/character01/0001_01.png",  # other top folder
    "images_evaluation/Gamma/character01/extra/0001_01.png",  # too deep
])
def test_unexpected_zip_layout(omniglot_dir, cache_dir, member, fakes):
    fakes.write_zip(omniglot_dir / "images_evaluation.zip", {member: b"png"})
    with pytest.raises(ValueError, match=r"Unexpected layout .*images_evaluation\.zip"):
        load(omniglot_dir, cache_dir)


def test_zip_without_pngs(omniglot_dir, cache_dir, fakes):
    fakes.write_zip(omniglot_dir / "images_evaluation.zip", {"images_evaluation/README.txt": b"hi"})
    with pytest.raises(ValueError, match="contains no PNG images"):
        load(omniglot_dir, cache_dir)


def test_same_character_in_both_zips(tmp_path, cache_dir, fakes):
    root = fakes.build_root(tmp_path / "dup", background={"Alpha": 2}, evaluation={"Alpha": 1},
                          splits={})
    with pytest.raises(ValueError, match="'Alpha/character01' appears in both"):
        load(root, cache_dir)


def test_split_line_naming_missing_character(omniglot_dir, cache_dir):
    path = omniglot_dir / "splits/vinyals/test.txt"
    path.write_text(path.read_text() + "Gamma/character99/rot090\n")
    with pytest.raises(ValueError, match=r"Line 13 of split file .*test\.txt.*Gamma/character99"):
        load(omniglot_dir, cache_dir, subset="test")


@pytest.mark.parametrize("line", ["Gamma/character01", "Gamma/character01/rot045",
                                  "Gamma/character01/rot90", "a b/c/rot000"])
def test_malformed_split_line(omniglot_dir, cache_dir, line):
    path = omniglot_dir / "splits/vinyals/val.txt"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=r"Malformed line 1 of split file .*val\.txt"):
        load(omniglot_dir, cache_dir, subset="val")


def test_repeated_split_line(omniglot_dir, cache_dir):
    path = omniglot_dir / "splits/vinyals/val.txt"
    path.write_text("Beta/character02/rot000\n\nBeta/character02/rot000\n")
    with pytest.raises(ValueError, match=r"Line 3 .*repeats class .*val\.txt:1"):
        load(omniglot_dir, cache_dir, subset="val")


def test_missing_split_file(omniglot_dir, cache_dir):
    (omniglot_dir / "splits/vinyals/test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"split file not found: .*test\.txt"):
        load(omniglot_dir, cache_dir, subset="test")


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "ravi"}, "`split` must be one of .*Received: split='ravi'"),
    ({"subset": "training"}, "`subset` must be one of .*Received: subset='training'"),
    ({"image_size": 0}, "`image_size` must be positive"),
    ({"image_size": "28"}, "`image_size` must be a positive int .*Received: image_size='28'"),
    ({"image_size": (12, 10)}, "must be square when `rotations` includes 90"),
    ({"rotations": (45,)}, "`rotations` must be .*Received: rotations=\\(45,\\)"),
    ({"rotations": ()}, "`rotations` must be a non-empty"),
    ({"rotations": (0, 0)}, "distinct"),
    ({"interpolation": "cubic"}, "`interpolation` must be one of"),
    ({"split": "maml", "seed": -1}, "`seed` must be an integer >= 0. Received: seed=-1"),
    ({"split": "maml", "seed": 1.5}, "`seed` must be an integer >= 0"),
])
def test_invalid_arguments(omniglot_dir, cache_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load(omniglot_dir, cache_dir, **kwargs)


def test_non_square_size_without_quarter_turns(omniglot_dir, cache_dir):
    pool = load(omniglot_dir, cache_dir, subset="val", image_size=(12, 8), rotations=(0, 180))
    assert pool.image_shape == (12, 8, 1) and pool.num_classes == 2


# ----------------------------------------------------------------------------- real data


def test_packaged_files_exist():
    root = omniglot_root()
    for name in ("images_background.zip", "images_evaluation.zip", "LICENSE", "README.md",
                 "splits/vinyals/train.txt", "splits/vinyals/val.txt",
                 "splits/vinyals/test.txt", "splits/vinyals/trainval.txt"):
        assert (root / name).is_file(), name
    assert not list(root.glob("*small*"))


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("omniglot_cache")


@pytest.mark.slow
def test_real_omniglot_splits(real_cache):
    vinyals = {s: load_omniglot("vinyals", s, cache_dir=real_cache)
               for s in ("train", "val", "test", "trainval")}
    assert {s: p.num_classes for s, p in vinyals.items()} == {
        "train": 4112, "val": 688, "test": 1692, "trainval": 4800}
    for pool in vinyals.values():
        assert pool.image_shape == (28, 28, 1)
        assert set(pool.images_per_class.tolist()) == {20}
    assert not characters(vinyals["train"]) & characters(vinyals["val"])
    assert not characters(vinyals["trainval"]) & characters(vinyals["test"])
    assert len(characters(vinyals["trainval"]) | characters(vinyals["test"])) == 1623
    alphabets = {s: set(p.groups) for s, p in vinyals.items()}
    assert len(alphabets["trainval"] | alphabets["test"]) == 50
    assert not alphabets["train"] & alphabets["val"]  # 33 / 5 alphabets
    assert len(alphabets["trainval"] & alphabets["test"]) == 1  # 13 test alphabets, 1 shared

    test = vinyals["test"]
    name = test.class_names[0]
    assert name.endswith("/rot000")
    base = test.images[test.indices_by_class[0]]
    turned = test.images[test.indices_by_class[test.class_index(name[:-3] + "090")]]
    np.testing.assert_array_equal(turned, np.rot90(base, axes=(1, 2)))
    assert 0.03 < (test.images > 0).mean() < 0.2  # strokes (255) are the minority

    maml = {s: load_omniglot("maml", s, cache_dir=real_cache, seed=0)
            for s in ("train", "val", "test", "trainval")}
    assert {s: p.num_classes for s, p in maml.items()} == {
        "train": 4400, "val": 400, "test": 1692, "trainval": 4800}
    assert not characters(maml["train"]) & characters(maml["val"])
    assert not characters(maml["trainval"]) & characters(maml["test"])
    assert len(list(real_cache.glob("*.npz"))) == 1  # one decoded pool serves every split

    folds = split_classes(vinyals["trainval"], (0.8, 0.2), seed=0, by_group=True)
    assert not set(folds["train"].groups) & set(folds["test"].groups)
