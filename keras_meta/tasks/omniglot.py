"""Omniglot few-shot classification tasks (Lake et al. 2015) with named, standard splits."""

from __future__ import annotations

from keras_meta.datasets import load_omniglot
from keras_meta.tasks.image_classes import ImageClassTasks


class Omniglot(ImageClassTasks):
    """N-way K-shot Omniglot episodes.

    Args:
        ways, shots, queries: episode shape.
        split: ``"vinyals"`` (Vinyals et al. 2016 split files: 4112 train / 688 val / 1692 test
            rotation classes; ProtoNets and most later work) or ``"maml"`` (the MAML code's
            random character split: 1100/100/423 characters x 4 rotations).
        train_subset: ``"train"`` or ``"trainval"`` (ProtoNets' final models train on
            train+val, 4800 classes; there is then no validation split).
        image_size: side of the square images (28 in the papers).
        interpolation: resize filter of `keras_meta.datasets.load_omniglot`: ``"nearest"``
            (binary images, as the reference ProtoNets and MAML code produce) or an
            anti-aliasing one such as ``"area"`` or ``"lanczos"`` (grey levels).
        root: a folder with ``images_background.zip``, ``images_evaluation.zip`` (and
            ``splits/``); default the copy shipped with keras-meta.
        seed: seed of the ``"maml"`` character split.
        augment, max_shift: training-split augmentation, see `ImageClassTasks`.
    """

    def __init__(self, ways: int = 5, shots: int = 1, queries: int = 15, *,
                 split: str = "vinyals", train_subset: str = "train", image_size: int = 28,
                 interpolation: str = "nearest", root=None, cache_dir=None, seed: int = 0,
                 augment=None, max_shift: int = 2):
        if train_subset not in ("train", "trainval"):
            raise ValueError("`train_subset` must be 'train' or 'trainval'. "
                             f"Received: {train_subset!r}")
        kwargs = dict(split=split, image_size=image_size, interpolation=interpolation,
                      root=root, cache_dir=cache_dir, seed=seed)
        pools = {"train": load_omniglot(subset=train_subset, **kwargs),
                 "test": load_omniglot(subset="test", **kwargs)}
        if train_subset == "train":
            pools["val"] = load_omniglot(subset="val", **kwargs)
        super().__init__(pools, ways, shots, queries, augment=augment, max_shift=max_shift,
                         name=f"omniglot-{split}")
        self.split_name, self.train_subset = split, train_subset
        self.image_size, self.interpolation, self.seed = image_size, interpolation, seed

    def get_config(self) -> dict:
        return {**super().get_config(), "split": self.split_name,
                "train_subset": self.train_subset, "image_size": self.image_size,
                "interpolation": self.interpolation, "seed": self.seed}
