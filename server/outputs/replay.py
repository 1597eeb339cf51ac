"""`ganvj render replay LOG OUT.mp4`: a recorded performance rendered again, offline.

A fresh engine starts from the log's captured state and gets the logged
command batches before the frames that applied them live, at the same
monotonic times. At the live frame rate (the default) every frame is
rendered at its logged time and step, so each latent equals the live one; at
another rate the timeline is resampled on an even grid and each batch lands
on the first frame at or after its time. The size is free: 1024 px from a
set played at 512.

Replayed besides latent motion: the master grade (`/output/*`), modulation
routes with the audio features logged per frame, whatever triggers and MIDI
fired (logged as batches), the mixer, each deck's bends and blends, and the
canvas (fill, regions). A blend partner, loaded off the render thread live,
lands on the frame the log says it landed on; a cluster bend's clusters are
computed inline and its command applies where the log has it applied.
Ableton Link and tap tempo replay through the logged beat grid. Not
replayed: live input, that is either deck's reactions to incoming video
(pix2pix, mirror, feedback) and deck b's own video; the log marks the frames
that showed them, and the replay renders the decks' latent pictures there.
"""

from __future__ import annotations

import argparse
import fractions
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import torch

from models.catalog import Catalog, load_model
from models.checkpoint import CheckpointError, LoadedModel
from server.commands import KEYFRAMES, REGISTRY, Command, CommandError, parse
from server.config import RenderConfig, parse_size
from server.engine import Engine
from server.media.frame import Frame
from server.outputs import perflog

logger = logging.getLogger(__name__)


class ReplayError(ValueError):
    """A log that cannot be replayed; the message says why."""


def resolve_model(start: dict[str, Any], find: Callable[[str], Path | None]) -> LoadedModel:
    """The log's model: its recorded path, else a model of that name in the model folders."""
    info = start.get("model") or {}
    path = Path(str(info.get("path", "")))
    if not path.is_file():
        found = find(str(info.get("name", "")))
        if found is None:
            raise ReplayError(
                f"the log's model {info.get('name')!r} ({path}) is not here: pass --model"
            )
        path = found
    return load_model(path, device="cpu")


# Frame-line keys of what showed live input: deck a's and deck b's reactions, deck b's video.
LIVE_ONLY = ("react", "react_b", "video_b")
# Frame-line keys of a blend partner landing (loaded off the render thread live).
PARTNER_LANDED = ("blend", "blend_b")


def replayed(command: Command) -> bool:
    """Engine commands that replay: the master grade, modulation routes, the mixer, bends,
    blends and the canvas (fill, regions)."""
    name = command.name
    if name.startswith(("/bend/", "/blend/", "/canvas/")):
        return True
    if name.startswith("/output/"):
        return REGISTRY[name].owner == "master"
    if REGISTRY[name].owner == "mixer":
        return name != "/source"  # the mixer and the decks' faders; live video is not replayed
    return name in ("/mod/route", "/mod/clear")


def _commands(line: dict[str, Any], engine: Engine) -> list[Command]:
    """The line's latent commands; engine work (reactions, models, outputs) is left out."""
    out: list[Command] = []
    for batch in line.get("batches", ()):
        for address, args, received in batch:
            try:
                command = parse(address, args, received=received)
            except CommandError as exc:
                raise ReplayError(f"frame {line.get('i')}: {exc}") from exc
            if not command.query and (engine.play.handles(command) or replayed(command)):
                out.append(command)
    return out


def _land_partners(loads: list[Callable[[], None]]) -> None:
    """Run the blend partners' loads held so far: the engine takes them at the next frame."""
    held = list(loads)
    loads.clear()
    for load in held:
        load()


def _restore_values(
    engine: Engine, values: list[Any], now: float, loads: list[Callable[[], None]]
) -> None:
    """The start line's bends, blends and regions, in place before the first frame."""
    commands = [parse(address, list(args)) for address, args in values]
    for _ in range(2):  # the first pass computes any clusters, the second bends with them
        for command in commands:
            deck = engine.decks[command.deck].deck
            if command.name.startswith(("/bend/", "/blend/")) and deck is not None:
                engine.bending.apply(deck, command)
            elif command.name.startswith("/canvas/"):
                engine.regions.apply(command, now, fill="native", keyframes=KEYFRAMES)
        _land_partners(loads)
        engine.bending.take([c.deck for c in engine.decks.values() if c.deck is not None])


