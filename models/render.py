"""Offline renders to H.264 mp4 through PyAV: keyframe tours, walks, grids, feedback rollouts.

The motion comes from models.latent_maths, the same code the live engine plays.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from models.canvas import FILLS, canvas_size, effective_fill, frame_yuv
from models.catalog import resolve_model
from models.checkpoint import LoadedModel
from models.dataset import DatasetConfig, decode
from models.framing import fit_square
from models.images import make_grid, write_png
from models.keyframe_bank import BankError, read_banks
from models.latent_maths import EASINGS, Wander, ease, interpolate, seed_latent
from models.pixels import to_uint8
from models.sampling import (
    DEFAULT_SAMPLING,
    NOISE_MODES,
    Sampling,
    check_sampling,
    generate,
    is_stylegan,
    map_to_w,
    nvidia_uint8,
    parse_seed_range,
    synthesize_w,
)

logger = logging.getLogger(__name__)


class RenderError(ValueError):
    """A render that cannot be made: wrong model kind, bad start frame, existing output."""


class Mp4Writer:
    """H.264 (yuv420p) mp4 writer fed with (H, W, 3) uint8 frames."""

    def __init__(self, path: Path, *, fps: int, width: int, height: int, crf: int = 18) -> None:
        if width % 2 or height % 2:
            raise RenderError(f"{path}: H.264 needs even sizes, got {width}x{height}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def write_yuv(self, planes: np.ndarray) -> None:
        """Encode one (H * 3 // 2, W) uint8 yuv420p frame, as models.pixels.to_yuv420 makes it."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(planes), format="yuv420p")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tour_latents(
    keyframes: Tensor,
    *,
    frames_per_step: int,
    interp: str = "slerp",
    easing: str = "smooth",
    loop: bool = True,
    centre: Tensor | None = None,
) -> Iterator[Tensor]:
    """Latents visiting each keyframe (K, D) in turn, eased, back to the first when looping.

    `centre`: what slerp turns about (a StyleGAN's w_avg, as the live engine does).
    """
    k = keyframes.shape[0]
    steps = k if loop else k - 1
    for i in range(steps):
        a, b = keyframes[i], keyframes[(i + 1) % k]
        for f in range(frames_per_step):
            t = ease(easing, f / frames_per_step)
            yield interpolate(a, b, t, mode=interp, centre=centre)
    if not loop:
        yield keyframes[-1]


def walk_latents(
    *, z_dim: int, seed: int, seconds: float, fps: int, speed: float = 1.0
) -> Iterator[Tensor]:
    """A Wander through latent space, sampled at the frame rate."""
    wander = Wander(z_dim=z_dim, seed=seed)
    for i in range(round(seconds * fps)):
        yield wander.at(i / fps * speed)


def render_latents(
    model: LoadedModel,
    latents: Iterator[Tensor],
    out: Path,
    *,
    fps: int,
    total: int,
    size: int | tuple[int, int] | None = None,
    fill: str = "native",
    sampling: Sampling = DEFAULT_SAMPLING,
    space: str = "z",
) -> int:
    """Generate one frame per latent (z, or a StyleGAN's w when space="w") and write them.

    `size`: the canvas (width, height), one number for a square, None for the
    model's own; `fill`: how the picture fills it (models.canvas).
    """
    require(model, "unconditional")
    check_sampling(model, sampling)
    width, height = canvas_of(size, model.resolution)
    bar = tqdm(total=total, desc="render", unit="frames")
    with Mp4Writer(out, fps=fps, width=width, height=height) as writer:
        for planes in latent_frames(
            model, latents, size=(width, height), fill=fill, sampling=sampling, space=space
        ):
            writer.write_yuv(planes)
            bar.update()
    bar.close()
    return writer.frames


def canvas_of(size: int | tuple[int, int] | None, resolution: int) -> tuple[int, int]:
    """(width, height) of a render's size: a pair, one number (a square), or None/0 (native)."""
    if size is None:
        return (resolution, resolution)
    if isinstance(size, int):
        return canvas_size((size, size), resolution)
    return canvas_size(size, resolution)


