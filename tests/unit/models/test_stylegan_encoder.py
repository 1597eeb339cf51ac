"""An encoder for a StyleGAN from a tiny NVIDIA-style pickle: image -> W, paired by hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.catalog import load_model
from models.checkpoint import CheckpointError, check_encoder_pair
from models.cli import main
from models.train import TrainConfig, train_encoder
from tests.support.nvidia_pickles import (
    seeded_stylegan2,
    stylegan2_ada_kwargs,
    write_network_pickle,
)


@pytest.fixture
def stylegan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 32 px StyleGAN2 (w 16) written as NVIDIA's training would pickle it."""
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path / "models"))  # the import cache
    kwargs = stylegan2_ada_kwargs(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=32, channel_base=256, channel_max=32
    )
    generator = seeded_stylegan2(kwargs, seed=3, noise_seed=7)
    return write_network_pickle(tmp_path / "tiny.pkl", generator, init_kwargs=kwargs)


def test_encoder_maps_g_of_w_back_near_w(stylegan: Path, tmp_path: Path) -> None:
    train = TrainConfig(
        steps=100, batch_size=16, lr=2e-3, image_weight=0.0, threads=1,
        checkpoint_every=1000, sample_every=1000, log_every=50,
    )  # fmt: skip
    result = train_encoder(stylegan, tmp_path / "e", model=None, train=train)
    q = result.quality
    print({k: round(v, 3) for k, v in q.items()})
    # Held-out seeds: nearer the true w than an unrelated w, and than always answering w_avg.
    assert q["w_rms_error"] < 0.6 * q["w_rms_random_pair"]
    assert q["w_rms_error"] < 0.85 * q["w_rms_to_mean"]
    assert q["psnr_db"] > q["psnr_random_pair_db"]
    encoder = load_model(tmp_path / "e" / "model.safetensors")
    assert encoder.metadata["config"]["space"] == "w" and encoder.z_dim == 16
    check_encoder_pair(encoder, load_model(stylegan))  # paired with the pickle by its hash
    other = tmp_path / "other.pkl"
    other.write_bytes(stylegan.read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match="was trained for"):
        check_encoder_pair(encoder, load_model(stylegan).__class__(
            **{**load_model(stylegan).__dict__, "path": other}
        ))  # fmt: skip


def test_w_plus_and_the_command_line(stylegan: Path, tmp_path: Path) -> None:
    argv = [
        "train", "encoder", "--generator", str(stylegan), "--space", "w+", "--nef", "8",
        "--run", str(tmp_path / "e"), "--steps", "2", "--batch-size", "4",
    ]  # fmt: skip
    assert main(argv) == 0
    encoder = load_model(tmp_path / "e" / "model.safetensors")
    assert encoder.metadata["config"]["space"] == "w+"
    with torch.no_grad():
        ws = encoder.module(torch.zeros(2, 3, 32, 32))
    assert ws.shape == (2, encoder.metadata["config"]["num_ws"], 16)
    assert main(["train", "encoder", "--run", str(tmp_path / "x")]) == 2
