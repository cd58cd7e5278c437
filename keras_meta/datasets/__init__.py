"""Image data for few-shot classification: Omniglot and user folders.

Everything here is numpy + PIL (no TensorFlow), so it imports fast anywhere.
"""

from keras_meta.datasets.class_images import ClassImages
from keras_meta.datasets.image_folder import IMAGE_EXTENSIONS, load_image_folder
from keras_meta.datasets.omniglot import (
    OMNIGLOT_ROTATIONS,
    OMNIGLOT_SPLITS,
    OMNIGLOT_SUBSETS,
    load_omniglot,
    omniglot_root,
)
from keras_meta.datasets.splits import split_classes

__all__ = [
    "IMAGE_EXTENSIONS",
    "OMNIGLOT_ROTATIONS",
    "OMNIGLOT_SPLITS",
    "OMNIGLOT_SUBSETS",
    "ClassImages",
    "load_image_folder",
    "load_omniglot",
    "omniglot_root",
    "split_classes",
]
