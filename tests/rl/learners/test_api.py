"""The public API of keras_meta.rl.learners."""

from keras_meta.rl import learners


def test_all_exports_exist():
    assert learners.__all__
    for name in learners.__all__:
        assert getattr(learners, name) is not None, name
    public = {n for n in dir(learners) if not n.startswith("_")}
    assert set(learners.__all__) <= public
