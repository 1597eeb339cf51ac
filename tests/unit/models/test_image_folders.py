"""Training from folders of image files and dataset_tool zips: real PNG, JPEG, WebP files."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.checkpoint import load_model
from models.dataset import DatasetError, load_dataset
from models.nets.dcgan import DCGANConfig
from models.train import TrainConfig, TrainError, train_dcgan

TINY = DCGANConfig(resolution=16, z_dim=8, ngf=8, ndf=8, max_channels=16)
ONE_STEP = TrainConfig(steps=1, batch_size=4, checkpoint_every=1, sample_every=1, threads=1)


def picture(h: int, w: int, value: int) -> np.ndarray:
    """A flat (h, w, 3) picture whose red channel is `value`, with a white top-left corner."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = value
    image[: h // 4, : w // 4] = 255
    return image


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def mixed_folder(root: Path) -> Path:
    """Six pictures of four sizes in three formats, one in a sub-folder."""
    write(root / "a.png", picture(32, 32, 40))
    write(root / "b.png", picture(20, 40, 80))  # wide: letterboxed top and bottom
    write(root / "c.png", picture(48, 24, 120))  # tall
    write(root / "d.jpg", picture(16, 16, 160))
    write(root / "e.webp", picture(64, 64, 200))
    write(root / "sub" / "f.png", picture(24, 24, 240))
    return root


def test_mixed_sizes_are_letterboxed_or_cropped_and_train(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    boxed = load_dataset(folder, size=16, fit="letterbox")
    assert boxed.images.shape == (6, 16, 16, 3)
    assert boxed.names == ("a.png", "b.png", "c.png", "d.jpg", "e.webp", "sub/f.png")
    wide = boxed.images[1]
    assert wide[:3].max() <= 2 and wide[-3:].max() <= 2  # black bars above and below
    assert abs(int(wide[10, 12, 0]) - 80) <= 2
    cropped = load_dataset(folder, size=16, fit="crop")
    assert cropped.images[1, -1, :, 0].min() >= 70  # no bars
    assert abs(int(cropped.images[3, 10, 10, 0]) - 160) <= 6  # JPEG: close, not exact
    result = train_dcgan(folder, tmp_path / "run", model=TINY, train=ONE_STEP)
    assert result.step == 1
    training = load_model(tmp_path / "run" / "model.safetensors").metadata["training"]
    assert training["dataset"]["count"] == 6 and training["dataset"]["fit"] == "letterbox"


def test_dataset_tool_zip_with_labels_trains(tmp_path: Path) -> None:
    zipped = tmp_path / "data.zip"
    labels = []
    with zipfile.ZipFile(zipped, "w") as archive:
        for i in range(5):
            name = f"00000/img{i:08d}.png"
            image = Image.fromarray(picture(16, 16, 30 * i))
            with archive.open(name, "w") as f:
                image.save(f, format="PNG")
            labels.append([name, i % 2])
        archive.writestr("dataset.json", json.dumps({"labels": labels}))
    data = load_dataset(zipped, size=16)
    assert data.images.shape == (5, 16, 16, 3)
    assert data.labels is not None and data.labels.tolist() == [0, 1, 0, 1, 0]
    assert data.label_dim == 2
    assert [int(x) for x in data.images[:, 8, 8, 0]] == [0, 30, 60, 90, 120]
    assert (tmp_path / "data.zip.cache").is_dir()  # the cache sits beside the zip
    result = train_dcgan(zipped, tmp_path / "run", model=TINY, train=ONE_STEP)
    assert result.step == 1


def test_deleting_a_frame_changes_what_trains(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "curated")
    train_dcgan(folder, tmp_path / "r1", model=TINY, train=ONE_STEP)
    first = load_model(tmp_path / "r1" / "model.safetensors").metadata["training"]
    (folder / "c.png").unlink()
    train_dcgan(folder, tmp_path / "r2", model=TINY, train=ONE_STEP)
    second = load_model(tmp_path / "r2" / "model.safetensors").metadata["training"]
    assert (first["dataset"]["count"], second["dataset"]["count"]) == (6, 5)
    assert first["dataset"]["digest"] != second["dataset"]["digest"]
    data = load_dataset(folder, size=16)
    assert "c.png" not in data.names
    reds = sorted(int(x) for x in data.images[:, 10, 12, 0])
    assert all(abs(r - 120) > 10 for r in reds)  # its pixels are gone, not only its name
    assert len(list((folder / ".cache").glob("pictures-*.npy"))) == 1  # the stale cache went
    # A changed file rebuilds too.
    write(folder / "a.png", picture(32, 32, 100))
    assert abs(int(load_dataset(folder, size=16).images[0, 10, 10, 0]) - 100) <= 2


def test_a_corrupt_image_is_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = mixed_folder(tmp_path / "broken")
    (folder / "truncated.png").write_bytes((folder / "a.png").read_bytes()[:60])
    (folder / "notes.jpg").write_text("not a picture\n")
    with caplog.at_level(logging.WARNING):
        data = load_dataset(folder, size=16)
    assert data.skipped == ("notes.jpg", "truncated.png")
    assert data.images.shape[0] == 6
    assert "truncated.png" in caplog.text and "notes.jpg" in caplog.text
    train_dcgan(folder, tmp_path / "run", model=TINY, train=ONE_STEP)
    assert "notes.jpg, truncated.png" in capsys.readouterr().out
    (folder / "a.png").write_bytes(b"")
    for name in ("b.png", "c.png", "d.jpg", "e.webp", "sub/f.png"):
        (folder / name).unlink()
    with pytest.raises(DatasetError, match="none of its 3 image files could be read"):
        load_dataset(folder, size=16)


def test_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("frames go here\n")
    with pytest.raises(DatasetError, match=r"empty: no images \(PNG, JPEG or WebP"):
        load_dataset(tmp_path / "empty", size=16)
    with pytest.raises(TrainError, match="no images"):
        train_dcgan(tmp_path / "empty", tmp_path / "run", model=TINY, train=ONE_STEP)
    with pytest.raises(DatasetError, match="no such folder or zip"):
        load_dataset(tmp_path / "missing", size=16)


def test_older_npy_datasets_still_load(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    images = np.stack([picture(16, 16, v) for v in (10, 20, 30)])
    np.save(old / "images.npy", images, allow_pickle=False)
    info = {"format": 1, "paired": False, "count": 3, "resolution": 16, "config": {"mirror": True}}
    (old / "dataset.json").write_text(json.dumps(info))
    data = load_dataset(old)
    assert len(data) == 3 and np.array_equal(data.images, images)  # mirrors are already rows
    assert torch.equal(data.take(torch.tensor([2])), torch.from_numpy(images[2:3]))
    assert train_dcgan(old, tmp_path / "run", model=TINY, train=ONE_STEP).step == 1
