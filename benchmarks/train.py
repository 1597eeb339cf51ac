"""Training throughput (images/s) of each model at the shipped defaults' recipes.

Runs the real training loops for a few steps on a small procedural dataset.

    .venv/bin/python benchmarks/train.py [--threads 2] [--steps 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.dataset import DatasetConfig, build_dataset
from models.nets.dcgan import DCGANConfig
from models.nets.pix2pix import Pix2PixConfig
from models.procedural import ProceduralConfig, write_procedural_video
from models.train import TrainConfig, train_dcgan, train_encoder, train_pix2pix

# The shipped defaults' shapes and batch sizes (docs/recipe.md).
DCGAN = DCGANConfig(resolution=128, z_dim=128, ngf=32, ndf=16, max_channels=256)
DCGAN_BATCH = 16
PIX2PIX = Pix2PixConfig(resolution=128, ngf=32, ndf=32, max_channels=128)
PIX2PIX_BATCH = 8
ENCODER_BATCH = 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        single, pairs = root / "plasma.mp4", root / "pairs.mp4"
        write_procedural_video(single, config=ProceduralConfig(size=128, seconds=2), progress=False)
        write_procedural_video(
            pairs,
            config=ProceduralConfig(scene="plasma-pairs", size=128, seconds=2),
            progress=False,
        )
        build_dataset([single], root / "images", config=DatasetConfig(size=128), progress=False)
        build_dataset(
            [pairs],
            root / "pairs",
            config=DatasetConfig(size=128, pairing="side-by-side"),
            progress=False,
        )

        def recipe(batch: int) -> TrainConfig:
            return TrainConfig(
                steps=args.steps,
                batch_size=batch,
                device=args.device,
                threads=args.threads,
                checkpoint_every=10**9,
                sample_every=10**9,
                log_every=10**9,
            )

        rows = []
        d = train_dcgan(root / "images", root / "d", model=DCGAN, train=recipe(DCGAN_BATCH))
        rows.append(("dcgan 128", DCGAN_BATCH, d.images_per_second))
        p = train_pix2pix(root / "pairs", root / "p", model=PIX2PIX, train=recipe(PIX2PIX_BATCH))
        rows.append(("pix2pix 128", PIX2PIX_BATCH, p.images_per_second))
        e = train_encoder(
            root / "d" / "model.safetensors", root / "e", model=None, train=recipe(ENCODER_BATCH)
        )
        rows.append(("encoder 128", ENCODER_BATCH, e.images_per_second))
    print(
        f"\ntorch {torch.__version__}, device {args.device}, "
        f"{args.threads} threads, {args.steps} steps"
    )
    print(f"{'model':14} {'batch':>5} {'images/s':>9}")
    for name, batch, rate in rows:
        print(f"{name:14} {batch:>5} {rate:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
