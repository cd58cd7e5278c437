"""The Omniglot task sampler over a tiny synthetic root (the real data is tested in datasets/)."""

import numpy as np
import pytest

from keras_meta.tasks import Omniglot
from tests.datasets.conftest import build_root


@pytest.fixture
def root(tmp_path):
    return build_root(tmp_path / "omniglot")


def test_interpolation_reaches_the_pools_and_the_config(root, tmp_path):
    kwargs = dict(ways=2, shots=1, queries=1, image_size=5, root=root,
                  cache_dir=tmp_path / "cache")
    binary = Omniglot(**kwargs)
    smooth = Omniglot(interpolation="area", **kwargs)
    assert set(np.unique(binary.pools["test"].images)) <= {0, 255}
    assert len(np.unique(smooth.pools["test"].images)) > 2  # anti-aliased grey levels
    config = smooth.get_config()
    assert config["interpolation"] == "area"
    assert {p["interpolation"] for p in config["pools"].values()} == {"area"}
    recorded = {k: config[k] for k in ("split", "train_subset", "image_size", "interpolation",
                                       "seed")}
    assert Omniglot(**{**kwargs, **recorded}).get_config() == config  # the config rebuilds it


def test_unknown_interpolation_is_named(root, tmp_path):
    with pytest.raises(ValueError, match="`interpolation` must be one of"):
        Omniglot(interpolation="cubic", root=root, cache_dir=tmp_path / "cache")