def latent_frames(
    model: LoadedModel,
    latents: Iterator[Tensor],
    *,
    size: int | tuple[int, int],
    fill: str = "native",
    sampling: Sampling = DEFAULT_SAMPLING,
    space: str = "z",
) -> Iterator[np.ndarray]:
    """The yuv420p frame (h * 3 // 2, w) of each latent, as the live engine makes it."""
    device = next(model.module.parameters()).device
    width, height = canvas_of(size, model.resolution)
    fill = effective_fill(fill, model.module)
    aspect = width / height if fill == "native" else 1.0
    for latent in latents:
        batch = latent.reshape(1, -1).to(device)
        with torch.no_grad():
            if space == "w":
                image = synthesize_w(model, batch, sampling, aspect)
            else:
                image = generate(model, batch, sampling, aspect)
            yield live_frame(image, (width, height), fill)


def render_tour(
    model: LoadedModel,
    out: Path,
    *,
    keyframes: Tensor,
    frames_per_step: int,
    interp: str = "slerp",
    easing: str = "smooth",
    loops: int = 1,
    fps: int = 25,
    size: int | tuple[int, int] | None = None,
    fill: str = "native",
    sampling: Sampling = DEFAULT_SAMPLING,
    space: str | None = None,
) -> int:
    """A looping tour of keyframes (K, z_dim) to mp4; returns the frame count.

    A StyleGAN tours in W, as it plays live: the keyframes are mapped once
    (untruncated), blended in W, and truncated per frame. Keyframes already in
    W (space="w", a show's) are toured as they are.
    """
    if space is None and is_stylegan(model):
        with torch.no_grad():
            device = next(model.module.parameters()).device
            keyframes = map_to_w(model, keyframes.to(device), sampling).cpu()
        space = "w"
    space = space or "z"
    module: Any = model.module
    centre = module.mapping.w_avg.detach().float().cpu() if space == "w" else None

    def latents() -> Iterator[Tensor]:
        for _ in range(loops):
            yield from tour_latents(
                keyframes,
                frames_per_step=frames_per_step,
                interp=interp,
                easing=easing,
                centre=centre,
            )

    total = loops * keyframes.shape[0] * frames_per_step
    return render_latents(
        model,
        latents(),
        out,
        fps=fps,
        total=total,
        size=size,
        fill=fill,
        sampling=sampling,
        space=space,
    )


def render_walk(
    model: LoadedModel,
    out: Path,
    *,
    seconds: float,
    fps: int = 25,
    speed: float = 1.0,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    fill: str = "native",
    sampling: Sampling = DEFAULT_SAMPLING,
    anchor: int | None = None,
) -> int:
    """A smooth latent walk (the live engine's wander) to mp4; `anchor`: drift around that seed."""
    z_dim = latent_size(model)
    latents = walk_latents(z_dim=z_dim, seed=seed, seconds=seconds, fps=fps, speed=speed)
    if anchor is not None:
        centre = seed_latent(anchor, z_dim)
        latents = (around(centre, z) for z in latents)
    return render_latents(
        model,
        latents,
        out,
        fps=fps,
        total=round(seconds * fps),
        size=size,
        fill=fill,
        sampling=sampling,
    )


ANCHOR_ANGLE = 0.35  # radians: how far a seed's cell drifts from the seed's own picture


def around(centre: Tensor, drift: Tensor) -> Tensor:
    """A point near `centre` on the Gaussian shell: cos(a) * centre + sin(a) * drift."""
    return math.cos(ANCHOR_ANGLE) * centre + math.sin(ANCHOR_ANGLE) * drift