def timeline(
    start: dict[str, Any], frames: list[dict[str, Any]], fps: float | None
) -> Iterator[tuple[float, float, list[dict[str, Any]]]]:
    """(time, step, the log lines whose batches come before this frame) per output frame."""
    live = float(start.get("fps", 30.0))
    if fps is None or abs(fps - live) < 1e-9:
        for line in frames:
            yield float(line["t"]), float(line["dt"]), [line]
        return
    if not frames:
        return
    step = 1.0 / fps
    t0, end = float(start["t"]), float(frames[-1]["t"])
    k, pending = 1, 0
    while True:
        now = t0 + k * step
        if now > end + step / 2:
            break
        due = pending
        while due < len(frames) and float(frames[due]["t"]) <= now + 1e-9:
            due += 1
        yield now, step, frames[pending:due]
        pending = due
        k += 1


def replay(
    log: Path,
    *,
    size: int | str,
    fps: float | None = None,
    device: str = "cpu",
    model: LoadedModel | None = None,
    deck_b: LoadedModel | None = None,
    find_model: Callable[[str], Path | None] = lambda name: None,
    on_frame: Callable[[Frame], None] | None = None,
    catalog: Catalog | None = None,
) -> int:
    """Render the log's frames, calling `on_frame` with each; returns how many.

    `deck_b`: the model deck b played (default: the log's, found as the main model is).
    `catalog`: where blend partners are found by name (default: the model folders).
    """
    try:
        start, frames = perflog.read(log)
    except (OSError, ValueError) as exc:
        raise ReplayError(str(exc)) from exc
    if model is None:
        model = resolve_model(start, find_model)
    logged = start.get("model") or {}
    if model.z_dim != logged.get("z_dim"):
        raise ReplayError(
            f"{model.name} has z_dim {model.z_dim}; the log was played with {logged.get('z_dim')}"
        )
    config = replace(
        RenderConfig(),
        size=size,
        fill=str(start.get("fill", "native")),  # logs before the canvas were square
        fps=fps or float(start.get("fps", 30.0)),
        seed=int(start.get("seed", 0)),
        wander_speed=float(start.get("wander_speed", 1.0)),
        device=device,
    )
    engine = Engine(
        model=model,
        config=config,
        device=torch.device(device),
        snapshots=start.get("snapshots") or {},
        catalog=catalog if catalog is not None else Catalog(),
    )
    # Io work (clusters, a blend partner's load) runs inline; a partner's load waits for
    # the frame the log says it landed on, and nothing is resubmitted (the log has it).
    engine.start_io = lambda work: work()
    partner_loads: list[Callable[[], None]] = []
    engine.bending.replaying(partner_loads.append)
    try:
        perflog.restore_play(engine.deck.play, start["play"])
        perflog.restore_tempo(engine.tempo, start["tempo"])
        if "mixer" in start:  # logs before the decks had none
            perflog.restore_mixer(engine.mixer, start["mixer"])
        if start.get("deck_b"):
            on_b = (
                deck_b
                if deck_b is not None
                else resolve_model({"model": start["deck_b"]}, find_model)
            )
            engine.set_deck_b(on_b, float(start["t"]))
            assert engine.deck_b is not None
            perflog.restore_play(engine.deck_b.play, start["deck_b"]["play"])
        for key, value in (start.get("master") or {}).items():
            if not hasattr(engine.master, key):
                raise ValueError(f"master: unknown field {key!r}")
            setattr(engine.master, key, perflog.from_data(value, key))
        routes = [parse(address, args) for address, args in start.get("routes", [])]
        if routes:
            engine.submit(routes)
        _restore_values(engine, start.get("values", []), float(start["t"]), partner_loads)
    except (KeyError, TypeError, ValueError, CommandError) as exc:
        raise ReplayError(f"{log}: the start state cannot be restored: {exc}") from exc
    reacted = 0
    count = 0
    for now, dt, lines in timeline(start, frames, fps):
        for line in lines:
            if "model" in line:
                engine.offer_model(_switch_model(str(line["model"]), find_model))
            if line.get("deck_b"):
                name = str(line["deck_b"])
                found = deck_b if deck_b is not None and deck_b.name == name else None
                engine.set_deck_b(found or _switch_model(name, find_model), now)
            if "tempo" in line:
                perflog.restore_tempo(engine.tempo, line["tempo"])
            if "sources" in line:
                engine.sources.update(line["sources"])
            reacted += any(key in line for key in LIVE_ONLY)
            if any(key in line for key in PARTNER_LANDED):
                _land_partners(partner_loads)
            commands = _commands(line, engine)
            if commands:
                engine.submit(commands)
        frame = engine.render_at(now, dt)
        count += 1
        if on_frame is not None:
            on_frame(frame)
    if reacted:
        logger.warning(
            "%d frames showed live input (a deck's reaction, deck b's video); they are not "
            "replayed (the decks' latent pictures are)",
            reacted,
        )
    return count


