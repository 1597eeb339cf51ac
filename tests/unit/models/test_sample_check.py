"""The sample check: nearest training picture, colour statistics, loss plot, FID maths."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from models.dataset import load_dataset
from models.images import write_png
from models.sample_check import (
    CheckError,
    colour_stats,
    features,
    frechet_distance,
    load_feature_network,
    loss_plot,
    nearest,
    real_spacing,
    run_checks,
)


class StandIn(nn.Module):
    """A tiny feature network built here (no Inception is downloaded): pooled conv features."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x / 255.0))  # (B, 8, h, w)
        return torch.cat([y.mean(dim=(2, 3)), y.amax(dim=(2, 3))], dim=1)  # (B, 16)


def make_folder(root: Path, count: int = 10) -> Path:
    root.mkdir(parents=True)
    rng = np.random.RandomState(1)
    for i in range(count):
        write_png(root / f"p{i:02d}.png", rng.randint(0, 256, (16, 16, 3)).astype(np.uint8))
    return root


def test_frechet_distance_matches_closed_forms() -> None:
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 6, generator=rng, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Gaussians with diagonal covariances: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2.
    sa = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 1.0], dtype=torch.float64)
    sb = torch.tensor([2.0, 1.0, 0.5, 1.5, 1.0, 1.0], dtype=torch.float64)
    mb = torch.tensor([1.0, 0.0, -2.0, 0.0, 0.5, 0.0], dtype=torch.float64)
    x = torch.randn(200_000, 6, generator=rng, dtype=torch.float64)
    y = torch.randn(200_000, 6, generator=rng, dtype=torch.float64)
    expected = float(mb.square().sum() + (sa - sb).square().sum())
    assert frechet_distance(x * sa, y * sb + mb) == pytest.approx(expected, rel=0.02)
    # A rotated copy of the same Gaussian is the same distribution (full covariances).
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=rng, dtype=torch.float64))
    cov = torch.diag(sa) @ q
    assert frechet_distance(x @ cov, y @ cov) == pytest.approx(0.0, abs=0.05)


def exported(path: Path, size: int = 32) -> Path:
    """The stand-in saved with torch.export (batch dimension free)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(
        StandIn(), (torch.rand(2, 3, size, size),), dynamic_shapes={"x": {0: batch}}
    )
    torch.export.save(program, str(path))
    return path


def scripted(path: Path) -> Path:
    """The stand-in saved as TorchScript (deprecated in torch, still how FID files ship)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(StandIn()), str(path))
    return path


def test_fid_through_a_user_supplied_feature_network(tmp_path: Path) -> None:
    path = scripted(tmp_path / "standin.ts")  # torch.export (.pt2) in test_run_checks_...
    net = load_feature_network(path, torch.device("cpu"))
    a = torch.rand(64, 3, 16, 16) * 2 - 1
    fa = features(net, a, size=32)
    assert fa.shape == (64, 16) and fa.dtype == torch.float64
    assert frechet_distance(fa, features(net, a, size=32)) == pytest.approx(0.0, abs=1e-9)
    darker = features(net, a * 0.5 - 0.5, size=32)
    assert frechet_distance(fa, darker) > 1e-4


def test_unusable_feature_networks_are_named(tmp_path: Path) -> None:
    bogus = tmp_path / "weights.bin"
    bogus.write_bytes(b"not a network")
    with pytest.raises(CheckError, match=r"weights\.bin: not a torch.export program"):
        load_feature_network(bogus, torch.device("cpu"))
    with pytest.raises(CheckError, match="no such file"):
        load_feature_network(tmp_path / "missing.pt", torch.device("cpu"))


def test_nearest_finds_a_copied_picture_and_skips_mirrors(tmp_path: Path) -> None:
    data = load_dataset(make_folder(tmp_path / "d"), size=16)
    data = type(data)(**{**data.__dict__, "mirror": True})
    reals = data.take(torch.tensor([3, 14])).permute(0, 3, 1, 2).float() / 127.5 - 1
    rows, rms = nearest(reals, data, resolution=16)
    assert rows.tolist() == [3, 14] and float(rms.max()) < 1e-2  # row 14 = row 4 mirrored
    # Excluding a picture and its mirror finds a different one, far away (random noise).
    rows, rms = nearest(reals[:1], data, resolution=16, exclude=torch.tensor([[3, 13]]))
    assert int(rows[0]) not in (3, 13) and float(rms[0]) > 50
    assert real_spacing(data, resolution=16) > 50


def test_colour_stats_per_channel() -> None:
    x = torch.zeros(2, 3, 4, 4)
    x[:, 0] = 1.0  # red at 255
    x[:, 2] = -1.0  # blue at 0
    stats = colour_stats(x)
    assert stats["mean"] == [255.0, 127.5, 0.0] and stats["std"] == [0.0, 0.0, 0.0]


def test_loss_plot_draws_each_curve(tmp_path: Path) -> None:
    csv = tmp_path / "loss.csv"
    rows = ["step,seconds,loss_g,loss_d"] + [
        f"{i},{i * 0.1},{math.sin(i / 5)},{1 + i / 50}" for i in range(1, 51)
    ]
    csv.write_text("\n".join(rows) + "\n")
    assert loss_plot(csv, tmp_path / "loss.png")
    picture = np.asarray(Image.open(tmp_path / "loss.png").convert("RGB"))
    assert picture.shape == (480, 800, 3)
    red = (picture[..., 0] > 200) & (picture[..., 1] < 120)  # loss_g's colour, top panel
    blue = (picture[..., 2] > 200) & (picture[..., 0] < 120)  # loss_d's, bottom panel
    assert red[:240].sum() > 200 and red[240:].sum() == 0
    assert blue[240:].sum() > 200
    assert not loss_plot(tmp_path / "none.csv", tmp_path / "x.png")


def test_run_checks_writes_its_report(tmp_path: Path) -> None:
    data = load_dataset(make_folder(tmp_path / "d"), size=16)

    class Copier(nn.Module):
        """A 'generator' that returns training picture z_0 mod N: a perfect memoriser."""

        z_dim = 4

        def forward(self, z: torch.Tensor, c: object = None, **_: object) -> torch.Tensor:
            rows = (z[:, 0].abs() * 1000).long() % len(data)
            return data.take(rows).permute(0, 3, 1, 2).float() / 127.5 - 1

    path = exported(tmp_path / "standin.pt2", size=299)  # pictures are resized to 299
    quality = run_checks(
        tmp_path / "run", Copier(), data, resolution=16, labels=None,
        device=torch.device("cpu"), inception=path,
    )  # fmt: skip
    # Every fake is a training picture: distance 0, against noise pictures far apart.
    assert quality["nearest_rms_mean"] < 0.01 and quality["real_spacing_rms"] > 50
    assert quality["colour_mean_gap"] < 20 and math.isfinite(quality["fid"])
    report = json.loads((tmp_path / "run" / "check" / "report.json").read_text())
    assert report["nearest"][0]["name"].startswith("p")
    nearest_png = np.asarray(Image.open(tmp_path / "run" / "check" / "nearest.png"))
    assert nearest_png.shape == (2 + 4 * 18, 2 + 8 * 18, 3)  # 4 rows of 4 (fake | real) pairs
