"""Datasets: folders of image files an artist can browse, curate and train on.

`ganvj dataset` turns videos into a folder of PNGs (`frame-000000.png`, or
`pair-000000.png` with the source on the left and the target on the right)
plus `dataset.json` saying how it was made. Training reads any folder of PNG,
JPEG or WebP files (mixed sizes are letterboxed or cropped to the square) or
a zip in the layout of NVIDIA's `dataset_tool.py` (with optional labels in its
`dataset.json`). The loaded pictures are cached as a memory-mapped `.npy`
(inside the folder's `.cache/`, beside a zip as `NAME.zip.cache/`), rebuilt
whenever a file is added, changed or deleted. Folders from older versions
(`images.npy` / `pairs.npy`) still load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.framing import FITS, fit_square
from models.images import EXTENSIONS, ImageFileError, decode_image, write_png
from models.resolution import check_resolution

logger = logging.getLogger(__name__)

PAIRINGS = ("none", "side-by-side", "two-videos", "next-frame")


class DatasetError(ValueError):
    """A dataset that cannot be built or read; the message names the file and the problem."""


@dataclass(frozen=True)
class DatasetConfig:
    """How to turn videos into training pictures."""

    size: int = 128  # side of the square pictures in px (models/resolution.py)
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
            check_resolution(self.size)
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
    """A loaded dataset: images (N, R, R, 3) or pairs (N, 2, R, R, 3), uint8.

    With `mirror` the trainers also see every picture flipped left-right:
    row i + N is row i mirrored (`len()` and `take()` count them).
    """

    path: Path
    images: np.ndarray
    paired: bool
    info: dict[str, Any]
    mirror: bool = False
    labels: np.ndarray | None = None  # (N,) int64 class indices or (N, C) float32
    names: tuple[str, ...] = ()  # the file behind each row
    skipped: tuple[str, ...] = ()  # unreadable files left out, by name
    digest: str = ""  # changes whenever the set of pictures changes

    def __len__(self) -> int:
        return self.images.shape[0] * (2 if self.mirror else 1)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 rows for indices in [0, len): (B, [2,] R, R, 3); mirrored rows flipped."""
        n = self.images.shape[0]
        index = index.to(torch.int64).reshape(-1)
        flip = index >= n
        rows = torch.from_numpy(np.asarray(self.images[(index % n).numpy()]))  # a copy
        if bool(flip.any()):
            rows[flip] = rows[flip].flip(-2)  # the width axis of (..., R, R, 3)
        return rows

    @property
    def label_dim(self) -> int:
        """0 unconditional; classes for integer labels, vector length for float ones."""
        if self.labels is None:
            return 0
        if self.labels.ndim == 1:
            return int(self.labels.max()) + 1
        return int(self.labels.shape[1])


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


def frame_name(index: int, *, paired: bool) -> str:
    """File name of a dataset row: frame-000012.png or pair-000012.png."""
    return f"{'pair' if paired else 'frame'}-{index:06d}.png"


