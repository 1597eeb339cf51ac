"""What can be said about a trained generator without a pretrained feature network.

`ganvj train stylegan2` ends by writing `check/` in its run folder:

- `loss.png`: the loss curves of `loss.csv`;
- `nearest.png`: 16 fakes (seeds 0..15), each beside the training picture
  nearest to it by pixel L2 — a memorisation check: a fake that is a copy
  of a frame shows the same picture twice;
- `report.json`: those distances against the same distance between training
  pictures (how close the frames of the video are to each other anyway), and
  the per-channel colour mean and spread of fakes against the data.

FID needs an Inception network, which ganvj neither ships nor downloads: with
`--metrics fid --inception FILE` (a feature network the user supplies, as a
`torch.export` program or a TorchScript archive) it is computed here with the usual Fréchet formula.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from models.dataset import Dataset
from models.images import grid_of, write_png
from models.latent_maths import seed_latent
from models.pixels import to_255, to_uint8

logger = logging.getLogger(__name__)

CHECK_SEEDS = range(16)
COLOUR_FAKES = 256  # fakes behind the colour statistics
COLOUR_REALS = 2048  # at most this many training pictures for them
FID_MAX = 5000  # at most this many pictures per side for FID
INCEPTION_SIZE = 299
CURVE_COLOURS = [(230, 80, 60), (60, 130, 230), (60, 180, 90), (200, 160, 40), (150, 80, 200)]


class CheckError(ValueError):
    """A check that cannot run (e.g. an unusable feature network); names the file."""


# ---------------------------------------------------------------------------------------
# Nearest training picture


def real_batches(
    data: Dataset, *, resolution: int, rows: Tensor | None = None, batch: int = 256
) -> Any:
    """(indices, float pictures (B, 3, R, R) in [-1, 1]) over the dataset or the given rows."""
    index = torch.arange(len(data)) if rows is None else rows
    for chunk in index.split(batch):
        x = data.take(chunk).permute(0, 3, 1, 2).float().div(127.5).sub(1)  # (B, 3, R', R')
        if x.shape[-1] != resolution:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)
        yield chunk, x


def nearest(
    queries: Tensor, data: Dataset, *, resolution: int, exclude: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """For each query (Q, 3, R, R) the nearest dataset row by pixel L2: (rows, RMS in 0..255).

    `exclude` (Q, k) lists rows a query may not match (itself and its mirror).
    """
    q = queries.float().flatten(1)  # (Q, D)
    best = torch.full([q.shape[0]], math.inf)
    best_row = torch.zeros([q.shape[0]], dtype=torch.int64)
    for rows, x in real_batches(data, resolution=resolution):
        r = x.flatten(1)  # (B, D)
        d2 = q.square().sum(1, keepdim=True) + r.square().sum(1) - 2 * q @ r.t()  # (Q, B)
        if exclude is not None:
            d2[(exclude[:, :, None] == rows[None, None, :]).any(1)] = math.inf
        value, where = d2.min(dim=1)
        better = value < best
        best = torch.where(better, value, best)
        best_row = torch.where(better, rows[where], best_row)
    rms = (best.clamp_min(0) / q.shape[1]).sqrt() * 127.5  # [-1, 1] units -> 0..255
    return best_row, rms


def nearest_picture(fakes: Tensor, data: Dataset, rows: Tensor, *, resolution: int) -> np.ndarray:
    """Pairs (fake | nearest training picture), four pairs a row, as one uint8 picture."""
    reals = torch.cat([x for _, x in real_batches(data, resolution=resolution, rows=rows)])
    pictures = to_uint8(torch.stack([fakes, reals], dim=1).flatten(0, 1))  # (2Q, R, R, 3)
    return grid_of(pictures, columns=8)


def real_spacing(data: Dataset, *, resolution: int, count: int = 16, seed: int = 0) -> float:
    """Mean RMS distance from a training picture to its nearest other one (not its mirror)."""
    n = data.images.shape[0]
    if n < 2:
        return float("nan")
    rng = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=rng)[: min(count, n)]
    queries = torch.cat([x for _, x in real_batches(data, resolution=resolution, rows=rows)])
    exclude = torch.stack([rows, rows + n], dim=1)  # a mirrored copy is not a neighbour
    _, rms = nearest(queries, data, resolution=resolution, exclude=exclude)
    return float(rms.mean())


# ---------------------------------------------------------------------------------------
# Colour


def colour_stats(pictures: Tensor) -> dict[str, list[float]]:
    """Per-channel mean and standard deviation (0..255) of (N, 3, R, R) pictures in [-1, 1]."""
    x = to_255(pictures)
    per_channel = x.transpose(0, 1).flatten(1)  # (3, N*R*R)
    return {
        "mean": [round(float(v), 2) for v in per_channel.mean(1)],
        "std": [round(float(v), 2) for v in per_channel.std(1)],
    }


def data_sample(data: Dataset, *, resolution: int, count: int, seed: int = 0) -> Tensor:
    """Up to `count` training pictures, chosen at random, as floats in [-1, 1]."""
    rng = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(data), generator=rng)[:count]
    return torch.cat([x for _, x in real_batches(data, resolution=resolution, rows=rows)])


# ---------------------------------------------------------------------------------------
# Loss curves


def read_loss_csv(path: Path) -> dict[str, list[float]]:
    """loss.csv as columns of floats."""
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    continue
    return columns


def loss_plot(
    csv_path: Path, png_path: Path, *, keys: tuple[str, ...] = ("loss_g", "loss_d", "r1", "pl")
) -> bool:
    """Draw the CSV's curves against step (each scaled to its own range); False if no data."""
    if not csv_path.is_file():
        return False
    columns = read_loss_csv(csv_path)
    steps = columns.get("step", [])
    shown = [k for k in keys if len(columns.get(k, [])) == len(steps) and len(steps) >= 2]
    if not shown:
        return False
    width, height, margin = 800, 240 * len(shown), 50
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    panel = height // len(shown)
    x0, x1 = min(steps), max(steps)
    for i, key in enumerate(shown):
        top = i * panel
        values = columns[key]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        box = (margin, top + 20, width - 20, top + panel - 30)
        draw.rectangle(box, outline=(180, 180, 180))

        scale_x = (box[2] - box[0]) / ((x1 - x0) or 1.0)
        scale_y = (box[3] - box[1]) / span
        points = [
            (box[0] + (s - x0) * scale_x, box[3] - (v - low) * scale_y)
            for s, v in zip(steps, values, strict=True)
        ]
        draw.line(points, fill=CURVE_COLOURS[i % len(CURVE_COLOURS)], width=2)
        draw.text((margin, top + 4), f"{key}  (min {low:.4g}, max {high:.4g})", fill=(0, 0, 0))
        draw.text((margin, box[3] + 4), f"step {x0:g}", fill=(90, 90, 90))
        draw.text((box[2] - 80, box[3] + 4), f"step {x1:g}", fill=(90, 90, 90))
    png_path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(png_path, format="PNG")
    return True


