"""Training throughput (images/s) of each model at the shipped defaults' recipes.

Runs the real training loops for a few steps on a small procedural dataset,
then StyleGAN2 (the default recipe, batch 8) at 32, 64 and 128 px; with
`--synthetic` StyleGAN2 at 256 and 512 px on random pictures, for a GPU.

    .venv/bin/python benchmarks/train.py [--threads 2] [--steps 20] [--device cpu]
    .venv/bin/python benchmarks/train.py --only stylegan2 --synthetic --device cuda
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.dataset import DatasetConfig, build_dataset
from models.images import write_png
from models.nets.dcgan import DCGANConfig
from models.nets.pix2pix import Pix2PixConfig
from models.procedural import ProceduralConfig, render_frame, write_procedural_video
from models.train import TrainConfig, train_dcgan, train_encoder, train_pix2pix
from models.train_stylegan2 import TRAIN_DEFAULTS, StyleGAN2Recipe, train_stylegan2

# The shipped defaults' shapes and batch sizes (docs/recipe.md).
DCGAN = DCGANConfig(resolution=128, z_dim=128, ngf=32, ndf=16, max_channels=256)
DCGAN_BATCH = 16
PIX2PIX = Pix2PixConfig(resolution=128, ngf=32, ndf=32, max_channels=128)
PIX2PIX_BATCH = 8
ENCODER_BATCH = 16
STYLEGAN2_BATCH = 8
STYLEGAN2_SIZES = (32, 64, 128)
SYNTHETIC_SIZES = (256, 512)


def picture_folder(folder: Path, *, size: int, count: int, synthetic: bool) -> Path:
    """`count` PNGs: procedural shapes frames, or random pictures with --synthetic."""
    if synthetic:
        rng = np.random.default_rng(0)
        pictures = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
    else:
        config = ProceduralConfig(scene="shapes", size=size, fps=5)
        pictures = [render_frame(config, i) for i in range(count)]
    for i, picture in enumerate(pictures):
        write_png(folder / f"frame-{i:06d}.png", picture)
    return folder


def stylegan2_rate(
    root: Path, *, size: int, steps: int, device: str, threads: int, synthetic: bool
) -> float:
    """Images/s of the default StyleGAN2 recipe at this size (no sample checks, no saves)."""
    data = picture_folder(root / f"sg2-{size}", size=size, count=32, synthetic=synthetic)
    train = TrainConfig(
        **{**TRAIN_DEFAULTS, "batch_size": STYLEGAN2_BATCH},
        steps=steps,
        device=device,
        threads=threads,
        checkpoint_every=10**9,
        sample_every=10**9,
        log_every=10**9,
    )
    recipe = StyleGAN2Recipe(resolution=size, check=False)
    result = train_stylegan2(data, root / f"sg2-run-{size}", recipe=recipe, train=train)
    return result.images_per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--only", choices=("all", "defaults", "stylegan2"), default="all", help="which rows"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="StyleGAN2 at 256 and 512 px, random pictures"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

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
        if args.only != "stylegan2":
            rows += default_rows(root, recipe)
        if args.only != "defaults":
            sizes = SYNTHETIC_SIZES if args.synthetic else STYLEGAN2_SIZES
            for size in sizes:
                rate = stylegan2_rate(
                    root,
                    size=size,
                    steps=args.steps,
                    device=args.device,
                    threads=args.threads,
                    synthetic=args.synthetic,
                )
                rows.append((f"stylegan2 {size}", STYLEGAN2_BATCH, rate))
    print(
        f"\ntorch {torch.__version__}, device {args.device}, "
        f"{args.threads} threads, {args.steps} steps"
    )
    print(f"{'model':14} {'batch':>5} {'images/s':>9}")
    for name, batch, rate in rows:
        print(f"{name:14} {batch:>5} {rate:>9.1f}")
    return 0


def default_rows(root: Path, recipe: Callable[[int], TrainConfig]) -> list[tuple[str, int, float]]:
    """DCGAN, pix2pix and encoder at the shipped defaults' shapes and batches."""
    single, pairs = root / "shapes.mp4", root / "pairs.mp4"
    write_procedural_video(single, config=ProceduralConfig(size=128, seconds=2), progress=False)
    write_procedural_video(
        pairs, config=ProceduralConfig(scene="plasma-pairs", size=128, seconds=2), progress=False
    )
    build_dataset([single], root / "images", config=DatasetConfig(size=128), progress=False)
    build_dataset(
        [pairs],
        root / "pairs",
        config=DatasetConfig(size=128, pairing="side-by-side"),
        progress=False,
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
    return rows


if __name__ == "__main__":
    sys.exit(main())