def build_dataset(
    inputs: list[Path],
    out: Path,
    *,
    config: DatasetConfig,
    force: bool = False,
    progress: bool = True,
) -> Dataset:
    """Write a folder of PNG frames (or side-by-side pairs) from videos; refuses to overwrite."""
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
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    out.mkdir(parents=True)
    paired = config.pairing != "none"
    bar = tqdm(total=total or None, desc="dataset", unit="frames", disable=not progress)
    kept: list[np.ndarray] = []
    names: list[str] = []
    last: np.ndarray | None = None
    dropped = 0

    def keep(picture: np.ndarray) -> None:
        nonlocal last, dropped
        thumb = thumbnail(picture[0] if paired else picture)
        if last is not None and config.dedup > 0 and np.abs(thumb - last).mean() < config.dedup:
            dropped += 1
            return
        last = thumb
        name = frame_name(len(kept), paired=paired)
        # A pair is one picture, source left and target right: deleting it drops both.
        write_png(out / name, np.concatenate(list(picture), axis=1) if paired else picture)
        kept.append(picture)
        names.append(name)

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
            bar.update()
            if j >= len(wanted):
                break
    else:
        for path in inputs:
            pending: dict[int, np.ndarray] = {}
            sampler = Sampler(config)
            for index, t, img in decode(path, config):
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
    bar.close()
    if not kept:
        shutil.rmtree(out)
        raise DatasetError(f"{', '.join(map(str, inputs))}: no frames in the requested range")
    info = {
        "format": 2,
        "paired": paired,
        "count": len(kept),
        "resolution": config.size,
        "mirror": config.mirror,
        "sources": [str(p) for p in inputs],
        "config": asdict(config),
        "dropped_duplicates": dropped,
    }
    (out / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info(
        "wrote %s: %d %s (%d near-duplicates dropped)",
        out,
        len(kept),
        "pairs" if paired else "frames",
        dropped,
    )
    return Dataset(
        path=out,
        images=np.stack(kept),
        paired=paired,
        info=info,
        mirror=config.mirror,
        names=tuple(names),
        digest=listing_digest([(n, 0, 0) for n in names]),
    )


# ---------------------------------------------------------------- loading


@dataclass
class Source:
    """Where image files come from: a folder or a zip, listed once."""

    path: Path
    entries: list[tuple[str, int, int]]  # (name relative to the root, bytes, mtime or CRC)
    metadata: dict[str, Any] = field(default_factory=dict)  # its dataset.json, if any

    @staticmethod
    def open(path: Path) -> Source:
        """List the image files of a folder (recursively, hidden folders skipped) or a zip."""
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    infos = archive.infolist()
                    entries = [
                        (i.filename, i.file_size, i.CRC)
                        for i in infos
                        if not i.is_dir() and i.filename.lower().endswith(EXTENSIONS)
                    ]
                    meta = {}
                    if "dataset.json" in archive.namelist():
                        meta = parse_json(archive.read("dataset.json"), f"{path}!dataset.json")
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetError(f"{path}: unreadable zip ({exc})") from exc
            return Source(path=path, entries=sorted(entries), metadata=meta)
        if not path.is_dir():
            raise DatasetError(f"{path}: no such folder or zip")
        entries = []
        for file in path.rglob("*"):
            rel = file.relative_to(path)
            if any(part.startswith(".") for part in rel.parts):
                continue  # our .cache, editors' and OSes' hidden files
            if file.suffix.lower() in EXTENSIONS and file.is_file():
                stat = file.stat()
                entries.append((rel.as_posix(), stat.st_size, stat.st_mtime_ns))
        meta = {}
        if (path / "dataset.json").is_file():
            meta = parse_json((path / "dataset.json").read_bytes(), f"{path / 'dataset.json'}")
        return Source(path=path, entries=sorted(entries), metadata=meta)

    @property
    def cache_dir(self) -> Path:
        """Where the memory-mapped cache lives: .cache/ inside a folder, NAME.cache/ by a zip."""
        if self.path.is_dir():
            return self.path / ".cache"
        return self.path.with_name(self.path.name + ".cache")

    def files(self) -> Iterator[tuple[str, bytes]]:
        """(name, encoded bytes) of every listed image, in listing order."""
        if self.path.is_dir():
            for name, _, _ in self.entries:
                try:
                    yield name, (self.path / name).read_bytes()
                except OSError:
                    yield name, b""  # vanished or unreadable: decoding reports it by name
            return
        with zipfile.ZipFile(self.path) as archive:
            for name, _, _ in self.entries:
                try:
                    yield name, archive.read(name)
                except (zipfile.BadZipFile, OSError):
                    yield name, b""


def parse_json(data: bytes, name: str) -> dict[str, Any]:
    """A dataset.json's object, or DatasetError naming the file."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise DatasetError(f"{name}: expected a JSON object")
    return value


def listing_digest(entries: list[tuple[str, int, int]], *extra: object) -> str:
    """A short hash of a file listing (names, sizes, times) and the loading options."""
    text = json.dumps([entries, list(extra)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_labels(metadata: dict[str, Any], names: list[str], where: Path) -> np.ndarray | None:
    """NVIDIA dataset.json labels ([[name, label], ...] or null) for the kept files, in order."""
    raw = metadata.get("labels")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise DatasetError(f"{where}: dataset.json labels must be a list of [file, label]")
    table: dict[str, Any] = {}
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise DatasetError(f"{where}: dataset.json label entries must be [file, label]")
        table[item[0].replace("\\", "/")] = item[1]
    missing = [n for n in names if n not in table]
    if missing:
        raise DatasetError(f"{where}: no label for {missing[0]} ({len(missing)} files unlabelled)")
    values = [table[n] for n in names]
    try:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            labels = np.asarray(values, dtype=np.int64)
            if labels.min() < 0:
                raise DatasetError(f"{where}: class labels must be >= 0")
            return labels
        labels = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: labels must be class indices or equal-length lists") from exc
    if labels.ndim != 2:
        raise DatasetError(f"{where}: labels must be class indices or equal-length lists")
    return labels


def picture_of(image: np.ndarray, *, size: int, fit: str, paired: bool) -> np.ndarray:
    """A decoded file -> (R, R, 3), or (2, R, R, 3) split at half width for a pair."""
    if not paired:
        return fit_square(image, size=size, fit=fit)
    w = image.shape[1] // 2
    if w < 1:
        raise ImageFileError("too narrow for a side-by-side pair")
    return np.stack(
        [
            fit_square(image[:, :w], size=size, fit=fit),
            fit_square(image[:, w : 2 * w], size=size, fit=fit),
        ]
    )


def build_cache(
    source: Source, cache: Path, *, size: int, fit: str, paired: bool, progress: bool
) -> tuple[list[str], list[str]]:
    """Decode every file into a memory-mapped .npy; returns (kept names, skipped names)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    shape = (len(source.entries), *((2,) if paired else ()), size, size, 3)
    partial = cache.with_suffix(".partial.npy")
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
    kept: list[str] = []
    skipped: list[str] = []
    bar = tqdm(total=len(source.entries), desc="cache", unit="images", disable=not progress)
    try:
        for name, data in source.files():
            bar.update()
            try:
                picture = picture_of(
                    decode_image(data, name=name), size=size, fit=fit, paired=paired
                )
            except ImageFileError as exc:
                logger.warning("%s: skipped: %s", source.path / name, exc)
                skipped.append(name)
                continue
            array[len(kept)] = picture
            kept.append(name)
        array.flush()
    finally:
        bar.close()
        del array
    if not kept:
        partial.unlink(missing_ok=True)
        return kept, skipped
    if len(kept) < shape[0]:  # rewrite without the skipped rows' room
        full = np.load(partial, mmap_mode="r")
        np.save(cache, np.ascontiguousarray(full[: len(kept)]), allow_pickle=False)
        del full
        partial.unlink()
    else:
        partial.replace(cache)
    return kept, skipped


def load_dataset(
    path: Path | str,
    *,
    size: int | None = None,
    fit: str = "letterbox",
    paired: bool | None = None,
    progress: bool = False,
) -> Dataset:
    """Open a dataset: a folder of images, a dataset_tool zip, or an older .npy folder.

    `size` is the square side to train at (default: the resolution dataset.json
    names); `paired` reads each file as a side-by-side pair (default: what
    dataset.json says, else unpaired). Unreadable images are skipped and named
    in a warning and in `Dataset.skipped`; a source with no readable image is refused.
    """
    path = Path(path)
    if fit not in FITS:
        raise DatasetError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    if path.is_dir() and any((path / n).is_file() for n in ("images.npy", "pairs.npy")):
        return load_array_dataset(path)
    source = Source.open(path)
    info = source.metadata
    if paired is None:
        paired = bool(info.get("paired", False))
    if size is None:
        size = int(info.get("resolution", 0) or 0)
        if not size:
            raise DatasetError(f"{path}: give a resolution to train at (no dataset.json names one)")
    try:
        check_resolution(size)
    except ValueError as exc:
        raise DatasetError(f"resolution: {exc}") from exc
    if not source.entries:
        raise DatasetError(f"{path}: no images (PNG, JPEG or WebP files) found")
    key = listing_digest(source.entries, size, fit, paired)
    cache = source.cache_dir / f"pictures-{key}.npy"
    index = cache.with_suffix(".json")
    if cache.is_file() and index.is_file():
        listing = json.loads(index.read_text())
        kept, skipped = listing["kept"], listing["skipped"]
        for name in skipped:
            logger.warning("%s: skipped (unreadable, see the first load)", source.path / name)
    else:
        for old in source.cache_dir.glob("pictures-*"):  # the folder changed: drop stale caches
            old.unlink(missing_ok=True)
        kept, skipped = build_cache(
            source, cache, size=size, fit=fit, paired=paired, progress=progress
        )
        if not kept:
            raise DatasetError(
                f"{path}: none of its {len(skipped)} image files could be read "
                f"(first: {skipped[0]})"
            )
        index.write_text(json.dumps({"kept": kept, "skipped": skipped}) + "\n")
    images = np.load(cache, mmap_mode="r", allow_pickle=False)
    labels = parse_labels(info, kept, path)
    return Dataset(
        path=path,
        images=images,
        paired=paired,
        info=info,
        mirror=bool(info.get("mirror", False)) if info.get("format") == 2 else False,
        labels=labels,
        names=tuple(kept),
        skipped=tuple(skipped),
        digest=key,
    )


def load_array_dataset(path: Path) -> Dataset:
    """Read a folder written by older versions: images.npy / pairs.npy plus dataset.json."""
    meta_path = path / "dataset.json"
    if not meta_path.is_file():
        raise DatasetError(f"{path}: not a dataset (no dataset.json)")
    try:
        info = json.loads(meta_path.read_text())
        paired = bool(info["paired"])
        images = np.load(
            path / ("pairs.npy" if paired else "images.npy"), mmap_mode="r", allow_pickle=False
        )
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{path}: unreadable dataset: {exc}") from exc
    want = 5 if paired else 4
    if images.dtype != np.uint8 or images.ndim != want or images.shape[-1] != 3:
        raise DatasetError(f"{path}: unexpected array {images.shape} {images.dtype}")
    # Mirrored copies are already rows of the array in this layout.
    return Dataset(
        path=path, images=images, paired=paired, info=info, digest=f"npy-{images.shape[0]}"
    )
