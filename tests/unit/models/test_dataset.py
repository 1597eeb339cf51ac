"""Datasets from a real (synthetic) video written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from models.dataset import DatasetConfig, DatasetError, build_dataset, load_dataset

FPS = 10
FRAMES = 20
W, H = 64, 32


def level(i: int) -> int:
    """Grey level of frame i's left half."""
    return 10 + 12 * i


def write_video(path: Path, *, frames: int = FRAMES, repeat: int = 1) -> Path:
    """A 64x32 video: left half grey 10 + 12 i, right half mid grey; each frame `repeat` times."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "0"}
        for i in range(frames):
            image = np.full((H, W, 3), 128, np.uint8)
            image[:, : W // 2] = level(i)
            for _ in range(repeat):
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def index_of(picture: np.ndarray) -> int:
    """Recover the frame index from the left quarter of a square picture."""
    s = picture.shape[1]
    middle = picture[s // 2 - 1 : s // 2 + 1, : s // 4].mean()
    return round((middle - 10) / 12)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def build(video: Path, out: Path, **kw: object) -> np.ndarray:
    defaults: dict[str, object] = {"size": 16, "mirror": False, "dedup": 0.0}
    config = DatasetConfig(**{**defaults, **kw})  # type: ignore[arg-type]
    return build_dataset([video], out, config=config, progress=False).images


def test_frame_counts_by_every_rate_and_range(video: Path, tmp_path: Path) -> None:
    assert build(video, tmp_path / "all").shape == (FRAMES, 16, 16, 3)
    every = build(video, tmp_path / "every", every=3)
    assert [index_of(p) for p in every] == list(range(0, FRAMES, 3))
    rate = build(video, tmp_path / "rate", rate=2.5)  # every 0.4 s = every 4th frame
    assert [index_of(p) for p in rate] == [0, 4, 8, 12, 16]
    ranged = build(video, tmp_path / "range", start=0.5, end=1.5)
    assert [index_of(p) for p in ranged] == list(range(5, 15))


def test_letterbox_has_black_bars_and_crop_has_none(video: Path, tmp_path: Path) -> None:
    boxed = build(video, tmp_path / "box", fit="letterbox")
    # A 64x32 frame in a 64x64 square: a quarter of the height black above and below.
    assert boxed[:, :3].max() <= 2 and boxed[:, -3:].max() <= 2
    assert abs(float(boxed[:, 6:10, -4:].mean()) - 128) < 4  # the right half's mid grey
    cropped = build(video, tmp_path / "crop", fit="crop")
    assert cropped.min() >= 8


def test_mirror_doubles_with_flipped_copies(video: Path, tmp_path: Path) -> None:
    images = build(video, tmp_path / "mirror", mirror=True, fit="crop")
    assert images.shape[0] == FRAMES  # the folder holds the frames once ...
    assert len(list((tmp_path / "mirror").glob("frame-*.png"))) == FRAMES
    data = load_dataset(tmp_path / "mirror")
    assert len(data) == 2 * FRAMES  # ... training also sees them flipped
    both = data.take(torch.arange(2 * FRAMES)).numpy()
    assert np.array_equal(both[FRAMES:], both[:FRAMES, :, ::-1])
    assert not np.array_equal(both[FRAMES], both[0])


def test_near_duplicates_are_dropped(tmp_path: Path) -> None:
    held = write_video(tmp_path / "held.mp4", frames=5, repeat=3)
    images = build(held, tmp_path / "dedup", dedup=1.0)
    assert [index_of(p) for p in images] == [0, 1, 2, 3, 4]


def test_next_frame_pairs_are_k_apart(video: Path, tmp_path: Path) -> None:
    pairs = build(video, tmp_path / "next", pairing="next-frame", k=3)
    assert pairs.shape == (FRAMES - 3, 2, 16, 16, 3)
    assert all(index_of(t) - index_of(s) == 3 for s, t in pairs)


def test_two_videos_with_offset(video: Path, tmp_path: Path) -> None:
    config = DatasetConfig(size=16, mirror=True, dedup=0.0, pairing="two-videos", offset=0.5)
    data = build_dataset([video, video], tmp_path / "two", config=config, progress=False)
    assert len(data) == 2 * (FRAMES - 5)
    pairs = load_dataset(tmp_path / "two").take(torch.arange(len(data))).numpy()
    assert pairs.shape == (2 * (FRAMES - 5), 2, 16, 16, 3)
    originals = pairs[: FRAMES - 5]
    assert [index_of(s) for s, _ in originals] == list(range(FRAMES - 5))
    assert all(index_of(t) - index_of(s) == 5 for s, t in originals)
    assert np.array_equal(pairs[FRAMES - 5 :], originals[..., ::-1, :])  # both sides mirrored


def test_side_by_side_split(video: Path, tmp_path: Path) -> None:
    pairs = build(video, tmp_path / "sbs", pairing="side-by-side", every=5)
    assert pairs.shape == (4, 2, 16, 16, 3)
    for i, (source, target) in enumerate(pairs):
        assert abs(float(source.mean()) - level(5 * i)) < 3
        assert abs(float(target.mean()) - 128) < 3
    swapped = build(video, tmp_path / "swap", pairing="side-by-side", every=5, swap=True)
    assert np.array_equal(swapped[:, 0], pairs[:, 1])


def test_dataset_round_trip(video: Path, tmp_path: Path) -> None:
    images = build(video, tmp_path / "rt", every=2)
    loaded = load_dataset(tmp_path / "rt")
    assert np.array_equal(loaded.images, images)  # PNG is lossless
    assert not loaded.paired
    assert loaded.info["count"] == FRAMES // 2
    assert loaded.names[0] == "frame-000000.png"
    pairs = build(video, tmp_path / "rt-pairs", pairing="next-frame", k=1)
    loaded_pairs = load_dataset(tmp_path / "rt-pairs")
    assert loaded_pairs.paired and np.array_equal(loaded_pairs.images, pairs)
    # One file per pair, source on the left: deleting it drops both halves.
    assert (tmp_path / "rt-pairs" / "pair-000000.png").is_file()


def test_existing_dataset_needs_force(video: Path, tmp_path: Path) -> None:
    build(video, tmp_path / "once")
    with pytest.raises(DatasetError, match="already exists"):
        build(video, tmp_path / "once")
    config = DatasetConfig(size=16, mirror=False, every=10)
    build_dataset([video], tmp_path / "once", config=config, force=True, progress=False)
    assert load_dataset(tmp_path / "once").images.shape[0] == 2


def test_text_file_renamed_mp4_names_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is a shopping list, not a video\n")
    with pytest.raises(DatasetError, match=r"holiday\.mp4.*not a video"):
        build(fake, tmp_path / "out")
    with pytest.raises(DatasetError, match=r"missing\.mp4.*no such file"):
        build(tmp_path / "missing.mp4", tmp_path / "out")


def test_bad_options_are_refused() -> None:
    with pytest.raises(DatasetError, match="power of two"):
        DatasetConfig(size=100)
    with pytest.raises(DatasetError, match="end"):
        DatasetConfig(start=2.0, end=1.0)
