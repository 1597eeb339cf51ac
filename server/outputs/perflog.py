"""The performance log: a recording's latent state at the start, then every frame.

One JSON line per record. The first, `start`, holds the model, the render
settings, the show's keyframe banks and the full latent state (positions,
motion in flight, the wander loop, the tempo grid, the random generator).
Then one `frame` line per rendered frame: its index, the monotonic time and
step the render thread used, and the command batches applied just before it.
`ganvj render replay` feeds the same batches at the same times to a fresh
engine and gets the same latents, frame for frame.

The state is captured as data: tensors as lists of floats (exact for float32),
plain values as themselves, and a few known classes field by field. Reading a
log builds only those classes; nothing in a log is ever executed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from models.blending import MAPPING
from models.latent_maths import Wander
from models.latent_space import WLoop
from server import play as play_module
from server import tempo as tempo_module
from server.commands import Command

logger = logging.getLogger(__name__)

VERSION = 1
# Limits
QUEUE_LINES = 4096  # lines waiting for the writer (two minutes of frames)

# The only classes a log may rebuild.
CLASSES: dict[str, type] = {
    "Wander": Wander,
    "WLoop": WLoop,
    "_Pending": play_module._Pending,
    "BeatGrid": tempo_module.BeatGrid,
}
# The tempo is captured on its own; events are per frame; the latent space (the
# model's mapping, directions) is rebuilt from the same model on replay.
SKIPPED = ("tempo", "_events", "space")


class NotReplayable(ValueError):
    """State that the log cannot hold as data; the message names it."""


def to_data(value: Any, where: str = "state") -> Any:
    """A JSON-ready form of a state value (tensors, generators, known classes)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.Tensor):
        return {"$tensor": value.tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, torch.Generator):
        return {"$generator": value.get_state().tolist()}
    if isinstance(value, list):
        return [to_data(v, where) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [to_data(v, where) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: to_data(v, f"{where}.{k}") for k, v in value.items()}}
    name = type(value).__name__
    if CLASSES.get(name) is type(value):
        return {
            "$object": name,
            "fields": {k: to_data(v, f"{where}.{k}") for k, v in vars(value).items()},
        }
    raise NotReplayable(f"{where}: a {name} cannot be logged")


def from_data(data: Any, where: str = "state") -> Any:
    """The inverse of `to_data`; ValueError on anything it did not write."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [from_data(v, where) for v in data]
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: unexpected {type(data).__name__}")
    if "$tensor" in data:
        dtype = getattr(torch, str(data.get("dtype")), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{where}: unknown dtype {data.get('dtype')!r}")
        return torch.tensor(data["$tensor"], dtype=dtype)
    if "$generator" in data:
        generator = torch.Generator()
        generator.set_state(torch.tensor(data["$generator"], dtype=torch.uint8))
        return generator
    if "$tuple" in data:
        return tuple(from_data(v, where) for v in data["$tuple"])
    if "$dict" in data and isinstance(data["$dict"], Mapping):
        return {str(k): from_data(v, f"{where}.{k}") for k, v in data["$dict"].items()}
    if "$object" in data:
        cls = CLASSES.get(str(data["$object"]))
        fields = data.get("fields")
        if cls is None or not isinstance(fields, Mapping):
            raise ValueError(f"{where}: unknown object {data['$object']!r}")
        obj: Any = object.__new__(cls)
        for key, value in fields.items():
            # Frozen dataclasses too: built field by field, as their own __init__ would.
            object.__setattr__(obj, str(key), from_data(value, f"{where}.{key}"))
        if is_dataclass(obj) or isinstance(obj, Wander):
            return obj
    raise ValueError(f"{where}: unexpected object {sorted(data)[:4]}")


def capture_play(play: play_module.PlayState) -> dict[str, Any]:
    """Every field of a play state, as data (render thread)."""
    return {k: to_data(v, k) for k, v in vars(play).items() if k not in SKIPPED}


def restore_play(play: play_module.PlayState, data: Mapping[str, Any]) -> None:
    """Put captured fields back into a play state of the same model."""
    for key, value in data.items():
        if key in SKIPPED or not hasattr(play, key):
            raise ValueError(f"play state: unknown field {key!r}")
        setattr(play, key, from_data(value, key))


def capture_tempo(clock: tempo_module.TempoClock) -> list[float]:
    """The beat grid and render lead: what quantized jumps depend on."""
    origin, period = clock.grid()
    return [origin, period, clock.lead_seconds]


def capture_mixer(mixer: Any) -> dict[str, Any]:
    """The crossfader, curve, blend mode and deck faders (a cut or fade under way is not kept)."""
    return {
        "crossfade": mixer.crossfade,
        "curve": mixer.curve,
        "mode": mixer.mode,
        "dims": dict(mixer.dims),
    }


def restore_mixer(mixer: Any, data: dict[str, Any]) -> None:
    """Set what `capture_mixer` captured."""
    mixer.crossfade = float(data["crossfade"])
    mixer.curve, mixer.mode = str(data["curve"]), str(data["mode"])
    mixer.dims.update({str(k): float(v) for k, v in data["dims"].items()})


def restore_tempo(clock: tempo_module.TempoClock, data: Sequence[float]) -> None:
    """Set the grid and lead captured by `capture_tempo`."""
    origin, period, lead = (float(v) for v in data)
    clock.set_grid(origin, period)
    clock.lead_seconds = lead


def command_data(command: Command) -> list[Any]:
    """[address, args, received]: enough to parse it again."""
    return [command.address, ["?"] if command.query else list(command.args), command.received]


def partners(engine: Any) -> dict[str, str]:
    """Each deck's blend partner by name ("": none)."""
    found = {}
    for name, channel in engine.decks.items():
        deck = channel.deck
        found[name] = deck.blend.name if deck is not None and deck.blend is not None else ""
    return found


