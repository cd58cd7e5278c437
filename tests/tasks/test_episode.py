import numpy as np
import pytest

from keras_meta.tasks import Episode, EpisodeSpec, validate_episode

SPEC = EpisodeSpec(x_shape=(4,), support_size=6, query_size=9, num_classes=3)


def classification_batch(tasks=2):
    rng = np.random.default_rng(0)
    return Episode(
        rng.normal(size=(tasks, 6, 4)).astype("float32"),
        np.tile(np.arange(3).repeat(2), (tasks, 1)).astype("int32"),
        rng.normal(size=(tasks, 9, 4)).astype("float32"),
        np.tile(np.arange(3).repeat(3), (tasks, 1)).astype("int32"),
    )


def test_valid_batch_passes_and_keras_layout():
    ep = validate_episode(classification_batch(), SPEC)
    inputs, y = ep.as_keras()
    assert set(inputs) == {"support_x", "support_y", "query_x"}
    assert y.shape == (2, 9)


def test_accepts_keras_pair():
    ep = classification_batch()
    assert validate_episode(ep.as_keras(), SPEC).query_y.shape == (2, 9)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("support_x", np.zeros((2, 6, 5), "float32"), "must have the same feature shape"),
        ("query_y", np.full((2, 9), 3, "int32"), r"labels outside \[0, 3\)"),
        ("support_y", np.full((2, 6), -1, "int32"), r"labels outside \[0, 3\)"),
        ("support_y", np.zeros((2, 5), "int32"), "same number of examples"),
        ("query_x", np.zeros((3, 9, 4), "float32"), "same number of tasks"),
        ("support_y", np.zeros((2, 6), "float32"), "integer class labels"),
        ("query_x", np.zeros((2,), "float32"), "rank >= 2"),
    ],
)
def test_bad_fields_are_named(field, value, message):
    ep = classification_batch()._replace(**{field: value})
    with pytest.raises(ValueError, match=message):
        validate_episode(ep, SPEC)


def test_nan_input_is_reported_with_its_position():
    ep = classification_batch()
    ep.query_x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"`query_x` contains NaN.*\(1, 2, 3\)"):
        validate_episode(ep, SPEC)


def test_shape_against_spec():
    ep = classification_batch()
    spec = EpisodeSpec(x_shape=(4,), support_size=5, query_size=9, num_classes=3)
    with pytest.raises(ValueError, match=r"`support_x` has the wrong shape.*\[tasks, 5, 4\]"):
        validate_episode(ep, spec)


def test_spec_rejects_bad_arguments():
    with pytest.raises(ValueError, match="support_size"):
        EpisodeSpec(x_shape=(1,), support_size=0, query_size=1)
    with pytest.raises(ValueError, match="num_classes"):
        EpisodeSpec(x_shape=(1,), support_size=1, query_size=1, num_classes=1)


def test_unbatched_episode():
    ep = Episode(*(a[0] for a in classification_batch()))
    assert validate_episode(ep, SPEC, batched=False).support_x.shape == (6, 4)


def test_episode_dataset_validates_at_the_boundary_and_trains():
    import keras

    from keras_meta import learners
    from keras_meta.tasks import episode_dataset

    ep = classification_batch(tasks=6)
    ds = episode_dataset(ep, 2, SPEC, repeat=True)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    learner = learners.MAML(net, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.compile("adam")
    learner.fit(ds, steps_per_epoch=3, verbose=0)
    bad = ep._replace(query_y=np.full((6, 9), 5, "int32"))
    with pytest.raises(ValueError, match="query_y"):
        episode_dataset(bad, 2, SPEC)
    with pytest.raises(ValueError, match="fewer than meta_batch_size"):
        episode_dataset(ep, 7, SPEC)