# ---------------------------------------------------------------------------------------
# FID


def load_feature_network(path: Path, device: torch.device) -> nn.Module:
    """A user-supplied feature network, (B, 3, H, W) in 0..255 -> (B, D).

    A `torch.export` program (`.pt2`, torch.export.save) or a TorchScript archive
    (torch.jit.save; the format of the common FID Inception files). Neither is a
    pickle: both hold a graph of tensor operations and their weights.
    """
    if not path.is_file():
        raise CheckError(f"--inception {path}: no such file")
    errors = []
    loaders = [_load_exported, _load_torchscript]
    if path.suffix.lower() != ".pt2":
        loaders.reverse()
    for loader in loaders:
        try:
            return loader(path, device)
        except Exception as exc:  # noqa: BLE001 - each format raises its own error types
            errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    raise CheckError(
        f"--inception {path}: not a torch.export program (.pt2) or a TorchScript archive "
        f"({'; '.join(errors)})"
    )


def _load_exported(path: Path, device: torch.device) -> nn.Module:
    program = torch.export.load(str(path))
    return program.module().to(device)


def _load_torchscript(path: Path, device: torch.device) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # still how FID files ship
        net: nn.Module = torch.jit.load(str(path), map_location=device)
    return net.eval()


def features(
    net: nn.Module, pictures: Tensor, *, size: int = INCEPTION_SIZE, batch: int = 64
) -> Tensor:
    """(N, D) float64 features of (N, 3, R, R) pictures in [-1, 1] (resized, in 0..255)."""
    device = next(iter(net.parameters()), torch.empty(0)).device
    out = []
    with torch.no_grad():
        for chunk in pictures.split(batch):
            x = to_255(chunk)
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            y = net(x.to(device))
            if isinstance(y, (tuple, list)):
                y = y[0]
            out.append(y.reshape(y.shape[0], -1).double().cpu())
    return torch.cat(out)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (FID's formula).

    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)); the trace of the
    root is the sum of root eigenvalues of S_a^(1/2) S_b S_a^(1/2), symmetric and PSD.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.t()).reshape(a.shape[1], -1), torch.cov(b.t()).reshape(b.shape[1], -1)
    values, vectors = torch.linalg.eigh(s_a)
    root_a = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.t()
    middle = root_a @ s_b @ root_a
    middle = (middle + middle.t()) / 2
    trace_root = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    fid = (mu_a - mu_b).square().sum() + s_a.trace() + s_b.trace() - 2 * trace_root
    return float(fid.clamp_min(0))