def render_grid(
    model: LoadedModel,
    out: Path,
    *,
    rows: int,
    columns: int,
    seconds: float,
    fps: int = 25,
    speed: float = 1.0,
    seed: int = 0,
    seeds: list[int] | None = None,
    sampling: Sampling = DEFAULT_SAMPLING,
) -> int:
    """An animated grid of fakes, each cell wandering on its own seed.

    With `seeds`, cell i drifts around seed i's own picture (the "fakes grid").
    """
    require(model, "unconditional")
    check_sampling(model, sampling)
    z_dim = latent_size(model)
    cells = len(seeds) if seeds else rows * columns
    wanders = [Wander(z_dim=z_dim, seed=seed + i) for i in range(cells)]
    centres = [seed_latent(s, z_dim) for s in seeds] if seeds else None
    pad = 2
    r = model.resolution
    width, height = columns * (r + pad) + pad, rows * (r + pad) + pad
    width, height = width + width % 2, height + height % 2
    n = round(seconds * fps)
    device = next(model.module.parameters()).device
    bar = tqdm(total=n, desc="render", unit="frames")
    with Mp4Writer(out, fps=fps, width=width, height=height) as writer, torch.no_grad():
        for i in range(n):
            drift = [w.at(i / fps * speed) for w in wanders]
            if centres is not None:
                drift = [around(c, d) for c, d in zip(centres, drift, strict=True)]
            z = torch.stack(drift).to(device)
            grid = make_grid(rgb_tensor(generate(model, z, sampling)), columns=columns, pad=pad)
            frame = np.zeros((height, width, 3), np.uint8)
            frame[: grid.shape[0], : grid.shape[1]] = grid
            writer.write(frame)
            bar.update()
    bar.close()
    return writer.frames


def render_feedback(
    model: LoadedModel,
    out: Path,
    *,
    start: np.ndarray,
    seconds: float,
    fps: int = 25,
    mix: float = 1.0,
) -> int:
    """pix2pix rollout: each output becomes the next input, from a start frame (R, R, 3) uint8."""
    require(model, "image2image")
    r = model.resolution
    device = next(model.module.parameters()).device
    x = torch.from_numpy(fit_square(start, size=r, fit="crop")).permute(2, 0, 1)[None].float()
    x = (x / 127.5 - 1).to(device)  # (1, 3, R, R)
    n = round(seconds * fps)
    bar = tqdm(total=n, desc="render", unit="frames")
    with Mp4Writer(out, fps=fps, width=r, height=r) as writer, torch.no_grad():
        for _ in range(n):
            writer.write(to_uint8(x)[0])
            x = mix * model.module(x) + (1 - mix) * x
            bar.update()
    bar.close()
    return writer.frames


def render_images(
    model: LoadedModel, outdir: Path, *, seeds: list[int], sampling: Sampling = DEFAULT_SAMPLING
) -> list[Path]:
    """One PNG per seed, named and drawn as NVIDIA's gen_images.py does (seed0042.png)."""
    require(model, "unconditional")
    check_sampling(model, sampling)
    z_dim = latent_size(model)
    device = next(model.module.parameters()).device
    if is_stylegan(model):
        from models.sampling import apply_transform

        apply_transform(model, sampling)
    written = []
    bar = tqdm(total=len(seeds), desc="images", unit="images")
    with torch.no_grad():
        for seed in seeds:
            z = seed_latent(seed, z_dim)[None].to(device)
            image = nvidia_uint8(generate(model, z, sampling))[0]  # (H, W, C)
            path = outdir / f"seed{seed:04d}.png"
            write_png(path, image)
            written.append(path)
            bar.update()
    bar.close()
    return written


def live_frame(image: Tensor, size: int | tuple[int, int], fill: str = "stretch") -> np.ndarray:
    """A generator picture (1, C, h, w) as the live engine sends it at `size`: yuv420p uint8.

    The same framing (models.canvas.place_boxed) and conversion (models.pixels.to_yuv420:
    colour at the generator's size, then each plane scaled once) make the live
    frame, so a render at the live size is the live frame. `size`: (width,
    height) or one number for a square.
    """
    width, height = (size, size) if isinstance(size, int) else size
    return frame_yuv(rgb_tensor(image.float()), width, height, fill).cpu().numpy()  # (h·3/2, w)


def rgb(images: np.ndarray) -> np.ndarray:
    """(B, H, W, 1 | 3) uint8 -> (B, H, W, 3): grey models shown in colour frames."""
    return images if images.shape[-1] == 3 else np.repeat(images[..., :1], 3, axis=-1)


