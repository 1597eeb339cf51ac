"""Generator forward speed at batch 1: fps and ms per frame, exact fp32 and the fast path.

ganvj bench forward [--model FILE | --synthetic NAME] [--seconds 5] [--device auto]
With neither, every shipped default model. `--synthetic` builds an official
configuration (channel counts of NVIDIA's configs) with random weights, so GPU
figures need no user's file. A StyleGAN frame is mapping + synthesis, as
NVIDIA's visualizer renders one; both paths are measured in one run and the
ratio printed. Then, on the exact path: two decks against one (a second copy
of the model, the two pictures mixed at the crossfader's middle), the mixer
alone per frame in every blend mode and with deck b idle (at the model's size,
where the engine mixes, and at 512 px),
and a bend (rotate 45) at the first and at the last synthesis layer against
the unbent frame.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from models.bending import Bender
from models.catalog import DEFAULT_FILES, default_model_path, load_model
from models.checkpoint import LoadedModel
from models.device import cpu_threads, pick_device
from models.fastpath import disable, enable
from models.latent_maths import seed_latent
from models.mixing import MODES, Workspace, mix
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from models.nets.stylegan3 import SYNTHETIC_RESOLUTIONS, StyleGAN3Generator, synthetic_config
from models.sampling import is_stylegan

GOAL_FPS = 25.0
MIXER_GOAL_MS, MIXER_GOAL_SIDE = 1.0, 512  # issue 20: the mixer under 1 ms at 512 px
MIN_RUNS = 2  # a slow model (seconds a frame on a CPU) still gets more than one
MAX_RUNS = 10_000


def synthetic(name: str) -> LoadedModel:
    """An official StyleGAN configuration with random weights (the weights do not change speed)."""
    torch.manual_seed(0)
    module: Any
    if name in ("stylegan2-512", "stylegan2-1024"):
        # stylegan3's --cfg=stylegan2 (and stylegan2-ada's paper configs): cbase 32768,
        # cmax 512, 8 mapping layers, fp16 in the 4 highest resolutions, clamp 256.
        config: Any = StyleGAN2Config(
            img_resolution=int(name.split("-")[1]),
            channel_base=32768,
            channel_max=512,
            mapping_layers=8,
            num_fp16_res=4,
            conv_clamp=256,
        )
        module, arch = StyleGAN2Generator(config=config), "stylegan2"
    elif name.startswith("stylegan3-"):
        # stylegan3's train.py for --cfg=stylegan3-t / -r (-r: twice the channels, 1x1
        # convolutions, radial filters)
        config = synthetic_config(name)
        module, arch = StyleGAN3Generator(config=config), "stylegan3"
    else:
        raise SystemExit(f"unknown --synthetic {name!r}: {', '.join(SYNTHETIC)}")
    return LoadedModel(
        name=name,
        path=Path(f"{name}.synthetic"),
        arch=arch,
        kind="unconditional",
        module=module.eval().requires_grad_(False),
        resolution=config.img_resolution,
        z_dim=config.z_dim,
        metadata={},
    )


SYNTHETIC = (
    "stylegan2-512",
    "stylegan2-1024",
    *(f"stylegan3-{v}-{r}" for v in ("t", "r") for r in SYNTHETIC_RESOLUTIONS),
)


def frame_fn(model: LoadedModel, device: torch.device) -> Callable[[], Any]:
    """One batch-1 frame of this model, as the engine renders one."""
    module: Any = model.module
    if model.kind == "unconditional" and model.z_dim is not None:
        z = seed_latent(0, model.z_dim)[None].to(device)  # (1, z_dim)
        if is_stylegan(model):
            c = torch.zeros([1, module.c_dim], device=device) if module.c_dim else None
            if c is not None:
                c[:, 0] = 1
            return lambda: module.synthesis(module.mapping(z, c), noise_mode="const")
        return lambda: module(z)
    x = torch.rand(1, 3, model.resolution, model.resolution, device=device) * 2 - 1
    return lambda: module(x)


def measure(fn: Callable[[], Any], *, seconds: float, device: torch.device) -> tuple[float, float]:
    """(frames per second, median ms) of fn, after warm-up; bounded in time and count."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        fn()  # warm-up: allocations, lazy init, autotuning
        sync()
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < MAX_RUNS and (
            len(times) < MIN_RUNS or time.perf_counter() - start < seconds
        ):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
    times.sort()
    return len(times) / sum(times), 1000 * times[len(times) // 2]


def bench_model(
    model: LoadedModel, *, device: torch.device, seconds: float, compile: bool
) -> list[str]:
    """Table rows: the exact path, then the fast path (where it differs), with the ratio."""
    model.module.to(device).eval()
    fn = frame_fn(model, device)
    fps, ms = measure(fn, seconds=seconds, device=device)
    label = f"{model.name} ({model.arch}, {model.resolution} px)"
    rows = [row(label, "fp32", fps, ms)]
    if is_stylegan(model):
        with torch.inference_mode():
            fast = enable(model.module, device, compile=compile, warmup=lambda m: fn())
        if fast.describe() != "fp32":
            fast_fps, fast_ms = measure(fn, seconds=seconds, device=device)
            rows.append(row(label, fast.describe(), fast_fps, fast_ms))
            rows.append(f"{'':44} fast / fp32 = {fast_fps / fps:.2f}x")
        else:
            rows.append(f"{'':44} fast path = fp32 here ({'; '.join(fast.notes)})")
        disable(model.module)
    return rows


def deck_rows(model: LoadedModel, *, device: torch.device, seconds: float) -> list[str]:
    """Rows for two decks against one, the mixer per frame, and a bend early and late."""
    label = f"{model.name} ({model.arch}, {model.resolution} px)"
    fn = frame_fn(model, device)
    one_fps, one_ms = measure(fn, seconds=seconds, device=device)
    twin = copy.deepcopy(model)  # deck b: its own copy, as the engine loads one
    fn_b = frame_fn(twin, device)
    work = Workspace()
    two_fps, two_ms = measure(
        lambda: mix(fn(), fn_b(), 0.5, "linear", "normal", work), seconds=seconds, device=device
    )
    rows = [row(label, "two decks, crossfade 0.5", two_fps, two_ms)]
    rows.append(f"{'':44} two decks / one = {two_fps / one_fps:.2f}x ({one_ms:.2f} ms alone)")
    with torch.inference_mode():
        picture = fn()
    rows += mixer_rows(sorted({picture.shape[-1], 512}), device=device, seconds=seconds)
    bender = Bender(twin.module)
    unbent_fps, _ = measure(fn_b, seconds=seconds, device=device)  # now, as load drifts
    for layer in sorted({1, len(bender.layers)}):
        bender.set({(layer, 0): {"rotate": (45.0,)}})
        fps, ms = measure(fn_b, seconds=seconds, device=device)
        bender.clear()
        rows.append(row(label, f"bend layer {layer} rotate 45", fps, ms))
        rows.append(f"{'':44} bent / unbent = {fps / unbent_fps:.2f}x")
    return rows


def mixer_rows(sides: list[int], *, device: torch.device, seconds: float) -> list[str]:
    """The mixer alone per frame at each side: every blend mode mid-crossfade, and deck b idle.

    Back to back, so warm in the caches; a mix in the engine follows a forward and
    starts cold: benchmarks/mixer.py measures both on the CPU.
    """
    rows = []
    work = Workspace()
    for side in sides:
        a = torch.rand(1, 3, side, side, device=device) * 2 - 1
        b = torch.rand(1, 3, side, side, device=device) * 2 - 1
        costs = {}
        for mode in MODES:
            mixing = partial(mix, a, b, 0.5, "linear", mode, work)
            costs[mode] = measure(mixing, seconds=seconds / 16, device=device)[1]
        worst = max(costs, key=costs.__getitem__)
        verdict = f"worst {worst} {costs[worst]:.3f}"
        if side == MIXER_GOAL_SIDE:
            ok = costs[worst] < MIXER_GOAL_MS
            verdict += f": {'ok' if ok else 'over'} (goal < {MIXER_GOAL_MS:g} ms)"
        rows.append(f"{'':44} mixer at {side} px, ms per frame (warm):")
        rows.append(f"{'':44}   " + ", ".join(f"{m} {ms:.3f}" for m, ms in costs.items()))
        rows.append(f"{'':44}   {verdict}")
        idle = partial(mix, a, b, 0.0, "linear", "normal", work)  # deck b idle: a itself
        idle_ms = measure(idle, seconds=seconds / 16, device=device)[1]
        rows.append(f"{'':44}   deck b idle (crossfade 0): {1000 * idle_ms:.2f} µs per frame")
    return rows


def row(label: str, path: str, fps: float, ms: float) -> str:
    ok = "ok" if fps >= GOAL_FPS else "below 25"
    return f"{label:44} {path:26} {fps:8.2f} {ms:10.2f}  {ok}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganvj bench forward", description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a model file (.safetensors or StyleGAN .pkl)")
    source.add_argument("--synthetic", choices=SYNTHETIC, help="an official config, random weights")
    parser.add_argument("--seconds", type=float, default=5.0, help="per path (default 5)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: cores - 1)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile (CUDA)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    torch.set_num_threads(cpu_threads(args.threads))
    if args.synthetic:
        models = [synthetic(args.synthetic)]
    elif args.model:
        models = [load_model(Path(args.model))]
    else:
        models = [load_model(default_model_path(k)) for k in DEFAULT_FILES]
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
        f"batch 1, {args.seconds:g} s per path"
    )
    print(f"{'model':44} {'path':26} {'fps':>8} {'median ms':>10}  goal {GOAL_FPS:.0f} fps")
    for model in models:
        for line in bench_model(model, device=device, seconds=args.seconds, compile=args.compile):
            print(line)
        if model.kind == "unconditional":  # a deck plays a generator (pix2pix is a reaction)
            for line in deck_rows(model, device=device, seconds=args.seconds):
                print(line)
    return 0
