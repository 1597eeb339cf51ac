"""Datasets from video: sampled, squared, resized, mirrored, de-duplicated frames (and pairs).

A dataset is a folder: `images.npy` (N, R, R, 3) uint8 for unpaired data, or
`pairs.npy` (N, 2, R, R, 3) uint8 (source, target) for pix2pix, plus
`dataset.json` saying how it was made. Arrays load without pickle.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F

from models.nets.dcgan import check_resolution
from models.progress import Progress

logger = logging.getLogger(__name__)

FITS = ("letterbox", "crop")
PAIRINGS = ("none", "side-by-side", "two-videos", "next-frame")


class DatasetError(ValueError):
    """A dataset that cannot be built or read; the message names the file and the problem."""


@dataclass(frozen=True)
class DatasetConfig:
    """How to turn videos into training pictures."""

    size: int = 128  # power of two
    rate: float | None = None  # frames per second to sample (by timestamp)
    every: int = 1  # or keep every Nth decoded frame (used when rate is None)
    start: float = 0.0  # seconds
    end: float | None = None  # seconds; None = to the end
    fit: str = "letterbox"  # "letterbox" (black bars) or "crop" (centre)
    mirror: bool = True  # add a left-right flipped copy of every picture
    dedup: float = (
        1.0  # drop a frame whose 32x32 colour thumbnail differs from the last kept by less (0..255)
    )
    pairing: str = "none"  # "none" | "side-by-side" | "two-videos" | "next-frame"
    offset: float = 0.0  # two-videos: target time = source time + offset (seconds)
    k: int = 1  # next-frame: pair frame t with frame t + k
    swap: bool = False  # side-by-side: take the right half as the source

    def __post_init__(self) -> None:
        try:
            check_resolution(self.size, low=8, high=1024)
        except ValueError as exc:
            raise DatasetError(f"size: {exc}") from exc
        if self.rate is not None and self.rate <= 0:
            raise DatasetError(f"rate must be positive, got {self.rate}")
        if self.every < 1 or self.k < 1:
            raise DatasetError("every and k must be at least 1")
        if self.fit not in FITS:
            raise DatasetError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.pairing not in PAIRINGS:
            raise DatasetError(
                f"pairing must be one of {', '.join(PAIRINGS)}, got {self.pairing!r}"
            )
        if self.end is not None and self.end <= self.start:
            raise DatasetError(f"end ({self.end}) must come after start ({self.start})")


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: images (N, R, R, 3) or pairs (N, 2, R, R, 3), uint8."""

    path: Path
    images: np.ndarray
    paired: bool
    info: dict[str, Any]


def fit_square(image: np.ndarray, *, size: int, fit: str) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, letterboxed with black bars or centre-cropped."""
    h, w, _ = image.shape
    if fit == "crop":
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        square = image[y : y + s, x : x + s]
    else:
        s = max(h, w)
        square = np.zeros((s, s, 3), np.uint8)
        y, x = (s - h) // 2, (s - w) // 2
        square[y : y + h, x : x + w] = image
    if square.shape[0] == size:
        return np.ascontiguousarray(square)
    t = (
        torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1)[None].float()
    )  # (1, 3, S, S)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def open_video(path: Path) -> av.container.InputContainer:
    """Open a file that must hold a video stream, or raise DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a video file ({exc.__class__.__name__})") from exc
    if not container.streams.video:
        container.close()
        raise DatasetError(f"{path}: has no video stream")
    return container


def decode(path: Path, config: DatasetConfig) -> Iterator[tuple[int, float, np.ndarray]]:
    """Every decoded frame in the time range: (index, seconds, (H, W, 3) uint8)."""
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                t = (
                    float(frame.time)
                    if frame.time is not None
                    else index / float(stream.average_rate or 25)
                )
                if config.end is not None and t >= config.end:
                    break
                if t >= config.start:
                    yield index, t, frame.to_ndarray(format="rgb24")
                    index += 1
        except av.FFmpegError as exc:
            raise DatasetError(f"{path}: not a readable video ({exc.__class__.__name__})") from exc
    finally:
        container.close()


class Sampler:
    """The rate or every-Nth rule, applied one decoded frame at a time."""

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config
        self.next_t = config.start

    def __call__(self, index: int, t: float) -> bool:
        if self.config.rate is None:
            return index % self.config.every == 0
        if t + 1e-6 < self.next_t:
            return False
        step = 1.0 / self.config.rate
        while self.next_t <= t + 1e-6:
            self.next_t += step
        return True


def sampled(path: Path, config: DatasetConfig) -> Iterator[tuple[int, float, np.ndarray]]:
    """The frames kept by the rate or every-Nth rule."""
    sampler = Sampler(config)
    for index, t, image in decode(path, config):
        if sampler(index, t):
            yield index, t, image


