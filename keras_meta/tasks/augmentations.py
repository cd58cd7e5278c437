"""Training-split image augmentations for episode samplers: stateless, seeded, batched.

An augmentation maps the ``[n, h, w, c]`` float images of one episode and a stateless seed to
images of the same shape, so an episode stays a pure function of its seed (pipelines resume
exactly). Each decides whether it draws one transform per episode or one per image. Samplers
take them by name (``"shift"``), by config (``{"name": "affine", "rotation": 10}``, as in a
YAML config) or as objects.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import tensorflow as tf

from keras_meta._validation import check_float, check_int


class Augmentation:
    """Base class: ``augmentation(images, seed) -> images``, with ``name`` and ``get_config``."""

    name = ""

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def check(self, image_shape: Sequence[int]) -> None:
        """Raises ValueError if this augmentation cannot apply to images of this shape."""

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.get_config().items())))


class Rotate90(Augmentation):
    """Rotates all images of an episode by one random multiple of 90 degrees: new classes for
    the episode, as Omniglot's rotation classes are."""

    name = "rotate90"

    def __call__(self, images, seed):
        turns = tf.random.stateless_uniform([], seed, 0, 4, dtype=tf.int32)
        return tf.image.rot90(images, turns)


class Shift(Augmentation):
    """Translates each image by its own whole-pixel offset in ``[-max_shift, max_shift]`` per
    axis, mirroring the border (background stays background).

    Args:
        max_shift: largest translation in pixels.
    """

    name = "shift"

    def __init__(self, max_shift: int = 2):
        self.max_shift = check_int("max_shift", max_shift, 1)

    def check(self, image_shape):
        _check_below_side("max_shift", self.max_shift, image_shape)

    def __call__(self, images, seed):
        n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
        m = self.max_shift
        padded = tf.pad(images, [[0, 0], [m, m], [m, m], [0, 0]], mode="SYMMETRIC")
        start = tf.random.stateless_uniform([n, 2], seed, 0, 2 * m + 1, dtype=tf.int32)
        rows = start[:, :1] + tf.range(h)[None]  # [n, h]
        cols = start[:, 1:] + tf.range(w)[None]  # [n, w]
        x = tf.gather(padded, rows, axis=1, batch_dims=1)  # [n, h, w + 2m, c]
        return tf.gather(x, cols, axis=2, batch_dims=1)

    def get_config(self):
        return {"name": self.name, "max_shift": self.max_shift}


class Affine(Augmentation):
    """A random affine distortion per image about its centre, bilinearly resampled, edges
    extended: rotation, isotropic scaling, shear and sub-pixel translation, each drawn
    uniformly (the distortions of Koch et al.'s one-shot Omniglot work).

    Args:
        rotation: largest rotation, in degrees (each way).
        scale: largest relative change of size: scales drawn in ``[1 - scale, 1 + scale]``.
        shear: largest shear factor (each way, along the rows).
        translation: largest translation in pixels per axis (each way).
    """

    name = "affine"

    def __init__(self, rotation: float = 10.0, scale: float = 0.1, shear: float = 0.0,
                 translation: float = 0.0):
        self.rotation = check_float("rotation", rotation, 0.0, 180.0)
        self.scale = check_float("scale", scale, 0.0, 0.5)
        self.shear = check_float("shear", shear, 0.0, 1.0)
        self.translation = check_float("translation", translation, 0.0)

    def check(self, image_shape):
        _check_below_side("translation", self.translation, image_shape)

    def __call__(self, images, seed):
        n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
        u = tf.random.stateless_uniform([5, n], seed, -1.0, 1.0)
        angle = u[0] * self.rotation * math.pi / 180.0
        size = 1.0 + u[1] * self.scale
        shear = u[2] * self.shear
        tx, ty = u[3] * self.translation, u[4] * self.translation
        # Forward map A = rotation @ shear @ size; the op wants output -> input coordinates,
        # so the inverse, about the image centre c: input = A^-1 (output - c - t) + c.
        cos, sin = tf.cos(angle), tf.sin(angle)
        a, b = cos * size, (cos * shear - sin) * size
        c, d = sin * size, (sin * shear + cos) * size
        det = a * d - b * c
        m00, m01, m10, m11 = d / det, -b / det, -c / det, a / det
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        transforms = tf.stack([
            m00, m01, cx - m00 * (cx + tx) - m01 * (cy + ty),
            m10, m11, cy - m10 * (cx + tx) - m11 * (cy + ty),
            tf.zeros_like(m00), tf.zeros_like(m00)], axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.constant([h, w]),
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")

    def get_config(self):
        return {"name": self.name, "rotation": self.rotation, "scale": self.scale,
                "shear": self.shear, "translation": self.translation}


def _check_below_side(name: str, value: float, image_shape: Sequence[int]) -> None:
    side = min(image_shape[:2])
    if value >= side:
        raise ValueError(f"`{name}` must be smaller than the images' side {side}. "
                         f"Received: {name}={value}")


AUGMENTATIONS = {cls.name: cls for cls in (Rotate90, Shift, Affine)}


def get(identifier, **defaults) -> Augmentation:
    """An augmentation from a name, a config dict (``{"name": ..., **arguments}``) or an
    `Augmentation` (returned as is). `defaults` are arguments for a bare name (e.g. a
    sampler's ``max_shift`` for ``"shift"``) that the class accepts."""
    if isinstance(identifier, Augmentation):
        return identifier
    if isinstance(identifier, str):
        name, arguments = identifier, {}
    elif isinstance(identifier, Mapping) and "name" in identifier:
        name = identifier["name"]
        arguments = {k: v for k, v in identifier.items() if k != "name"}
    else:
        name, arguments = None, {}
    if not isinstance(name, str) or name not in AUGMENTATIONS:
        raise ValueError(f"`augment` entries must be one of {sorted(AUGMENTATIONS)}, a config "
                         f"dict with such a 'name', or an Augmentation. Received: {identifier!r}")
    cls = AUGMENTATIONS[name]
    if isinstance(identifier, str):
        accepted = inspect.signature(cls).parameters
        arguments = {k: v for k, v in defaults.items() if k in accepted}
    try:
        return cls(**arguments)
    except TypeError as e:
        raise ValueError(f"Bad arguments for augmentation {name!r}: {e}. "
                         f"Received: {identifier!r}") from None


def get_list(augment, **defaults) -> tuple[Augmentation, ...]:
    """`get` over None, one identifier, or a list of them (applied in order)."""
    if augment is None:
        return ()
    if isinstance(augment, (str, Mapping, Augmentation)):
        augment = [augment]
    elif not isinstance(augment, Sequence):
        raise ValueError("`augment` must be None, an augmentation (name, config dict or "
                         f"Augmentation) or a list of them. Received: {augment!r}")
    return tuple(get(a, **defaults) for a in augment)