def rgb_tensor(images: Tensor) -> Tensor:
    """(B, 1 | 3, H, W) -> (B, 3, H, W)."""
    return images if images.shape[1] == 3 else images[:, :1].expand(-1, 3, -1, -1)


def require(model: LoadedModel, kind: str) -> None:
    """Raise RenderError unless the model is of this kind."""
    if model.kind != kind:
        raise RenderError(f"{model.path}: is a {model.kind} model; this render needs {kind}")


def latent_size(model: LoadedModel) -> int:
    """z_dim of an unconditional model; RenderError for any other kind."""
    require(model, "unconditional")
    if model.z_dim is None:
        raise RenderError(f"{model.path}: has no latent size")
    return model.z_dim


def first_frame(path: Path) -> np.ndarray:
    """The first frame of a video, or a .npy picture (H, W, 3) uint8."""
    if path.suffix == ".npy":
        image = np.load(path, allow_pickle=False)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise RenderError(f"{path}: expected an (H, W, 3) uint8 array")
        return image
    for _, _, image in decode(path, DatasetConfig()):
        return image
    raise RenderError(f"{path}: no frames")


def render_from_args(args: argparse.Namespace) -> int:
    """Run the render mode the command line asked for; returns the frame count."""
    out = Path(args.out)
    if out.exists() and not args.force:
        raise RenderError(f"{out}: already exists (use --force to overwrite)")
    # A feedback rollout iterates the shipped next-frame model, as live feedback does.
    roles = {"feedback": "feedback", "react": "image2image"}
    role = roles.get(args.mode, "unconditional")
    model = resolve_model(args.model or "", args.device, kind=role)
    if args.mode == "react":
        from models.reactions import render_react

        return render_react(
            model, Path(args.input), out, loop=args.loop, fit=args.fit, size=args.size
        )
    sampling = sampling_from_args(args)
    if args.mode == "tour":
        z_dim = latent_size(model)
        space = None
        tour: dict[str, Any] = {"interp": "slerp", "ease": "smooth", "frames_per_step": 50}
        if args.show:
            if args.seeds:
                raise RenderError("tour: give --seeds or --show, not both")
            keyframes, space, tour = show_tour(Path(args.show), model, fps=args.fps)
        else:
            seeds = (
                parse_seed_range(args.seeds)
                if args.seeds
                else list(range(args.seed, args.seed + (args.keyframes or 8)))
            )
            keyframes = torch.stack([seed_latent(s, z_dim) for s in seeds])
        if args.keyframes:
            keyframes = keyframes[: args.keyframes]
        return render_tour(
            model,
            out,
            keyframes=keyframes,
            frames_per_step=args.frames_per_step or int(tour["frames_per_step"]),
            interp=args.interp or str(tour["interp"]),
            easing=args.ease or str(tour["ease"]),
            loops=args.loops,
            fps=args.fps,
            size=size_arg(args.size),
            fill=args.fill,
            sampling=sampling,
            space=space,
        )
    if args.mode == "walk":
        anchors = parse_seed_range(args.seeds) if args.seeds else None
        if anchors is not None and len(anchors) != 1:
            raise RenderError("walk --seeds takes one seed to drift around")
        return render_walk(
            model,
            out,
            seconds=args.seconds,
            fps=args.fps,
            speed=args.speed,
            seed=args.seed,
            size=size_arg(args.size),
            fill=args.fill,
            sampling=sampling,
            anchor=anchors[0] if anchors else None,
        )
    if args.mode == "grid":
        cells = parse_seed_range(args.seeds) if args.seeds else None
        rows, columns = args.rows or 4, args.columns or 4
        if cells is not None:
            # One cell per seed; a near-square layout unless --columns says otherwise.
            columns = args.columns or math.ceil(math.sqrt(len(cells)))
            rows = math.ceil(len(cells) / columns)
        return render_grid(
            model,
            out,
            rows=rows,
            columns=columns,
            seconds=args.seconds,
            fps=args.fps,
            speed=args.speed,
            seed=args.seed,
            seeds=cells,
            sampling=sampling,
        )
    start = first_frame(Path(args.start))
    return render_feedback(
        model, out, start=start, seconds=args.seconds, fps=args.fps, mix=args.mix
    )