def _switch_model(name: str, find: Callable[[str], Path | None]) -> LoadedModel:
    path = find(name)
    if path is None:
        raise ReplayError(f"the set switched to model {name!r}, which is not here")
    return load_model(path, device="cpu")


class YuvWriter:
    """H.264 mp4 from the engine's yuv420p frames."""

    def __init__(self, path: Path, *, fps: float, size: tuple[int, int]) -> None:
        self.container = av.open(str(path), "w")
        rate = fractions.Fraction(round(fps * 1000), 1000)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "18", "preset": "veryfast"}
        self.frames = 0

    def write(self, frame: Frame) -> None:
        """Encode one rendered frame."""
        video = av.VideoFrame.from_ndarray(frame.yuv, format="yuv420p")
        video.pts = self.frames
        video.time_base = 1 / self.stream.codec_context.framerate
        self.container.mux(self.stream.encode(video))
        self.frames += 1

    def close(self) -> None:
        """Flush and finish the file."""
        self.container.mux(self.stream.encode(None))
        self.container.close()


def add_parser(sub: Any) -> None:
    """`render replay LOG OUT.mp4 --size --fps`."""
    p = sub.add_parser("replay", help="render a recorded performance log again, at any size")
    p.add_argument("log", help="a .perf.jsonl file from /record/start")
    p.add_argument("out", help="output .mp4")
    p.add_argument(
        "--size", help='the canvas, "WxH" or one number for a square (default: the live size)'
    )
    p.add_argument("--fps", type=float, help="frame rate (default: the live one, frame for frame)")
    p.add_argument("--model", help="a model name or file, when the log's is not where it was")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="overwrite out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """The `render replay` command: an exit code."""
    try:
        count = run(args)
    except (ReplayError, OSError, av.FFmpegError) as exc:
        print(f"ganvj: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {count} frames")
    return 0


def run(args: argparse.Namespace) -> int:
    """Replay into args.out; returns the number of frames written."""
    log, out = Path(args.log), Path(args.out)
    if out.exists() and not args.force:
        raise ReplayError(f"{out}: already exists (use --force to overwrite)")
    try:
        start, _ = perflog.read(log)
    except ValueError as exc:
        raise ReplayError(str(exc)) from exc
    text = args.size or start.get("size") or 0
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise ReplayError(f"--size: {exc}") from exc
    if size == (0, 0):
        raise ReplayError("--size: the log names no size; give one (e.g. 1920x1080)")
    fps = float(args.fps or start.get("fps") or 30.0)
    catalog = Catalog()
    try:  # --model: a name in the model folders or a path, as everywhere
        model = catalog.open(args.model) if args.model else None
    except CheckpointError as exc:
        raise ReplayError(str(exc)) from exc
    writer = YuvWriter(out, fps=fps, size=size)
    try:
        return replay(
            log,
            size="{}x{}".format(*size),
            fps=args.fps,
            device=args.device,
            model=model,
            find_model=catalog.find,
            on_frame=writer.write,
            catalog=catalog,
        )
    finally:
        writer.close()
