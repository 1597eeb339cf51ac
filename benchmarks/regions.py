"""What per-region latents cost per frame: 1, 2 and 3 regions on a native wide canvas.

.venv/bin/python benchmarks/regions.py [--size 1920x1080] [--resolution 256]
    [--rounds 7] [--threads 1] [--device auto]

For the shipped default (DCGAN 128) and a synthetic StyleGAN2 (NVIDIA's
channel counts, random weights: the weights do not change the speed), the
generator's wide picture as the engine asks for it on a `native` canvas of
this size (the model's own height, the canvas's aspect; the one resize to
W x H inside the colour conversion is the same for any region count and is
left out), with 1 region (today's render, models.latent_space), then 2 and 3
regions each holding its own seed (models.regions). Beside each: the ratio
to one region, and what K separate renders cost (running the whole network
once per region, the other way to paint K latents). fp32, batch 1, one CPU
thread by default, as the render thread has on a two-core machine; every
variant is timed once per round, round after round, and the medians printed.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import Tensor

from models.canvas import aspect_kwargs
from models.catalog import default_model_path, load_model
from models.checkpoint import LoadedModel
from models.device import cpu_threads, pick_device
from models.latent_space import Pose, space_for
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from models.regions import render_regions
from server.bench.forward import SYNTHETIC, synthetic
from server.config import parse_size

REGION_COUNTS = (1, 2, 3)


def stylegan2(resolution: int) -> LoadedModel:
    """A StyleGAN2 with official channel counts and random weights (stylegan2-ada's paper256
    config below 512 px: cbase 16384), for a quicker run than 512 px on a CPU."""
    if f"stylegan2-{resolution}" in SYNTHETIC:
        return synthetic(f"stylegan2-{resolution}")
    torch.manual_seed(0)
    config = StyleGAN2Config(
        img_resolution=resolution, channel_base=16384, channel_max=512, mapping_layers=8
    )
    return LoadedModel(
        name=f"stylegan2-{resolution}",
        path=Path(f"stylegan2-{resolution}.synthetic"),
        arch="stylegan2",
        kind="unconditional",
        module=StyleGAN2Generator(config=config).eval().requires_grad_(False),
        resolution=resolution,
        z_dim=config.z_dim,
        metadata={},
    )


def interleaved(fns: list[Callable[[], object]], rounds: int, device: torch.device) -> list[float]:
    """Median ms of each fn, timed one after another round by round (a busy machine slows
    them alike), after one warm-up call each."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        for fn in fns:
            fn()
        sync()
        for _ in range(rounds):
            for i, fn in enumerate(fns):
                t = time.perf_counter()
                fn()
                sync()
                times[i].append(1000 * (time.perf_counter() - t))
    return [statistics.median(t) for t in times]


def rows(model: LoadedModel, aspect: float, *, device: torch.device, rounds: int) -> list[str]:
    """One row per region count: ms per frame, against one region and K separate renders."""
    model.module.to(device).eval()
    space = space_for(model, model.module)
    poses = [Pose(latent) for latent in space.seeds([1, 2, 3])]
    with torch.inference_mode():
        height, width = render_regions(space, poses[:1], aspect).shape[-2:]
    together = [partial(render_regions, space, poses[:k], aspect) for k in REGION_COUNTS]

    def separate(count: int) -> list[Tensor]:
        return [space.render(p, **aspect_kwargs(aspect)) for p in poses[:count]]

    fns: list[Callable[[], object]] = [
        *together,
        *(partial(separate, k) for k in REGION_COUNTS[1:]),
    ]
    medians = interleaved(fns, rounds, device)
    one = medians[0]
    label = f"{model.name} ({model.arch}, {model.resolution} px)"
    out = []
    for i, count in enumerate(REGION_COUNTS):
        separate_ms = medians[len(REGION_COUNTS) + i - 1] if i else one
        out.append(
            f"{label:36} {f'{width}x{height}':>9} {count:7} {medians[i]:10.1f} "
            f"{medians[i] / one:7.2f}x {separate_ms:12.1f} {separate_ms / one:7.2f}x"
        )
        label = ""
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1920x1080", help="the canvas, WxH (default 1920x1080)")
    parser.add_argument(
        "--resolution",
        type=int,
        default=256,
        choices=(256, 512, 1024),
        help="the synthetic StyleGAN2's (default 256; 512 and 1024: NVIDIA's official configs)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed frames of each (median)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: cores - 1)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    args = parser.parse_args(argv)
    width, height = parse_size(args.size)
    device = pick_device(args.device)
    torch.set_num_threads(cpu_threads(args.threads))
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
        f"canvas {width}x{height} native, fp32, batch 1"
    )
    print(
        f"{'model':36} {'painted':>9} {'regions':>7} {'ms/frame':>10} {'vs one':>8} "
        f"{'K renders ms':>12} {'vs one':>8}"
    )
    for model in (load_model(default_model_path()), stylegan2(args.resolution)):
        for line in rows(model, width / height, device=device, rounds=args.rounds):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