def show_tour(path: Path, model: LoadedModel, *, fps: int) -> tuple[Tensor, str, dict[str, Any]]:
    """The keyframes (K, dim) a show stored live for `model`, their space, and its tour settings.

    The live sequence visits keyframes 1..`/sequence/length`, one `/sequence/step`
    each, with the show's interpolation and easing; so does this tour.
    """
    try:
        banks = read_banks(path)
    except BankError as exc:
        raise RenderError(str(exc)) from exc
    if banks is None:
        raise RenderError(f"{path}: no such show file")
    entry = banks.get(model.name)
    if entry is None:
        stored = ", ".join(sorted(banks)) or "none"
        raise RenderError(f"{path}: no keyframes for model {model.name!r} (stored: {stored})")
    space = str(entry.get("space", "z"))
    wanted = "w" if is_stylegan(model) else "z"
    keyframes = torch.tensor(entry["keyframes"], dtype=torch.float32)  # (K, dim)
    dim = int(getattr(model.module, "w_dim", 0)) if wanted == "w" else latent_size(model)
    if space != wanted or keyframes.shape[1] != dim:
        raise RenderError(
            f"{path}: {model.name}'s keyframes are {keyframes.shape[1]} numbers in {space}; "
            f"this {model.arch} plays {dim} in {wanted}"
        )
    settings = entry.get("settings") or {}

    def setting(address: str, default: object) -> Any:
        value = settings.get(address)
        return value[0] if isinstance(value, list) and len(value) == 1 else default

    length = int(setting("/sequence/length", keyframes.shape[0]))
    step = float(setting("/sequence/step", 2.0))
    if setting("/keyframe/unit", "seconds") == "beats":
        step *= 60.0 / float(setting("/tempo/bpm", 120.0))
    tour = {
        "interp": setting("/keyframe/interp", "slerp"),
        "ease": setting("/keyframe/ease", "smooth"),
        "frames_per_step": max(1, round(step * fps)),
    }
    return keyframes[: max(1, length)], space, tour


def sampling_from_args(args: argparse.Namespace) -> Sampling:
    """--trunc, --class, --noise-mode, --translate, --rotate as a Sampling."""
    translate = (0.0, 0.0)
    text = getattr(args, "translate", None)
    if text:
        try:
            x, y = (float(v) for v in str(text).split(","))
        except ValueError as exc:
            raise RenderError(f"--translate: expected X,Y, got {text!r}") from exc
        translate = (x, y)
    return Sampling(
        truncation_psi=float(getattr(args, "trunc", 1.0)),
        class_index=getattr(args, "class_index", None),
        noise_mode=getattr(args, "noise_mode", "const"),
        translate=translate,
        rotate=float(getattr(args, "rotate", 0.0)),
    )


def add_sampling_flags(p: argparse.ArgumentParser, *, transform: bool = False) -> None:
    """gen_images.py's flags: --trunc, --class, --noise-mode (and --translate, --rotate)."""
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (StyleGAN)")
    p.add_argument("--class", dest="class_index", type=int, help="class (conditional StyleGAN)")
    p.add_argument("--noise-mode", dest="noise_mode", choices=NOISE_MODES, default="const")
    if transform:
        p.add_argument("--translate", default="0,0", help="X,Y input translation (StyleGAN3)")
        p.add_argument("--rotate", type=float, default=0.0, help="degrees (StyleGAN3)")


def images_from_args(args: argparse.Namespace) -> list[Path]:
    """ganvj render images: load, check, write the PNGs."""
    model = resolve_model(args.model or "", args.device)
    return render_images(
        model,
        Path(args.outdir),
        seeds=parse_seed_range(args.seeds),
        sampling=sampling_from_args(args),
    )


