"""rosinality/stylegan2-pytorch checkpoints (.pt) load as weights only, into our StyleGAN2."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from models.catalog import load_model
from models.checkpoint import CheckpointError
from models.latent_maths import seed_latent
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from tests.support.nvidia_pickles import perturb


def rosinality_state(generator: StyleGAN2Generator) -> dict[str, Tensor]:
    """Our generator's tensors under rosinality's names and shapes (its model.py layout)."""
    sd = generator.state_dict()
    config = generator.config
    g: dict[str, Tensor] = {}
    for i in range(config.mapping_layers):
        g[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        g[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    g["input.input"] = sd["synthesis.b4.const"][None]
    noises = [sd["synthesis.b4.conv1.noise_const"]]

    def styled(theirs: str, ours: str) -> None:
        g[f"{theirs}.conv.weight"] = sd[f"{ours}.weight"][None]
        g[f"{theirs}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        g[f"{theirs}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
        g[f"{theirs}.noise.weight"] = sd[f"{ours}.noise_strength"].reshape(1)
        g[f"{theirs}.activate.bias"] = sd[f"{ours}.bias"]

    def to_rgb(theirs: str, ours: str) -> None:
        g[f"{theirs}.conv.weight"] = sd[f"{ours}.weight"][None]
        g[f"{theirs}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        g[f"{theirs}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
        g[f"{theirs}.bias"] = sd[f"{ours}.bias"].reshape(1, -1, 1, 1)

    styled("conv1", "synthesis.b4.conv1")
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    blur = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    for i, res in enumerate(config.block_resolutions[1:]):
        styled(f"convs.{2 * i}", f"synthesis.b{res}.conv0")
        styled(f"convs.{2 * i + 1}", f"synthesis.b{res}.conv1")
        to_rgb(f"to_rgbs.{i}", f"synthesis.b{res}.torgb")
        g[f"convs.{2 * i}.conv.blur.kernel"] = blur / blur.sum() * 4
        g[f"to_rgbs.{i}.upsample.kernel"] = blur / blur.sum() * 4
        noises += [sd[f"synthesis.b{res}.conv0.noise_const"]]
        noises += [sd[f"synthesis.b{res}.conv1.noise_const"]]
    for n, noise in enumerate(noises):
        g[f"noises.noise_{n}"] = noise[None, None]
    return g


@pytest.fixture
def generator() -> StyleGAN2Generator:
    # rosinality's layout: 512 channels up to 32 px, 256 * multiplier from 64 px.
    config = StyleGAN2Config(
        z_dim=16, w_dim=16, img_resolution=64, mapping_layers=3, channel_base=64 * 8,
        channel_max=8, conv_clamp=None, num_fp16_res=0,
    )  # fmt: skip
    torch.manual_seed(2)
    module = StyleGAN2Generator(config=config).eval()
    perturb(module, 3)
    return module


def test_rosinality_checkpoint_loads_and_draws_the_same(
    generator: StyleGAN2Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    checkpoint = {
        "g_ema": rosinality_state(generator),
        "latent_avg": generator.mapping.w_avg.clone(),
        "args": argparse.Namespace(size=64, n_mlp=3, lr_mlp=0.01, channel_multiplier=2),
    }
    path = tmp_path / "550000.pt"
    torch.save(checkpoint, path)
    model = load_model(path)
    assert (model.arch, model.resolution, model.metadata["source"]["format"]) == (
        "stylegan2",
        64,
        "rosinality",
    )
    module: Any = model.module
    z = seed_latent(8, 16)[None]
    with torch.no_grad():
        assert torch.equal(module(z, truncation_psi=0.5), generator(z, truncation_psi=0.5))


def test_bad_pt_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "x": Evil()}, evil)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_model(evil)
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match="no g_ema"):
        load_model(other)
    torn = tmp_path / "torn.pt"
    torn.write_bytes(evil.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(torn)
    assert not marker.exists()
