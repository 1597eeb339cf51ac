"""Offline renders: mp4 files PyAV reads back with the expected frame count and size."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from models.checkpoint import load_model, save_checkpoint
from models.latent_maths import random_latent, slerp
from models.nets.dcgan import DCGANConfig, DCGANGenerator
from models.nets.pix2pix import Pix2PixConfig, UNetGenerator
from models.render import (
    RenderError,
    render_feedback,
    render_grid,
    render_tour,
    render_walk,
    tour_latents,
)


def probe(path: Path) -> tuple[int, int, int]:
    """(frames decoded, width, height) of a video file."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    g_config = DCGANConfig(resolution=16, z_dim=8, ngf=8, ndf=8, max_channels=16)
    p_config = Pix2PixConfig(resolution=16, ngf=4, ndf=4)
    save_checkpoint(
        root / "g.safetensors",
        arch="dcgan",
        config=g_config,
        weights=DCGANGenerator(config=g_config),
        training={},
    )
    save_checkpoint(
        root / "p.safetensors",
        arch="pix2pix",
        config=p_config,
        weights=UNetGenerator(config=p_config),
        training={},
    )
    return {"g": root / "g.safetensors", "p": root / "p.safetensors"}


def test_tour_latents_visit_keyframes_and_loop() -> None:
    keys = torch.stack([random_latent(s, 4) for s in range(3)])
    path = list(tour_latents(keys, frames_per_step=5, interp="slerp", easing="linear"))
    assert len(path) == 15
    for i in range(3):
        assert torch.allclose(path[5 * i], keys[i])
    assert torch.allclose(path[2], slerp(keys[0], keys[1], 0.4))
    open_path = list(tour_latents(keys, frames_per_step=5, loop=False))
    assert len(open_path) == 11 and torch.equal(open_path[-1], keys[-1])


def test_tour_mp4(models: dict[str, Path], tmp_path: Path) -> None:
    model = load_model(models["g"])
    keys = torch.stack([random_latent(s, 8) for s in range(4)])
    out = tmp_path / "tour.mp4"
    n = render_tour(model, out, keyframes=keys, frames_per_step=3, loops=2, fps=10, size=32)
    assert n == 24
    assert probe(out) == (24, 32, 32)


def test_walk_and_grid_mp4(models: dict[str, Path], tmp_path: Path) -> None:
    model = load_model(models["g"])
    assert render_walk(model, tmp_path / "walk.mp4", seconds=1.0, fps=12) == 12
    assert probe(tmp_path / "walk.mp4") == (12, 16, 16)
    render_grid(model, tmp_path / "grid.mp4", rows=2, columns=3, seconds=0.5, fps=10)
    assert probe(tmp_path / "grid.mp4") == (5, 3 * 18 + 2, 2 * 18 + 2)


def test_feedback_mp4(models: dict[str, Path], tmp_path: Path) -> None:
    model = load_model(models["p"])
    start = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    assert render_feedback(model, tmp_path / "fb.mp4", start=start, seconds=1.0, fps=8) == 8
    assert probe(tmp_path / "fb.mp4") == (8, 16, 16)


def test_wrong_model_kind_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"p\.safetensors.*needs unconditional"):
        render_walk(load_model(models["p"]), tmp_path / "x.mp4", seconds=1.0)