def canvas_flags(p: argparse.ArgumentParser) -> None:
    """--size WxH and --fill, as `serve` takes them (render.size, render.fill)."""
    p.add_argument(
        "--size",
        help='the canvas: "WxH" (1920x1080) or one number for a square (default: the model\'s)',
    )
    p.add_argument(
        "--fill",
        choices=FILLS,
        default="native",
        help="how the picture fills the canvas (default native: the network paints its shape)",
    )


def size_arg(text: str | None) -> tuple[int, int] | None:
    """--size as (width, height); None for the model's own square. RenderError if malformed."""
    if text is None:
        return None
    parts = str(text).lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    ok = len(parts) == 2 and all(p.isdigit() for p in parts)
    width, height = (int(parts[0]), int(parts[1])) if ok else (0, 0)
    if width == height == 0 and ok:
        return None
    if not (ok and 16 <= width <= 8192 and 16 <= height <= 8192 and not width % 2 + height % 2):
        raise RenderError(
            f'--size {text!r}: expected "WxH" with even sides from 16 to 8192 (1920x1080), '
            "one such number for a square, or 0 (the model's own)"
        )
    return (width, height)


def add_parsers(sub: Any, handler: Any) -> None:
    """Add render tour | walk | grid | feedback | react to the render parser."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("out", help="output .mp4")
        p.add_argument(
            "--model",
            help="a model's name (see `ganvj models`) or file "
            "(default: the shipped default of the right kind)",
        )
        p.add_argument("--fps", type=int, default=25)
        p.add_argument("--device", default="cpu")
        p.add_argument("--force", action="store_true", help="overwrite out")
        p.set_defaults(func=handler)

    p = sub.add_parser("tour", help="loop through latent keyframes")
    common(p)
    p.add_argument(
        "--seeds", help="keyframe seeds, comma-separated (default: --keyframes from --seed)"
    )
    p.add_argument(
        "--show",
        help="tour the keyframes stored live in this show file (the server's show.json or an "
        "export) for --model; its sequence length, step, interp and ease unless given",
    )
    p.add_argument("--keyframes", type=int, help="how many keyframes (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--frames-per-step", dest="frames_per_step", type=int, help="default 50 (--show: its step)"
    )
    p.add_argument("--interp", choices=("lerp", "slerp"), help="default slerp")
    p.add_argument("--ease", choices=EASINGS, help="default smooth")
    p.add_argument("--loops", type=int, default=1)
    canvas_flags(p)
    add_sampling_flags(p)

    p = sub.add_parser("walk", help="a smooth looping latent walk")
    common(p)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    canvas_flags(p)
    p.add_argument("--seeds", help="one seed to drift around (StyleGAN notebooks' numbering)")
    add_sampling_flags(p)

    p = sub.add_parser("grid", help="an animated grid of fakes")
    common(p)
    p.add_argument("--rows", type=int, help="default 4 (with --seeds: as many as needed)")
    p.add_argument("--columns", type=int, help="default 4 (with --seeds: a near square)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", help="one cell per seed, e.g. 1-16 (the fakes grid)")
    add_sampling_flags(p)

    p = sub.add_parser("react", help="pix2pix over a video: same frame rate, frames and audio")
    p.add_argument("input", help="input video (its audio is carried over, not re-encoded)")
    p.add_argument("out", help="output .mp4 (the input's frame rate)")
    p.add_argument("--model", help="pix2pix model file (default: the shipped one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="overwrite out")
    p.set_defaults(func=handler)
    p.add_argument(
        "--loop", type=float, default=0.0, help="crossfade this many seconds end into start"
    )
    p.add_argument("--fit", choices=("letterbox", "crop"), help="default: as the model trained")
    p.add_argument("--size", type=int, help="output size (default: the model's)")

    p = sub.add_parser("feedback", help="pix2pix rollout: output fed back as input")
    common(p)
    p.add_argument(
        "--start", required=True, help="start frame: a video (first frame) or .npy picture"
    )
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument(
        "--mix", type=float, default=1.0, help="blend of output into the next input 0..1"
    )
