"""Command-line subcommands of the models room: models, dataset, train, render."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import re
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from models.catalog import list_models, shown, user_models_dir, weights_dir
from models.checkpoint import CheckpointError
from models.dataset import DatasetConfig, DatasetError, build_dataset
from models.nets.dcgan import DCGANConfig
from models.nets.encoder import EncoderConfig
from models.nets.pix2pix import Pix2PixConfig
from models.procedural import SCENES, ProceduralConfig, write_procedural_video
from models.reactions import ReactError
from models.render import RenderError
from models.resolution import RESOLUTIONS, check_resolution
from models.train import (
    TrainConfig,
    TrainError,
    TrainResult,
    train_dcgan,
    train_encoder,
    train_pix2pix,
)
from models.train_stylegan2 import TRAIN_DEFAULTS, StyleGAN2Recipe

logger = logging.getLogger(__name__)

USER_ERRORS = (
    CheckpointError,
    DatasetError,
    TrainError,
    RenderError,
    ReactError,
    FileExistsError,
    FileNotFoundError,
    ValueError,
)


# TrainConfig's loss weights that only one model has; `train X --help` shows X's alone.
TRAIN_FLAGS_FOR = {
    "l1_weight": ("pix2pix",),
    "image_weight": ("encoder",),
    "real_weight": ("encoder",),
    "feature_weight": ("encoder",),
}


def fail(message: str) -> int:
    """Print one line to stderr and return the user-error exit code."""
    print(f"ganvj: error: {message}", file=sys.stderr)
    return 2


def field_comments(cls: type) -> dict[str, str]:
    """The trailing comment of each field in a config dataclass's source: its help text."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (frozen app): the defaults alone
        return {}
    return dict(re.findall(r"^\s+(\w+): [^#\n]*#\s*(.+)$", source, flags=re.MULTILINE))


def add_config_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """One --flag per field of a config dataclass (defaults left to the dataclass).

    `defaults` are the values the command really uses where they differ from
    the dataclass's (StyleGAN2's learning rate, say), shown in the help only.
    """
    comments = field_comments(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = (defaults or {}).get(f.name, f.default)
        text = f"{comments[f.name]} (default {default})" if f.name in comments else None
        if f.name == "resolution":  # the range lives in models/resolution.py, not in comments
            text = f"{RESOLUTIONS}; {comments[f.name]} (default {default})"
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text or f"default {default}",
            )
        else:
            convert: Any = {"int": int, "float": float}.get(kind.split(" ")[0], str)
            parser.add_argument(
                flag, dest=f.name, type=convert, default=None, help=text or f"default {default}"
            )


