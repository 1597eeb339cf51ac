"""PNG writing (decoded back by hand) and the progress bar's text."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from models.png import make_grid, write_png
from models.progress import Progress, format_seconds


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB PNG with filter type 0 on every row."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat, width, height = 8, b"", 0, 0
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        tag, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + n]
        assert struct.unpack(">I", data[i + 8 + n : i + 12 + n])[0] == zlib.crc32(tag + body)
        if tag == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif tag == b"IDAT":
            idat += body
        i += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width * 3 + 1)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, 3)


def test_png_round_trip(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", image)
    assert np.array_equal(read_png(tmp_path / "a.png"), image)


def test_grid_layout() -> None:
    images = torch.stack([torch.full((3, 4, 4), v) for v in (-1.0, 1.0, 0.0)])
    grid = make_grid(images, columns=2, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert grid[1, 1].tolist() == [0, 0, 0] and grid[1, 6].tolist() == [255, 255, 255]
    assert grid[6, 1].tolist() == [128, 128, 128]
    assert grid[0].max() == 0  # padding is black


def test_progress_line_counts_and_eta() -> None:
    stream = io.StringIO()
    bar = Progress(total=10, desc="train", unit="steps", stream=stream, interval=0.0)
    bar.update(5, postfix="loss=1.0")
    bar.close()
    text = stream.getvalue()
    assert "train [" in text and "5/10" in text and "loss=1.0" in text
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "01:05"
