"""Procedural VJ footage (plasma fields) written to mp4: training data anyone can rebuild."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from models.progress import Progress

logger = logging.getLogger(__name__)

SCENES = ("plasma", "plasma-pairs")


@dataclass(frozen=True)
class ProceduralConfig:
    """What to render: scene, size, length, frame rate, seed."""

    scene: str = "plasma"  # "plasma" or "plasma-pairs" (grey field | coloured, side by side)
    size: int = 256  # side of one square picture
    seconds: float = 120.0
    fps: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise ValueError(f"unknown scene {self.scene!r} (expected one of {', '.join(SCENES)})")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number >= 16, got {self.size}")
        if self.seconds <= 0 or self.fps < 1:
            raise ValueError("seconds and fps must be positive")


def plasma_field(t: float, size: int, seed: int = 0) -> np.ndarray:
    """A smooth scalar field in [-1, 1] at time t: a sum of moving sinusoids. (size, size)."""
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(2.0, 6.0, size=4)
    speeds = rng.uniform(0.3, 0.9, size=4)
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    x, y = np.meshgrid(axis, axis)
    zoom = 1.0 + 0.6 * math.sin(0.11 * t)  # slow breathing zoom
    x, y = x * zoom, y * zoom
    cx, cy = 0.6 * math.sin(0.37 * t), 0.6 * math.cos(0.23 * t)
    angle = 0.2 * t
    v = np.sin(freqs[0] * x + speeds[0] * 3 * t)
    v += np.sin(freqs[1] * (x * math.sin(angle) + y * math.cos(angle)) + speeds[1] * 2 * t)
    v += np.sin(freqs[2] * 2 * np.sqrt((x - cx) ** 2 + (y - cy) ** 2) - speeds[2] * 4 * t)
    v += np.sin(freqs[3] * y * (1 + 0.5 * math.sin(0.3 * t)) - speeds[3] * 2 * t)
    return (v / 4.0).astype(np.float32)


def palette(v: np.ndarray, phase: float) -> np.ndarray:
    """Cosine rainbow palette shifted by phase: field (H, W) in [-1, 1] -> RGB (H, W, 3)."""
    d = np.array([0.0, 0.33, 0.67], dtype=np.float32) + phase
    u = (v[..., None] * 0.5 + 0.5) * 1.5  # (H, W, 1): 1.5 turns of the palette across the field
    return 0.5 + 0.5 * np.cos(2 * math.pi * (u + d))


def contours(v: np.ndarray, *, levels: float = 6.0, width: float = 0.08) -> np.ndarray:
    """Bright lines on the field's iso-levels: (H, W) -> (H, W) in [0, 1]."""
    frac = np.abs(((v * 0.5 + 0.5) * levels) % 1.0 - 0.5) * 2.0  # 1 on a level, 0 between
    return np.clip((frac - (1.0 - width)) / width, 0.0, 1.0)


def render_frame(config: ProceduralConfig, index: int) -> np.ndarray:
    """One frame as uint8 RGB: (S, S, 3), or (S, 2S, 3) for the side-by-side pairs."""
    t = index / config.fps
    v = plasma_field(t, config.size, config.seed)
    if config.scene == "plasma":
        rgb = palette(v, phase=0.05 * t)
        return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    grey = np.repeat((v * 0.5 + 0.5)[..., None], 3, axis=2)  # the source: the bare field
    lines = contours(v)[..., None]
    coloured = (
        palette(v, phase=0.0) * (1 - lines) + lines
    )  # the target: gradient map + neon contours
    both = np.concatenate([grey, coloured], axis=1)
    return (np.clip(both, 0, 1) * 255).astype(np.uint8)


def write_procedural_video(path: Path, *, config: ProceduralConfig, progress: bool = True) -> int:
    """Render the scene to an H.264 mp4 through PyAV; returns the number of frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = round(config.seconds * config.fps)
    bar = Progress(total=n, desc="render", unit="frames") if progress else None
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=config.fps)
        stream.width = config.size * (2 if config.scene == "plasma-pairs" else 1)
        stream.height = config.size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(render_frame(config, i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            if bar:
                bar.update()
        for packet in stream.encode():
            container.mux(packet)
    if bar:
        bar.close()
    logger.info("wrote %s: %d frames", path, n)
    return n