def config_from_args(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """Build a config dataclass from the flags that were given."""
    values = {
        f.name: getattr(args, f.name)
        for f in fields(cls)
        if getattr(args, f.name, None) is not None
    }
    return cls(**{**values, **fixed})


# ---------------------------------------------------------------- models


def cmd_models(args: argparse.Namespace) -> int:
    """List installed models."""
    dirs = [Path(d) for d in args.dir] if args.dir else [weights_dir(), user_models_dir()]
    infos = list_models(dirs)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "path": str(i.path),
                        "arch": i.arch,
                        "kind": i.kind,
                        "resolution": i.resolution,
                        "z_dim": i.z_dim,
                        "bytes": i.size_bytes,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return 0
    # Where a name is looked up, so a performer knows where to drop a model.
    labels = ["looked in"] * len(dirs) if args.dir else ["shipped", "yours"]
    for label, folder in zip(labels, dirs, strict=True):
        missing = "" if folder.is_dir() else " (not there yet)"
        print(f"{label + ':':10} {shown(folder)}{missing}")
    if not infos:
        print("no models found")
        return 0
    print(f"{'name':32} {'arch':8} {'kind':14} {'size':>5} {'z':>5} {'MB':>6}  path")
    for i in infos:
        z = "-" if i.z_dim is None else str(i.z_dim)
        print(
            f"{i.name:32} {i.arch:8} {i.kind:14} {i.resolution:>5} {z:>5} "
            f"{i.size_bytes / 1e6:>6.1f}  {i.path}"
        )
    return 0


# ---------------------------------------------------------------- dataset


def cmd_dataset(args: argparse.Namespace) -> int:
    """Build a dataset folder from videos."""
    try:
        check_resolution(args.size)
    except ValueError:
        return fail(f"--size must be {RESOLUTIONS}, got {args.size}")
    try:
        config = DatasetConfig(
            size=args.size,
            rate=args.rate,
            every=args.every,
            start=args.start,
            end=args.end,
            fit=args.fit,
            mirror=args.mirror,
            dedup=args.dedup,
            pairing=args.pairing,
            offset=args.offset,
            k=args.k,
            swap=args.swap,
        )
        data = build_dataset(
            [Path(p) for p in args.videos], Path(args.out), config=config, force=args.force
        )
    except DatasetError as exc:
        return fail(str(exc))
    mirrored = ", mirrored copies added in training" if config.mirror else ""
    print(
        f"{data.path}: {data.info['count']} {'pairs' if data.paired else 'pictures'} at "
        f"{config.size}px as PNG files ({data.info['dropped_duplicates']} near-duplicates "
        f"dropped{mirrored})"
    )
    return 0


# ---------------------------------------------------------------- train


def report(result: TrainResult) -> None:
    """Print the end-of-run summary and quality report."""
    state = "interrupted" if result.interrupted else "finished"
    print(
        f"{state} at step {result.step}: {result.images_per_second:.1f} images/s; "
        f"model {result.run_dir / 'model.safetensors'}"
    )
    if result.losses:
        print("last losses: " + ", ".join(f"{k}={v:.4f}" for k, v in result.losses.items()))
    if result.quality:
        print("quality: " + ", ".join(f"{k}={v:.4g}" for k, v in result.quality.items()))


def export(result: TrainResult, to: str | None) -> None:
    """Copy the run's model file to --export."""
    if to:
        target = Path(to)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((result.run_dir / "model.safetensors").read_bytes())
        print(f"exported {target}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model."""
    resolution = getattr(args, "resolution", None)
    if resolution:  # 0 = StyleGAN2's "the pretrained model's, else the dataset's"
        try:
            check_resolution(resolution)
        except ValueError:
            return fail(f"--resolution must be {RESOLUTIONS}, got {resolution}")
    try:
        train = config_from_args(TrainConfig, args)
        if args.model == "stylegan2":
            from models.train_stylegan2 import train_stylegan2

            given = {f.name for f in fields(StyleGAN2Recipe) if getattr(args, f.name) is not None}
            result = train_stylegan2(
                Path(args.dataset),
                Path(args.run),
                recipe=config_from_args(StyleGAN2Recipe, args),
                train=config_from_args(
                    TrainConfig,
                    args,
                    **{k: v for k, v in TRAIN_DEFAULTS.items() if getattr(args, k) is None},
                ),
                resume=args.resume,
                force=args.force,
                changed=given,
            )
        elif args.model in ("dcgan", "pix2pix"):
            trainers: dict[str, tuple[type, Callable[..., TrainResult]]] = {
                "dcgan": (DCGANConfig, train_dcgan),
                "pix2pix": (Pix2PixConfig, train_pix2pix),
            }
            config_cls, trainer = trainers[args.model]
            result = trainer(
                Path(args.dataset),
                Path(args.run),
                model=config_from_args(config_cls, args),
                train=train,
                resume=args.resume,
                force=args.force,
            )
        else:
            generator = args.generator or args.generator_file
            if not generator:
                return fail("train encoder: name the generator (GENERATOR or --generator FILE)")
            enc = None
            if args.nef or args.max_channels or args.space:
                # Resolution and latent size come from the generator.
                enc = config_from_args(EncoderConfig, args, space=args.space or "z")
            result = train_encoder(
                Path(generator),
                Path(args.run),
                model=enc,
                train=train,
                dataset=Path(args.dataset) if args.dataset else None,
                discriminator=Path(args.discriminator) if args.discriminator else None,
                init_from=Path(args.init_from) if args.init_from else None,
                resume=args.resume,
                force=args.force,
            )
    except USER_ERRORS as exc:
        return fail(str(exc))
    report(result)
    export(result, args.export)
    return 130 if result.interrupted else 0


def add_train_parser(sub: Any, name: str, cls: type, help_text: str) -> argparse.ArgumentParser:
    """One `train <model>` parser with the model's and the training flags."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    if name == "encoder":
        p.add_argument(
            "generator_file",
            nargs="?",
            metavar="GENERATOR",
            help="the generator to invert: a DCGAN or StyleGAN .safetensors, or a StyleGAN .pkl",
        )
        p.add_argument("--generator", help="the same, as a flag")
        p.add_argument(
            "--space",
            choices=("z", "w", "w+"),
            default=None,
            help="what to predict: z (DCGAN), w (StyleGAN, the default there) or w+",
        )
        p.add_argument("--dataset", help="real images (an unpaired dataset folder), optional")
        p.add_argument(
            "--discriminator",
            help="the generator's run's last.safetensors: adds a loss in its feature space",
        )
        p.add_argument("--init-from", dest="init_from", help="start from this encoder's weights")
        p.add_argument("--nef", type=int, default=None, help="encoder width (default 32)")
        p.add_argument("--max-channels", dest="max_channels", type=int, default=None)
    else:
        p.add_argument(
            "dataset", help="a folder of images (e.g. made by `ganvj dataset`) or a dataset zip"
        )
        add_config_flags(p, cls)
    p.add_argument("--run", required=True, help="run folder: checkpoints, samples, loss.csv")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--force", action="store_true", help="start over in an existing --run")
    p.add_argument("--export", help="also copy the final model file here")
    add_config_flags(
        p,
        TrainConfig,
        skip=[k for k, models in TRAIN_FLAGS_FOR.items() if name not in models],
        defaults=TRAIN_DEFAULTS if name == "stylegan2" else None,
    )
    if name == "stylegan2":
        p.add_argument("--batch", dest="batch_size", type=int, help="same as --batch-size")
    p.set_defaults(func=cmd_train, model=name)
    return p


# ---------------------------------------------------------------- render


def cmd_render(args: argparse.Namespace) -> int:
    """Render an offline mp4."""
    from models import render

    try:
        if args.mode == "procedural":
            config = ProceduralConfig(
                scene=args.scene, size=args.size, seconds=args.seconds, fps=args.fps, seed=args.seed
            )
            if Path(args.out).exists() and not args.force:
                return fail(f"{args.out}: already exists (use --force to overwrite)")
            n = write_procedural_video(Path(args.out), config=config)
        else:
            n = render.render_from_args(args)
    except USER_ERRORS as exc:
        return fail(str(exc))
    print(f"{args.out}: {n} frames")
    return 0


def cmd_render_images(args: argparse.Namespace) -> int:
    """Write seedNNNN.png per seed."""
    from models import render

    try:
        written = render.images_from_args(args)
    except USER_ERRORS as exc:
        return fail(str(exc))
    print(f"{args.outdir}: {len(written)} images")
    return 0


def add_render_parsers(sub: Any) -> None:
    """render procedural | tour | walk | grid | react | feedback."""
    from models import render

    p = sub.add_parser(
        "procedural", help="procedural VJ footage (the default models' training video)"
    )
    p.add_argument("out")
    p.add_argument("--scene", choices=SCENES, default="shapes")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_render, mode="procedural")
    render.add_parsers(sub, cmd_render)

    p = sub.add_parser("images", help="one PNG per seed, with gen_images.py's flags and file names")
    p.add_argument(
        "--model",
        help="a model's name (see `ganvj models`) or file (default: the shipped generator)",
    )
    p.add_argument("--seeds", required=True, help="seeds and ranges, e.g. 0-3,42")
    p.add_argument("--outdir", required=True, help="folder for seedNNNN.png")
    p.add_argument("--device", default="cpu")
    render.add_sampling_flags(p, transform=True)
    p.set_defaults(func=cmd_render_images, mode="images")


# ---------------------------------------------------------------- import


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a StyleGAN network pickle into a ganvj model file (no code in it is run)."""
    from models.formats.stylegan import import_pickle

    src = Path(args.file)
    out = Path(args.out) if args.out else src.with_suffix(".safetensors")
    if out.exists() and not args.force:
        return fail(f"{out}: already exists (use --force to overwrite)")
    try:
        import_pickle(src, out, samples=args.samples, discriminator=args.discriminator)
    except USER_ERRORS as exc:
        return fail(str(exc))
    meta = list_models([out.parent])
    info = next((m for m in meta if m.path == out), None)
    detail = f"{info.arch}, {info.resolution} px" if info is not None else "written"
    print(f"{out}: {detail}")
    return 0


# ---------------------------------------------------------------- register


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the models, dataset, train and render subcommands; returns render's modes.

    The caller adds the render modes that need the server (`render replay`) to what
    this returns, so this room imports nothing above it.
    """
    p = subparsers.add_parser("models", help="list installed models")
    p.add_argument("--dir", action="append", help="look here instead (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = subparsers.add_parser("dataset", help="frames (or pairs) from videos, for training")
    p.add_argument("videos", nargs="+", help="input video files")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--size", type=int, default=128, help=f"{RESOLUTIONS} (default 128)")
    p.add_argument("--rate", type=float, help="sample this many frames per second")
    p.add_argument("--every", type=int, default=1, help="or keep every Nth frame (default 1)")
    p.add_argument("--start", type=float, default=0.0, help="seconds")
    p.add_argument("--end", type=float, help="seconds")
    p.add_argument("--fit", choices=("letterbox", "crop"), default="letterbox")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--dedup", type=float, default=1.0, help="near-duplicate threshold 0..255 (0 = off)"
    )
    p.add_argument(
        "--pairing", choices=("none", "side-by-side", "two-videos", "next-frame"), default="none"
    )
    p.add_argument("--offset", type=float, default=0.0, help="two-videos: seconds the target lags")
    p.add_argument("--k", type=int, default=1, help="next-frame: pair frame t with t+k")
    p.add_argument("--swap", action="store_true", help="side-by-side: right half is the source")
    p.add_argument("--force", action="store_true", help="overwrite an existing dataset")
    p.set_defaults(func=cmd_dataset)

    p = subparsers.add_parser("train", help="train dcgan | stylegan2 | pix2pix | encoder")
    sub = p.add_subparsers(dest="model", required=True)
    add_train_parser(sub, "dcgan", DCGANConfig, "unconditional DCGAN on a dataset")
    add_train_parser(
        sub,
        "stylegan2",
        StyleGAN2Recipe,
        "StyleGAN2 on a dataset, or fine-tune one (--resume-from)",
    )
    add_train_parser(sub, "pix2pix", Pix2PixConfig, "image-to-image on a paired dataset")
    add_train_parser(sub, "encoder", EncoderConfig, "an inverter for an unconditional generator")

    p = subparsers.add_parser(
        "import", help="convert a StyleGAN .pkl into a .safetensors model (runs no code)"
    )
    p.add_argument("file", help="a stylegan2-ada-pytorch / stylegan3 .pkl or a rosinality .pt")
    p.add_argument("--out", help="model file to write (default: FILE with .safetensors)")
    p.add_argument(
        "--samples", type=int, default=4096, help="mapping samples for GANSpace (default 4096)"
    )
    p.add_argument(
        "--discriminator",
        action="store_true",
        help="also keep the snapshot's D (to fine-tune from the file)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing model file")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser(
        "render", help="offline: procedural, tour, walk, grid, react, feedback mp4s; images (PNGs)"
    )
    modes = p.add_subparsers(dest="mode", required=True)
    add_render_parsers(modes)
    return modes


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the lead's server.cli wires register() into `ganvj`)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="ganvj")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
