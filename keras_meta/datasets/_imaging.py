"""Private helpers shared by the image loaders: argument parsing and decoding."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image

INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "area": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}

COLOR_MODES: dict[str, tuple[str, int]] = {"grayscale": ("L", 1), "rgb": ("RGB", 3)}


def parse_image_size(
    image_size: int | Sequence[int] | None, *, allow_none: bool = False
) -> tuple[int, int] | None:
    """Normalizes `image_size` (int or (H, W)) to an `(H, W)` tuple.

    Raises:
        ValueError: if it is not a positive int or a pair of positive ints.
    """
    if image_size is None and allow_none:
        return None
    if isinstance(image_size, int | np.integer) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, Sequence)
        and len(image_size) == 2
        and all(
            isinstance(v, int | np.integer) and not isinstance(v, bool)
            for v in image_size
        )
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(
            "`image_size` must be a positive int or a (height, width) pair of "
            f"positive ints{' or None' if allow_none else ''}. "
            f"Received: image_size={image_size!r}"
        )
    if min(size) < 1:
        raise ValueError(
            "`image_size` must be positive. " f"Received: image_size={image_size!r}"
        )
    return size


def parse_interpolation(interpolation: str) -> Image.Resampling:
    """Maps an interpolation name to a PIL resampling filter.

    Raises:
        ValueError: for an unknown name.
    """
    if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {sorted(INTERPOLATIONS)}. "
            f"Received: interpolation={interpolation!r}"
        )
    return INTERPOLATIONS[interpolation]


def parse_color_mode(color_mode: str) -> tuple[str, int]:
    """Maps a color mode name to (PIL mode, channels).

    Raises:
        ValueError: for an unknown name.
    """
    if not isinstance(color_mode, str) or color_mode not in COLOR_MODES:
        raise ValueError(
            f"`color_mode` must be one of {sorted(COLOR_MODES)}. "
            f"Received: color_mode={color_mode!r}"
        )
    return COLOR_MODES[color_mode]


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composites images with transparency onto a white background."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image
    with warnings.catch_warnings():
        # PIL warns about palette transparency given as bytes; converting to
        # RGBA is exactly what it recommends.
        warnings.simplefilter("ignore")
        rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_8_bit(image: Image.Image) -> Image.Image:
    """Scales 16-bit grayscale images to 8 bits (PIL's own conversion clips)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        array = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        return Image.fromarray(((array * 255 + 32767) // 65535).astype(np.uint8), "L")
    return image


def decode_image(
    data: bytes,
    *,
    size: tuple[int, int] | None,
    pil_mode: str,
    resample: Image.Resampling,
    invert: bool = False,
) -> np.ndarray:
    """Decodes encoded image bytes to a uint8 array of shape `[H, W, C]`.

    The image is converted to `pil_mode` ("L" or "RGB") and then resized to
    `size` = (height, width) with `resample` (no resize when None or equal).
    With `invert`, pixel values are mapped `v -> 255 - v` after resizing.

    Raises:
        OSError / ValueError / SyntaxError (from PIL): if the bytes are not a
            decodable image. Callers wrap these with the file name.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode == "1" and resample == Image.Resampling.NEAREST:
            # Resizing the 1-bit image directly is exact and cheaper.
            if size is not None and (image.height, image.width) != size:
                image = image.resize((size[1], size[0]), resample)
            image = image.convert(pil_mode)
        else:
            image = _flatten_alpha(_to_8_bit(image)).convert(pil_mode)
            if size is not None and (image.height, image.width) != size:
                image = image.resize((size[1], size[0]), resample)
        array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if invert:
        array = 255 - array
    return np.ascontiguousarray(array)