def capture_values(engine: Any) -> list[list[Any]]:
    """What the picture shows that the play state does not hold, as commands: each deck's
    bends and blend (partner and amounts), and the canvas's regions."""
    values: list[list[Any]] = []
    for name, channel in engine.decks.items():
        deck = channel.deck
        if deck is None:
            continue
        prefix = "" if name == "a" else f"/deck/{name}"
        values.extend([prefix + address, args] for address, args in deck.bend_settings().items())
        if deck.blend is not None:
            values.append([f"{prefix}/blend/model", [deck.blend.name]])
            for layer, amount in sorted(deck.blend.amounts.items()):
                where = "/blend/mapping" if layer == MAPPING else f"/blend/layer/{layer}"
                values.append([prefix + where, [amount]])
    values.extend([address, list(args)] for address, args in engine.regions.settings().items())
    return values


class PerfLog:
    """Writes one performance log on a thread of its own; fed from the render thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self.error: str | None = None
        self._partners: dict[str, str] = {}  # each deck's blend partner at the last frame
        self._started = False
        self._last_model: str | None = None
        self._last_deck_b: str | None = None
        self._last_tempo: list[float] | None = None
        self._last_sources: dict[str, float] = {}
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=QUEUE_LINES)
        self._thread = threading.Thread(target=self._run, name="ganvj-perflog", daemon=True)
        self._thread.start()

    def start(self, engine: Any, index: int, now: float) -> None:
        """The start line: everything the frames after `index` build on (render thread)."""
        deck = engine.deck
        model = deck.model
        try:
            play = capture_play(deck.play)
            deck_b = self._deck_b(engine)
        except NotReplayable as exc:
            self.error = f"performance log: {exc}"
            logger.warning("%s; the set is recorded without it", self.error)
            self.close()
            return
        tempo = capture_tempo(engine.tempo)
        self._last_model, self._last_tempo = model.name, tempo
        self._put(
            {
                "type": "start",
                "version": VERSION,
                "frame": index,
                "t": now,
                "model": {
                    "name": model.name,
                    "path": str(model.path),
                    "arch": model.arch,
                    "resolution": model.resolution,
                    "z_dim": model.z_dim,
                },
                "size": "{}x{}".format(*engine.canvas),
                "fill": engine.fill,
                "fps": engine.config.fps,
                "seed": engine.config.seed,
                "wander_speed": engine.config.wander_speed,
                "play": play,
                "tempo": tempo,
                "snapshots": engine.snapshots,
                "reaction": {"mode": engine.reaction.mode, "active": engine.reaction.active},
                "reaction_b": {
                    "mode": engine.decks["b"].reaction.mode,
                    "active": engine.decks["b"].reaction.active,
                },
                # The master grade and the modulation routes (not triggers: what they
                # fire is logged as batches) shape the picture too.
                "master": {k: to_data(v, k) for k, v in vars(engine.master).items()},
                "routes": [c for c in engine.patch.commands() if c[0] == "/mod/route"],
                "mixer": capture_mixer(engine.mixer),
                "deck_b": deck_b,
                "values": capture_values(engine),
            }
        )
        self._partners = partners(engine)
        self._started = True

    def _deck_b(self, engine: Any) -> dict[str, Any] | None:
        """Deck b's model and latent state, or None when it has none."""
        deck = engine.deck_b
        if deck is None:
            self._last_deck_b = None
            return None
        self._last_deck_b = deck.model.name
        model = deck.model
        return {"name": model.name, "path": str(model.path), "play": capture_play(deck.play)}

    def step(
        self, engine: Any, index: int, now: float, dt: float, batches: Sequence[Sequence[Command]]
    ) -> None:
        """One rendered frame and the batches applied before it (render thread)."""
        if not self._started or self.error is not None:
            return
        line: dict[str, Any] = {"type": "frame", "i": index, "t": now, "dt": dt}
        if batches:
            line["batches"] = [[command_data(c) for c in batch] for batch in batches]
        deck_b = engine.deck_b.model.name if engine.deck_b is not None else None
        if deck_b != self._last_deck_b:
            line["deck_b"] = deck_b  # deck b's model took effect on this frame
            self._last_deck_b = deck_b
        model = engine.deck.model.name
        if model != self._last_model:
            line["model"] = model  # the switch took effect on this frame
            self._last_model = model
        tempo = capture_tempo(engine.tempo)
        if tempo != self._last_tempo:
            line["tempo"] = tempo  # tap, Link or the render lead moved the grid
            self._last_tempo = tempo
        if engine.patch.routes:
            # The audio features this frame was modulated with (the beat grid is
            # recomputed from the tempo line).
            sources = {k: v for k, v in engine.sources_used.items() if not k.startswith("tempo/")}
            if sources != self._last_sources:
                line["sources"] = sources
                self._last_sources = sources
        # What a replay cannot show (live input): each deck's reaction, deck b's video.
        for name, channel in engine.decks.items():
            weight = float(channel.reaction.weight(now))
            if weight > 0:
                line["react" if name == "a" else f"react_{name}"] = round(weight, 4)
        if engine.deck_b_inputs.source is not None:
            line["video_b"] = engine.deck_b_inputs.source
        # A blend partner loads off the render thread: the frame it landed on, per deck.
        now_partners = partners(engine)
        for deck, partner in now_partners.items():
            if partner and partner != self._partners.get(deck):
                line["blend" if deck == "a" else f"blend_{deck}"] = partner
        self._partners = now_partners
        self._put(line)
        self.frames += 1

    def close(self) -> None:
        """Finish writing (any thread; does not wait)."""
        self._started = False
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            self.error = self.error or "performance log: the writer fell behind"

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the writer (shutdown, tests)."""
        self._thread.join(timeout)

    def _put(self, line: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(json.dumps(line, separators=(",", ":")))
        except queue.Full:
            # A log with a hole cannot be replayed: end it and say so.
            self.error = "performance log: the disk fell behind; the log ends here"
            logger.error("%s (%s)", self.error, self.path)
            self._started = False

    def _run(self) -> None:
        handle: TextIO | None = None
        try:
            handle = self.path.open("x", encoding="utf-8")
            while True:
                line = self._queue.get()
                if line is None:
                    break
                handle.write(line + "\n")
                if self._queue.empty():
                    handle.flush()  # a crash loses at most what is queued
        except OSError as exc:
            self.error = f"performance log {self.path.name}: {exc}"
            logger.error("%s", self.error)
            self._started = False
        finally:
            if handle is not None:
                try:
                    handle.close()
                except OSError as exc:
                    self.error = self.error or f"performance log {self.path.name}: {exc}"


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The start line and the frame lines of a log; ValueError if it is not one."""
    start: dict[str, Any] | None = None
    frames: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.endswith("\n"):
                break  # a line cut by a crash: the log ends before it
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from exc
            if not isinstance(line, dict):
                raise ValueError(f"{path}:{number}: expected an object")
            if line.get("type") == "start":
                if start is not None:
                    raise ValueError(f"{path}:{number}: a second start line")
                if line.get("version") != VERSION:
                    raise ValueError(
                        f"{path}: log version {line.get('version')!r}, expected {VERSION}"
                    )
                start = line
            elif line.get("type") == "frame" and start is not None:
                frames.append(line)
            else:
                raise ValueError(f"{path}:{number}: unexpected line type {line.get('type')!r}")
    if start is None:
        raise ValueError(f"{path}: no start line: not a ganvj performance log")
    return start, frames
