"""Image files through Pillow: read any PNG / JPEG / WebP as RGB, write PNGs, sample grids."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from models.pixels import to_uint8

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


class ImageFileError(ValueError):
    """An image file Pillow cannot decode; the message names it."""


def write_png(path: Path | str, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB or (H, W, 1) grey array as an 8-bit PNG."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected (H, W, 3) or (H, W, 1) uint8, got {image.shape} {image.dtype}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    picture.save(path, format="PNG", compress_level=6)


def decode_image(data: bytes, *, name: str) -> np.ndarray:
    """Encoded bytes (PNG, JPEG, WebP, ...) -> (H, W, 3) uint8 RGB; alpha and palettes dropped."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()  # decode fully here, so a truncated file fails here, named
            return np.asarray(picture.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageFileError(f"{name}: not a readable image ({exc})") from exc


def read_image(path: Path | str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageFileError(f"{path}: {exc.strerror or exc}") from exc
    return decode_image(data, name=str(path))


def grid_of(pictures: np.ndarray, *, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """(B, H, W, 3) uint8 -> one (rows*H, columns*W, 3) picture with black gaps."""
    b, h, w, _ = pictures.shape
    cols = columns or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.uint8)
    for i in range(b):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = pictures[i]
    return grid


def make_grid(images: Tensor, *, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> one grid picture, as grid_of."""
    return grid_of(to_uint8(images), columns=columns, pad=pad)
