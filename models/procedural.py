"""Procedural VJ footage (hard-edged shapes, plasma) written to mp4: data anyone can rebuild."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

logger = logging.getLogger(__name__)

SCENES = ("shapes", "plasma", "plasma-pairs")


@dataclass(frozen=True)
class ProceduralConfig:
    """What to render: scene, size, length, frame rate, seed."""

    scene: str = "shapes"  # "shapes", "plasma" or "plasma-pairs" (grey | coloured, side by side)
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
    if config.scene == "shapes":
        return (shapes_frame(t, config.size, config.seed) * 255 + 0.5).astype(np.uint8)
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


# ---------------------------------------------------------------- shapes


def _hsv(h: np.ndarray, s: float, v: float) -> np.ndarray:
    """Hue array (...) in turns -> RGB (..., 3) in [0, 1] at a fixed saturation and value."""
    k = (np.asarray(h)[..., None] * 6.0 + np.array([5.0, 3.0, 1.0])) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _coverage(sdf: np.ndarray, pixel: float) -> np.ndarray:
    """Signed distance (negative inside) -> anti-aliased coverage in [0, 1], one pixel wide."""
    return np.clip(0.5 - sdf / pixel, 0.0, 1.0)


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    return c * x + s * y, -s * x + c * y


def _shape_sdf(kind: int, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed distance to a disc, square, triangle or ring of radius r at the origin."""
    if kind == 0:  # disc
        return np.sqrt(x * x + y * y) - r
    if kind == 1:  # square
        return np.maximum(np.abs(x), np.abs(y)) - r * 0.8
    if kind == 2:  # equilateral triangle (an intersection of three half-planes)
        d = y - r * 0.5
        for a in (2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0):
            d = np.maximum(d, math.sin(a) * x + math.cos(a) * y - r * 0.5)
        return d
    return np.abs(np.sqrt(x * x + y * y) - r * 0.75) - r * 0.25  # ring


def shapes_frame(t: float, size: int, seed: int = 0) -> np.ndarray:
    """Hard-edged shapes over rotating stripes, with dots and outlines: RGB (size, size, 3).

    Motion and detail at three scales: wide stripe bands turning behind,
    a dozen flat-coloured discs, squares, triangles and rings drifting and
    spinning with dark outlines, and a fine dot lattice scrolling inside them.
    """
    rng = np.random.default_rng(seed)
    count = 12
    kinds = rng.integers(0, 4, size=count)
    radii = rng.uniform(0.07, 0.32, size=count)
    hues = rng.uniform(0.0, 1.0, size=count)
    fx, fy = rng.uniform(0.05, 0.25, size=(2, count))
    px, py = rng.uniform(0.0, 2 * math.pi, size=(2, count))
    spins = rng.uniform(-1.2, 1.2, size=count)
    dotted = rng.uniform(size=count) < 0.35
    pixel = 2.0 / size
    axis = (np.arange(size, dtype=np.float32) + 0.5) * pixel - 1.0
    x, y = np.meshgrid(axis, axis)
    hue_shift = 0.02 * t
    # Background: two colours in stripes that turn and slide; wide bands, hard edges.
    u, _ = _rotate(x, y, 0.15 * t + seed)
    wave = np.sin(4.0 * u + 0.9 * np.sin(1.5 * y + 0.4 * t) + 1.3 * t)
    band = _coverage(-wave * 0.25, pixel)[..., None]  # (S, S, 1)
    back_a = _hsv(np.array(0.6 + hue_shift), 0.7, 0.18)
    back_b = _hsv(np.array(0.1 + hue_shift), 0.8, 0.85)
    rgb = back_a * (1 - band) + back_b * band
    # Shapes, far to near (smaller ones drawn last, on top).
    for i in np.argsort(-radii):
        cx = 0.95 * math.sin(2 * math.pi * fx[i] * t + px[i])
        cy = 0.95 * math.sin(2 * math.pi * fy[i] * t * 1.3 + py[i])
        r = float(radii[i]) * (1.0 + 0.25 * math.sin(0.7 * t + px[i]))
        sx, sy = _rotate(x - cx, y - cy, spins[i] * t)
        sdf = _shape_sdf(int(kinds[i]), sx, sy, r)
        outline = _coverage(sdf - 0.018, pixel)[..., None]  # the shape grown by a dark rim
        fill = _coverage(sdf, pixel)[..., None]
        colour = _hsv(np.array(hues[i] + hue_shift), 0.85, 1.0)
        if dotted[i]:  # a fine lattice of dark dots scrolling inside the shape
            cell = 10.0 * pixel  # lattice spacing: ten pixels at any size
            gx = (sx / cell + 2.0 * t) % 1.0 - 0.5
            gy = (sy / cell) % 1.0 - 0.5
            dots = _coverage((np.sqrt(gx * gx + gy * gy) - 0.25) * cell, pixel)
            colour = colour * (1 - 0.8 * dots[..., None])
        rgb = rgb * (1 - outline) + 0.04 * outline
        rgb = rgb * (1 - fill) + colour * fill
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def write_procedural_video(path: Path, *, config: ProceduralConfig, progress: bool = True) -> int:
    """Render the scene to an H.264 mp4 through PyAV; returns the number of frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = round(config.seconds * config.fps)
    bar = tqdm(total=n, desc="render", unit="frames", disable=not progress)
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
            bar.update()
        for packet in stream.encode():
            container.mux(packet)
    bar.close()
    logger.info("wrote %s: %d frames", path, n)
    return n