# ---------------------------------------------------------------------------------------


def generate(g: nn.Module, seeds: range, c: Tensor | None, device: torch.device) -> Tensor:
    """Fakes for seeds (constant noise, no truncation) on the CPU, (N, 3, R, R)."""
    z_dim = int(g.z_dim)  # type: ignore[arg-type]
    out = []
    g.eval()
    with torch.no_grad():
        for start in range(0, len(seeds), 32):
            part = seeds[start : start + 32]
            z = torch.stack([seed_latent(s, z_dim) for s in part]).to(device)
            cc = c[start : start + len(part)].to(device) if c is not None else None
            out.append(g(z, cc, noise_mode="const").float().cpu())
    return torch.cat(out)


def check_labels(labels: Tensor | None, count: int, seed: int = 0) -> Tensor | None:
    """Labels for check fakes, drawn from the dataset's rows."""
    if labels is None:
        return None
    rng = torch.Generator().manual_seed(seed)
    return labels.cpu()[torch.randint(0, labels.shape[0], (count,), generator=rng)]


def run_checks(
    run_dir: Path,
    g: nn.Module,
    data: Dataset,
    *,
    resolution: int,
    labels: Tensor | None,
    device: torch.device,
    inception: Path | None = None,
    write: bool = True,
) -> dict[str, float]:
    """Write check/ (loss.png, nearest.png, report.json); return the figures."""
    out = Path(run_dir) / "check"
    fakes16 = generate(g, CHECK_SEEDS, check_labels(labels, len(CHECK_SEEDS)), device)
    rows, rms = nearest(fakes16, data, resolution=resolution)
    spacing = real_spacing(data, resolution=resolution)
    colour_fakes = generate(
        g, range(1000, 1000 + COLOUR_FAKES), check_labels(labels, COLOUR_FAKES, 1), device
    )
    reals = data_sample(data, resolution=resolution, count=COLOUR_REALS)
    fake_colour, real_colour = colour_stats(colour_fakes), colour_stats(reals)
    quality: dict[str, float] = {
        "nearest_rms_mean": round(float(rms.mean()), 3),
        "nearest_rms_min": round(float(rms.min()), 3),
        "real_spacing_rms": round(spacing, 3),
        "colour_mean_gap": round(
            float(np.abs(np.subtract(fake_colour["mean"], real_colour["mean"])).mean()), 3
        ),
        "colour_std_gap": round(
            float(np.abs(np.subtract(fake_colour["std"], real_colour["std"])).mean()), 3
        ),
    }
    if inception is not None:
        net = load_feature_network(inception, device)
        n = min(len(data), FID_MAX)
        real_feat = features(net, data_sample(data, resolution=resolution, count=n, seed=2))
        fake_feat = features(
            net, generate(g, range(2000, 2000 + n), check_labels(labels, n, 2), device)
        )
        quality["fid"] = round(frechet_distance(real_feat, fake_feat), 4)
        quality["fid_pictures"] = float(n)
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_png(out / "nearest.png", nearest_picture(fakes16, data, rows, resolution=resolution))
        loss_plot(Path(run_dir) / "loss.csv", out / "loss.png")
        report = {
            **quality,
            "nearest": [
                {"seed": s, "row": int(r), "name": name_of(data, int(r)), "rms": round(float(d), 3)}
                for s, r, d in zip(CHECK_SEEDS, rows, rms, strict=True)
            ],
            "colour": {"fakes": fake_colour, "data": real_colour},
        }
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return quality


def name_of(data: Dataset, row: int) -> str:
    """The file behind a dataset row (mirrored rows say so)."""
    n = data.images.shape[0]
    base = data.names[row % n] if data.names else f"row {row % n}"
    return base + (" (mirrored)" if row >= n else "")
