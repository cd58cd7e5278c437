"""Few-shot episodes from a user's own folder of class folders of images."""

from __future__ import annotations

from keras_meta.datasets import load_image_folder, split_classes
from keras_meta.tasks.image_classes import ImageClassTasks


class ImageFolder(ImageClassTasks):
    """N-way K-shot episodes from ``path/<class>/<image>`` folders (PNG/JPEG, any size or mode).

    Classes are split between train/val/test (class-level: no class appears in two splits).

    Args:
        path: the root folder.
        ways, shots, queries: episode shape; every class needs ``shots + queries`` images.
        splits: fractions such as ``(0.7, 0.15, 0.15)``, or ``{"train": [...], "test": [...]}``
            lists of class names (see `keras_meta.datasets.split_classes`).
        image_size: resize to this (int or ``(height, width)``).
        color_mode: ``"grayscale"`` or ``"rgb"``.
        interpolation: resize filter (``"bilinear"``, ``"nearest"``, ``"area"``, ...; see
            `keras_meta.datasets.load_image_folder`).
        seed: seed of a fractional class split.
        augment, max_shift: training-split augmentation, see `ImageClassTasks`.
    """

    def __init__(self, path, ways: int = 5, shots: int = 1, queries: int = 15, *,
                 splits=(0.7, 0.15, 0.15), image_size=84, color_mode: str = "rgb",
                 interpolation: str = "bilinear", seed: int = 0, augment=None,
                 max_shift: int = 2):
        pool = load_image_folder(path, image_size=image_size, color_mode=color_mode,
                                 min_images_per_class=shots + queries,
                                 interpolation=interpolation)
        super().__init__(split_classes(pool, splits, seed=seed), ways, shots, queries,
                         augment=augment, max_shift=max_shift, name=f"image-folder:{path}")
