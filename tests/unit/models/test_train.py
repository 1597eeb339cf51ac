"""Two training steps of each model on tiny configs, resume, and the quality reports."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_model, read_tensors
from models.dataset import DatasetConfig, build_dataset
from models.nets.dcgan import DCGANConfig
from models.nets.encoder import EncoderConfig
from models.nets.pix2pix import Pix2PixConfig
from models.procedural import ProceduralConfig, write_procedural_video
from models.train import TrainConfig, TrainError, train_dcgan, train_encoder, train_pix2pix

TINY_TRAIN = TrainConfig(
    steps=2, batch_size=4, checkpoint_every=1, sample_every=1, log_every=1, threads=1
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    single = root / "plasma.mp4"
    pairs = root / "pairs.mp4"
    write_procedural_video(
        single, config=ProceduralConfig(size=32, seconds=1, fps=10), progress=False
    )
    write_procedural_video(
        pairs,
        config=ProceduralConfig(scene="plasma-pairs", size=32, seconds=1, fps=10),
        progress=False,
    )
    build_dataset([single], root / "images", config=DatasetConfig(size=16), progress=False)
    paired = DatasetConfig(size=16, pairing="side-by-side")
    build_dataset([pairs], root / "pairs", config=paired, progress=False)
    return {"images": root / "images", "pairs": root / "pairs"}


def finite(losses: dict[str, float]) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses.values())


def test_dcgan_two_steps_and_resume(data: dict[str, Path], tmp_path: Path) -> None:
    model = DCGANConfig(resolution=16, z_dim=8, ngf=8, ndf=8, max_channels=16)
    run = tmp_path / "run"
    result = train_dcgan(data["images"], run, model=model, train=TINY_TRAIN)
    assert result.step == 2 and finite(result.losses)
    assert (run / "samples" / "step-000002.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "loss.csv").read_text().count("\n") == 3  # header + 2 rows
    assert load_model(run / "model.safetensors").metadata["training"]["step"] == 2
    with pytest.raises(TrainError, match="already exists"):
        train_dcgan(data["images"], run, model=model, train=TINY_TRAIN)
    _, before = read_tensors(run / "last.safetensors")
    more = TrainConfig(**{**TINY_TRAIN.__dict__, "steps": 4})
    resumed = train_dcgan(data["images"], run, model=model, train=more, resume=True)
    assert resumed.step == 4 and finite(resumed.losses)
    _, after = read_tensors(run / "last.safetensors")
    assert float(after["extra/opt_g.0.step"]) == float(before["extra/opt_g.0.step"]) + 2


def test_pix2pix_two_steps_and_quality(data: dict[str, Path], tmp_path: Path) -> None:
    model = Pix2PixConfig(resolution=16, ngf=4, ndf=4, max_channels=16)
    result = train_pix2pix(data["pairs"], tmp_path / "p", model=model, train=TINY_TRAIN)
    assert result.step == 2 and finite(result.losses)
    assert set(result.quality) == {"heldout_pairs", "l1_model", "l1_identity"}
    assert result.quality["l1_identity"] > 0
    saved = load_model(tmp_path / "p" / "model.safetensors")
    assert saved.metadata["training"]["quality"] == result.quality


def test_pix2pix_refuses_unpaired_data(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="needs a paired dataset"):
        train_pix2pix(
            data["images"], tmp_path / "p", model=Pix2PixConfig(resolution=16), train=TINY_TRAIN
        )


def test_encoder_two_steps_links_generator(data: dict[str, Path], tmp_path: Path) -> None:
    g_config = DCGANConfig(resolution=16, z_dim=8, ngf=8, ndf=8, max_channels=16)
    train_dcgan(data["images"], tmp_path / "g", model=g_config, train=TINY_TRAIN)
    generator = tmp_path / "g" / "model.safetensors"
    train = TrainConfig(**{**TINY_TRAIN.__dict__, "real_weight": 1.0})
    result = train_encoder(
        generator,
        tmp_path / "e",
        model=EncoderConfig(resolution=16, z_dim=8, nef=4),
        train=train,
        dataset=data["images"],
    )
    assert result.step == 2 and finite(result.losses)
    assert {"loss_z", "loss_img", "loss_real"} <= set(result.losses)
    assert math.isfinite(result.quality["psnr_db"])
    encoder = load_model(tmp_path / "e" / "model.safetensors")
    link = encoder.metadata["generator"]
    assert link["name"] == "model" and len(link["sha256"]) == 64
    resumed = train_encoder(
        generator,
        tmp_path / "e",
        model=None,
        train=TrainConfig(**{**TINY_TRAIN.__dict__, "steps": 3}),
        resume=True,
    )
    assert resumed.step == 3
    # The generator's own discriminator as a perceptual loss, from the first encoder's weights.
    tuned = train_encoder(
        generator,
        tmp_path / "e2",
        model=EncoderConfig(resolution=16, z_dim=8, nef=4),
        train=TINY_TRAIN,
        discriminator=tmp_path / "g" / "last.safetensors",
        init_from=tmp_path / "e" / "model.safetensors",
    )
    assert "loss_feat" in tuned.losses and finite(tuned.losses)
    with pytest.raises(TrainError, match="not a DCGAN training checkpoint"):
        train_encoder(
            generator,
            tmp_path / "e3",
            model=EncoderConfig(resolution=16, z_dim=8, nef=4),
            train=TINY_TRAIN,
            discriminator=generator,
        )
    with pytest.raises(TrainError, match="same shape"):
        train_encoder(
            generator,
            tmp_path / "e4",
            model=EncoderConfig(resolution=16, z_dim=8, nef=8),
            train=TINY_TRAIN,
            init_from=tmp_path / "e" / "model.safetensors",
        )


def test_encoder_refuses_image2image_generator(data: dict[str, Path], tmp_path: Path) -> None:
    train_pix2pix(
        data["pairs"],
        tmp_path / "p",
        model=Pix2PixConfig(resolution=16, ngf=4, ndf=4),
        train=TINY_TRAIN,
    )
    with pytest.raises(TrainError, match="needs an unconditional generator"):
        train_encoder(
            tmp_path / "p" / "model.safetensors", tmp_path / "e", model=None, train=TINY_TRAIN
        )


def test_training_is_reproducible_from_its_seed(data: dict[str, Path], tmp_path: Path) -> None:
    model = DCGANConfig(resolution=16, z_dim=8, ngf=8, ndf=8, max_channels=16)
    train_dcgan(data["images"], tmp_path / "a", model=model, train=TINY_TRAIN)
    train_dcgan(data["images"], tmp_path / "b", model=model, train=TINY_TRAIN)
    _, a = read_tensors(tmp_path / "a" / "model.safetensors")
    _, b = read_tensors(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.isfinite(a["to_rgb.1.weight"].float().numpy()).all()