def frame_count(path: Path) -> int:
    """Frames the container claims (0 when unknown), for the progress bar."""
    container = open_video(path)
    try:
        return int(container.streams.video[0].frames or 0)
    finally:
        container.close()


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A 32x32 colour thumbnail for near-duplicate checks: (3, 32, 32) float."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return F.adaptive_avg_pool2d(t, 32)[0].numpy()


def build_dataset(
    inputs: list[Path],
    out: Path,
    *,
    config: DatasetConfig,
    force: bool = False,
    progress: bool = True,
) -> Dataset:
    """Build a dataset folder from videos; refuses to overwrite one unless force."""
    inputs = [Path(p) for p in inputs]
    out = Path(out)
    if not inputs:
        raise DatasetError("no input videos given")
    if out.exists() and not force:
        raise DatasetError(f"{out}: already exists (use --force to overwrite)")
    if config.pairing == "two-videos" and len(inputs) != 2:
        raise DatasetError(f"pairing two-videos needs exactly two videos, got {len(inputs)}")
    for path in inputs:
        open_video(path).close()  # fail early, naming the file
    total = sum(frame_count(p) for p in inputs)
    bar = Progress(total=total, desc="dataset", unit="frames") if progress else None
    kept: list[np.ndarray] = []
    last: np.ndarray | None = None
    dropped = 0

    def keep(picture: np.ndarray) -> None:
        nonlocal last, dropped
        thumb = thumbnail(picture[0] if config.pairing != "none" else picture)
        if last is not None and config.dedup > 0 and np.abs(thumb - last).mean() < config.dedup:
            dropped += 1
            return
        last = thumb
        kept.append(picture)

    def square(image: np.ndarray) -> np.ndarray:
        return fit_square(image, size=config.size, fit=config.fit)

    if config.pairing == "two-videos":
        wanted: list[tuple[float, np.ndarray]] = [
            (t + config.offset, square(img)) for _, t, img in sampled(inputs[0], config)
        ]
        shifted = DatasetConfig(
            **{**asdict(config), "start": max(0.0, config.start + config.offset), "end": None}
        )
        j = 0
        previous: tuple[float, np.ndarray] | None = None
        for _, t, img in decode(inputs[1], shifted):
            while j < len(wanted) and wanted[j][0] < 0:
                j += 1
            while j < len(wanted) and wanted[j][0] <= t + 1e-6:
                choice = img
                if previous is not None and abs(previous[0] - wanted[j][0]) < abs(t - wanted[j][0]):
                    choice = previous[1]
                keep(np.stack([wanted[j][1], square(choice)]))
                j += 1
            previous = (t, img)
            if bar:
                bar.update()
            if j >= len(wanted):
                break
    else:
        for path in inputs:
            pending: dict[int, np.ndarray] = {}
            sampler = Sampler(config)
            for index, t, img in decode(path, config):
                if bar:
                    bar.update()
                if config.pairing == "next-frame":
                    if index in pending:
                        keep(np.stack([pending.pop(index), square(img)]))
                    if sampler(index, t):
                        pending[index + config.k] = square(img)
                    continue
                if not sampler(index, t):
                    continue
                if config.pairing == "side-by-side":
                    w = img.shape[1] // 2
                    left, right = square(img[:, :w]), square(img[:, w : 2 * w])
                    keep(np.stack([right, left] if config.swap else [left, right]))
                else:
                    keep(square(img))
    if bar:
        bar.close()
    if not kept:
        raise DatasetError(f"{', '.join(map(str, inputs))}: no frames in the requested range")
    array = np.stack(kept)  # (N, R, R, 3) or (N, 2, R, R, 3)
    if config.mirror:
        array = np.concatenate([array, array[..., ::-1, :]], axis=0)
    paired = config.pairing != "none"
    info = {
        "format": 1,
        "paired": paired,
        "count": int(array.shape[0]),
        "resolution": config.size,
        "sources": [str(p) for p in inputs],
        "config": asdict(config),
        "dropped_duplicates": dropped,
    }
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    out.mkdir(parents=True)
    np.save(
        out / ("pairs.npy" if paired else "images.npy"),
        np.ascontiguousarray(array),
        allow_pickle=False,
    )
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info("wrote %s: %d pictures (%d near-duplicates dropped)", out, array.shape[0], dropped)
    return Dataset(path=out, images=array, paired=paired, info=info)


def load_dataset(path: Path | str) -> Dataset:
    """Read a dataset folder written by build_dataset."""
    path = Path(path)
    meta_path = path / "dataset.json"
    if not meta_path.is_file():
        raise DatasetError(f"{path}: not a dataset (no dataset.json)")
    try:
        info = json.loads(meta_path.read_text())
        paired = bool(info["paired"])
        images = np.load(path / ("pairs.npy" if paired else "images.npy"), allow_pickle=False)
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{path}: unreadable dataset: {exc}") from exc
    want = 5 if paired else 4
    if images.dtype != np.uint8 or images.ndim != want or images.shape[-1] != 3:
        raise DatasetError(f"{path}: unexpected array {images.shape} {images.dtype}")
    return Dataset(path=path, images=images, paired=paired, info=info)
