"""PNG writing with zlib and struct (no Pillow), and image grids."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def write_png(path: Path | str, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB or (H, W, 1) grey array as an 8-bit PNG."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected (H, W, 3) or (H, W, 1) uint8, got {image.shape} {image.dtype}")
    h, w, channels = image.shape
    colour_type = 2 if channels == 3 else 0  # PNG: 2 = RGB, 0 = greyscale
    rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * channels)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
    png += chunk(b"IEND", b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(png)


def to_uint8(images: Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: Tensor, *, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> one (rows*H, columns*W, 3) uint8 picture with black gaps."""
    pictures = to_uint8(images)
    b, h, w, _ = pictures.shape
    cols = columns or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.uint8)
    for i in range(b):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = pictures[i]
    return grid
