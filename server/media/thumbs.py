"""Keyframe thumbnails: small pictures of each stored keyframe for the control page.

The render thread draws one thumbnail per frame when a keyframe is stored or
reshuffled (and for every keyframe after a start or a model switch) and puts
its pixels here; the HTTP handler encodes JPEG off the event loop, once per
version.
"""

from __future__ import annotations

import io
import threading

import numpy as np

SIZE = 96  # pixels a side: a pad on a phone is smaller than this
QUALITY = 80


class Thumbnails:
    """Keyframe number -> (version, RGB pixels); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pixels: dict[int, tuple[int, np.ndarray]] = {}
        self._jpeg: dict[int, tuple[int, bytes]] = {}
        self._version = 0

    def put(self, n: int, rgb: np.ndarray) -> int:
        """Store keyframe n's picture (H, W, 3) uint8; its new version."""
        with self._lock:
            self._version += 1
            self._pixels[n] = (self._version, rgb)
            return self._version

    def version(self, n: int) -> int:
        """The version of keyframe n's thumbnail, 0 before the first."""
        with self._lock:
            entry = self._pixels.get(n)
            return 0 if entry is None else entry[0]

    def jpeg(self, n: int) -> tuple[int, bytes] | None:
        """(version, JPEG bytes) of keyframe n, encoded once per version (blocking)."""
        with self._lock:
            entry = self._pixels.get(n)
            cached = self._jpeg.get(n)
        if entry is None:
            return None
        version, rgb = entry
        if cached is not None and cached[0] == version:
            return cached
        from PIL import Image

        out = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(out, "JPEG", quality=QUALITY)
        encoded = (version, out.getvalue())
        with self._lock:
            self._jpeg[n] = encoded
        return encoded
