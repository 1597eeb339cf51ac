"""Training throughput (images/s) of each model at the shipped defaults' recipes.

Runs the real training loops for a few steps on a small procedural dataset,
then StyleGAN2 (the default recipe, batch 8) at 32, 64 and 128 px; with
`--synthetic` StyleGAN2 at 256 and 512 px on random pictures, for a GPU.

    .venv/bin/python benchmarks/train.py [--threads 2] [--steps 20] [--device cpu]
    .venv/bin/python benchmarks/train.py --only stylegan2 --synthetic --device cuda

`--phases` times each phase of a StyleGAN2 round on its own (G main, G path
length, D main, D R1; after a warm-up call) and amortises the regularisers over
their intervals, for the default network and a CPU-sized one at 32, 64 and 128
px, batch 8 (with `--synthetic`: ADA's 256 and 512 px networks, for a GPU):

    .venv/bin/python benchmarks/train.py --phases --threads 1 [--networks cpu-small]

`--augment-study DATASET` trains the CPU-sized StyleGAN2 at 32 px for `--steps`
rounds with each augmentation (none, diffaug, ada) on the dataset's first 90%
of frames, then reports how far D tells its training frames from the held-out
last 10% (ADA's overfitting measure) and the sample check's figures.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
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
from models.train_stylegan2 import (
    TRAIN_DEFAULTS,
    StyleGAN2Recipe,
    StyleGAN2Trainer,
    apply_precision,
    build_networks,
    default_configs,
    precision_for,
    train_stylegan2,
)

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
    parser.add_argument("--phases", action="store_true", help="StyleGAN2 phase timings")
    parser.add_argument("--repeats", type=int, default=2, help="--phases: timed calls per phase")
    parser.add_argument("--networks", help="--phases: only these rows, e.g. cpu-small,default")
    parser.add_argument("--augment-study", metavar="DATASET", help="compare augmentations")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    if args.augment_study:
        return augment_study(Path(args.augment_study), args)
    if args.phases:
        return stylegan2_table(args)
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


# name -> (recipe, {resolution: batch}); the default is `ganvj train stylegan2`'s network.
SG2_CPU = {
    "default": (StyleGAN2Recipe(), {32: 8, 64: 8, 128: 8}),
    "cpu-small": (
        StyleGAN2Recipe(z_dim=128, w_dim=128, channel_base=2048, channel_max=64),
        {32: 8, 64: 8, 128: 8},
    ),
}
# ADA's configuration at 256 (channel_base 16384, batch 16) and 512 px (32768, batch 8).
SG2_SYNTHETIC = {
    "ada-256": (StyleGAN2Recipe(), {256: 16}),
    "ada-512": (StyleGAN2Recipe(channel_base=32768), {512: 8}),
}


def stylegan2_table(args: argparse.Namespace) -> int:
    """Time each StyleGAN2 phase and print amortised images per second."""
    device = torch.device(args.device)
    configs = SG2_SYNTHETIC if args.synthetic else SG2_CPU
    rows = []
    wanted = args.networks.split(",") if args.networks else list(configs)
    for name, (recipe, sizes) in configs.items():
        if name not in wanted:
            continue
        for resolution, batch in sizes.items():
            times = stylegan2_phases(recipe, resolution, batch, device, args.repeats)
            per_round = (
                times["g_main"]
                + times["g_pl"] / recipe.pl_every
                + times["d_main"]
                + times["d_r1"] / recipe.r1_every
            )
            rows.append((name, resolution, batch, times, batch / per_round))
            print_row(*rows[-1])
    return 0


def print_row(name: str, res: int, batch: int, times: dict[str, float], rate: float) -> None:
    """One StyleGAN2 line: phase times in ms and the amortised rate."""
    if not hasattr(print_row, "header"):
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(
            f"{'network':10} {'px':>4} {'batch':>5} {'G main':>9} {'G pl':>9} {'D main':>9} "
            f"{'D R1':>9} {'images/s':>9}"
        )
        print_row.header = True  # type: ignore[attr-defined]
    ms = " ".join(f"{times[k] * 1000:>9.0f}" for k in ("g_main", "g_pl", "d_main", "d_r1"))
    print(f"{name:10} {res:>4} {batch:>5} {ms} {rate:>9.2f}", flush=True)


def stylegan2_phases(
    recipe: StyleGAN2Recipe, resolution: int, batch: int, device: torch.device, repeats: int
) -> dict[str, float]:
    """Seconds per call of each phase (after one warm-up call), on random pictures."""
    train = TrainConfig(batch_size=batch, lr=0.0025, beta1=0.0, beta2=0.99, device=str(device))
    g_config, d_config = default_configs(recipe, resolution=resolution, c_dim=0, batch=batch)
    nets = build_networks(g_config, d_config)
    for module in (nets.g, nets.g_ema, nets.d):
        module.to(device)
    trainer = StyleGAN2Trainer(
        nets, recipe=replace(recipe, augment="diffaug"), train=train, device=device,
        rng=torch.Generator().manual_seed(0),
    )  # fmt: skip
    precision = precision_for(device, train.amp)
    apply_precision(nets, precision)
    trainer.channels_last = precision.channels_last
    real = torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1
    phases = {
        "g_main": lambda: trainer.g_main(None),
        "g_pl": lambda: trainer.g_path_length(None),
        "d_main": lambda: trainer.d_main(real, None, None),
        "d_r1": lambda: trainer.d_r1(real, None),
    }
    times = {}
    for name, phase in phases.items():
        requires = nets.g if name.startswith("g") else nets.d
        nets.g.requires_grad_(requires is nets.g)
        nets.d.requires_grad_(requires is nets.d)
        phase()
        sync(device)
        started = time.perf_counter()
        for _ in range(repeats):
            phase()
        sync(device)
        times[name] = (time.perf_counter() - started) / repeats
    return times


def augment_study(dataset: Path, args: argparse.Namespace) -> int:
    """Train with each augmentation on 90% of the frames; D's view of the held-out 10%."""
    from models.checkpoint import read_tensors
    from models.dataset import load_dataset
    from models.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2DiscriminatorConfig

    frames = sorted(p for p in dataset.iterdir() if p.suffix == ".png")
    cut = int(len(frames) * 0.9)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, part in (("train", frames[:cut]), ("held", frames[cut:])):
            (root / name).mkdir()
            for frame in part:
                (root / name / frame.name).write_bytes(frame.read_bytes())
        for augment in ("none", "diffaug", "ada"):
            recipe = replace(SG2_CPU["cpu-small"][0], resolution=32, augment=augment, pl_weight=0)
            train = TrainConfig(
                steps=args.steps, batch_size=8, lr=0.0025, beta1=0.0, beta2=0.99,
                threads=args.threads, checkpoint_every=10**9, sample_every=10**9,
                log_every=10, mirror=True, seed=0,
            )  # fmt: skip
            started = time.monotonic()
            result = train_stylegan2(root / "train", root / augment, recipe=recipe, train=train)
            seconds = time.monotonic() - started
            meta, tensors = read_tensors(root / augment / "last.safetensors")
            d = StyleGAN2Discriminator(
                config=StyleGAN2DiscriminatorConfig(**meta["discriminator"])
            ).eval()
            prefix = "extra/disc."
            d.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if prefix in k})
            logits = {}
            for name in ("train", "held"):
                data = load_dataset(root / name, size=32)
                x = torch.from_numpy(np.array(data.images)).permute(0, 3, 1, 2).float()
                with torch.no_grad():
                    chunks = [b for b in x.split(32) if len(b) % 4 == 0]  # D groups of 4
                    logits[name] = torch.cat([d(b / 127.5 - 1) for b in chunks])
            rows.append((augment, seconds, result, logits))
    print(f"\n{args.steps} rounds at batch 8, 32 px, {cut} training frames (mirrored), "
          f"{len(frames) - cut} held out")  # fmt: skip
    print(f"{'augment':8} {'final p':>7} {'sign D(train)':>13} {'sign D(held)':>12} "
          f"{'D(train)-D(held)':>16} {'nearest rms':>11} {'colour gap':>10} "
          f"{'seconds':>8}")  # fmt: skip
    for augment, seconds, result, logits in rows:
        q = result.quality
        gap = float(logits["train"].mean() - logits["held"].mean())
        print(
            f"{augment:8} {result.losses.get('augment_p', 0):>7.3f} "
            f"{float(logits['train'].sign().mean()):>13.3f} "
            f"{float(logits['held'].sign().mean()):>12.3f} {gap:>16.3f} "
            f"{q['nearest_rms_mean']:>11.1f} {q['colour_mean_gap']:>10.1f} {seconds:>8.0f}"
        )
    return 0


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work (timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    sys.exit(main())
