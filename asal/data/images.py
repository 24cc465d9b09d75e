"""Decoding one image file or encoded buffer into a uint8 array: what imagefolder, CelebA and LSUN share."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BadData


def decode_image(source: str | Path | bytes, *, channels: int, size: list[int] | None, where: str) -> np.ndarray:
    """One image as uint8 (H, W, C): converted to grayscale (``channels`` 1) or RGB (3), and, when ``size`` is
    ``[height, width]``, centre-cropped to that aspect ratio and resized (``ImageOps.fit``, bicubic).

    ``source`` is a file path or the encoded bytes (JPEG, PNG, WebP); ``where`` names it in errors.
    """
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if size:
                img = ImageOps.fit(img, (size[1], size[0]))
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadData(f"{where}: not a readable image ({type(exc).__name__}: {exc})") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def to_nchw(images: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """A list or stack of (H, W, C) uint8 images as one contiguous (N, C, H, W) array."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
