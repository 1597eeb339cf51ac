"""Which part of the DCGAN encoder recipe buys its mirror quality: an ablation.

Trains the shipped encoder's shape (128 px, nef 32) for the same number of
steps four ways, side by side in one run, and prints the held-out PSNR of
G(E(G(z))) against G(z) for each, with the floor (an unrelated sample):

    scratch        pixel L1 only, from random weights (the old recipe)
    + features     adds the loss in the DCGAN discriminator's feature space
    + warm start   starts from another encoder's weights (--init-from)
    both           the shipped recipe (docs/recipe.md)

    .venv/bin/python benchmarks/encoder.py \
        --generator models/weights/default-dcgan-128.safetensors \
        --discriminator runs/dcgan-128/last.safetensors \
        --init-from data/previous-encoder-128.safetensors \
        [--steps 365] [--threads 1] [--only scratch,both]

The discriminator is the generator's training run's `last.safetensors`; the
warm start is any encoder of the same shape (the recipe uses the one shipped
before the current DCGAN). Quality, not speed: GAN training is not bit-for-bit
repeatable across thread counts, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.train import TrainConfig, train_encoder

VARIANTS = ("scratch", "features", "warm", "both")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", required=True, help="the DCGAN to invert")
    parser.add_argument("--discriminator", required=True, help="its run's last.safetensors")
    parser.add_argument("--init-from", required=True, help="an encoder of the same shape")
    parser.add_argument("--steps", type=int, default=365, help="steps per variant")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(VARIANTS)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    train = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=2e-4,
        threads=args.threads,
        seed=args.seed,
        checkpoint_every=10**9,
        sample_every=10**9,
        log_every=10**9,
        image_weight=1.0,
        feature_weight=1.0,
    )
    print(f"torch {torch.__version__}, {args.threads} threads")
    print(f"{args.steps} steps of {args.batch_size} samples per variant")
    print(f"{'variant':<10} {'PSNR dB':>8} {'floor dB':>9} {'above':>6} {'images/s':>9} {'min':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            features = name in ("features", "both")
            warm = name in ("warm", "both")
            start = time.perf_counter()
            result = train_encoder(
                Path(args.generator),
                Path(tmp) / name,
                model=None,
                train=train,
                discriminator=Path(args.discriminator) if features else None,
                init_from=Path(args.init_from) if warm else None,
            )
            minutes = (time.perf_counter() - start) / 60
            q = result.quality
            print(
                f"{name:<10} {q['psnr_db']:8.2f} {q['psnr_random_pair_db']:9.2f} "
                f"{q['psnr_db'] - q['psnr_random_pair_db']:6.2f} "
                f"{result.images_per_second:9.1f} {minutes:5.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
