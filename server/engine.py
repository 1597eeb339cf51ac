"""The engine: the one owner of the resident generators and their latent state.

A render thread (never the event loop) drains queued command batches between
frames, asks the play state for this frame's latent, runs the generator and
converts the result once. Finished frames go to a latest-frame slot. A step
that raises or stalls leaves the last good frame in the slot: viewers keep
seeing it, and rendering goes on.

Controllers only submit validated Commands. The play state handles latent
motion; the engine dispatches the rest and reports every change through
`on_changes`. What it holds lives in modules of its own: the decks a and b,
each with its generator, reaction and device (server/deck.py), bends and
blends (server/bend_control.py), presets (server/preset_control.py), the
mixer (server/mixer.py) and the master grade (server/media/master.py).
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from models.canvas import FALLBACK, canvas_size, effective_fill, pad, place_boxed
from models.canvas import place as fill_canvas
from models.catalog import Catalog, ModelNotFound
from models.checkpoint import CheckpointError, LoadedModel
from models.device import cpu_threads
from models.faults import Faults
from models.latent_maths import lerp
from models.latent_space import Pose, ZSpace, space_for
from models.mixing import Workspace, mix
from models.mixing import dim as dim_deck
from models.pixels import Box, resize, to_rgb_uint8, to_yuv420
from server.bend_control import BendControl
from server.command_queue import Batch, CommandQueue
from server.commands import (
    ERROR_ADDRESS,
    KEYFRAMES,
    REGISTRY,
    SHOW_SETTINGS,
    Change,
    Command,
    CommandError,
    deck_address,
    error,
    lookup,
    parse,
)
from server.config import RenderConfig
from server.deck import Channel, Deck, build_deck, deck_device, new_channel
from server.gpu_guard import fall_back, is_device_error, memory_check
from server.media.frame import Frame
from server.media.inputs import InputFrame, InputHub
from server.media.master import Master
from server.media.slot import LatestSlot
from server.media.thumbs import SIZE as THUMB_SIZE
from server.media.thumbs import Thumbnails
from server.meters import RateMeter
from server.mixer import Mixer
from server.patch import Patch, Sources, continuous_arg
from server.play import PlayState
from server.preset_control import PresetControl
from server.presets import (
    Preset,
    PresetBank,
)
from server.react.reaction import Reaction
from server.react.reactor import Reactor
from server.regions import Regions
from server.tempo import TempoClock

logger = logging.getLogger(__name__)

__all__ = ["Engine", "EngineHooks", "coalesce"]

# A deck's picture for the canvas, and the box `fit` letterboxes it into (None: the
# picture fills the canvas at its aspect): the conversion scales it and draws the bars.
Framed = tuple[torch.Tensor, Box | None]


def _no_sources(spec: str, hub: InputHub) -> str | None:
    return "no sources configured"


@dataclass(frozen=True)
class EngineHooks:
    """What the server around the engine hears from it and lends it, fixed at construction.

    Every callback runs on the render thread (or an io thread); the server hands
    the work to its event loop.
    """

    on_changes: Callable[[list[Change]], None] | None = None  # feedback to controllers
    # Every model's snapshot, and the show-wide settings (the model, the master grade).
    on_show: Callable[[dict[str, dict[str, Any]], dict[str, list[object]]], None] | None = None
    on_patch: Callable[[list[list[object]]], None] | None = None  # the patch, as commands
    on_presets: Callable[[dict[str, dict[str, Any]]], None] | None = None  # every preset, JSON
    # (frame index, now, the batches applied before it), before that frame renders:
    # the write-ahead journal (server/journal.py).
    on_applied: Callable[[int, float, list[Batch]], None] | None = None
    # Open a video source (file:, v4l2:, ndi:) into an input: a deck's reaction input
    # (/react/source) or its own video (/deck/b/source); why not, or None.
    open_input: Callable[[str, InputHub], str | None] = _no_sources


def coalesce(batches: Sequence[Batch]) -> list[list[Command]]:
    """Drop absolute setters (the registry's `coalesce`) that a later command to the
    same address overrides: a fader flood costs one application per frame."""
    last: dict[str, tuple[int, int]] = {}
    for b, batch in enumerate(batches):
        for c, command in enumerate(batch):
            if REGISTRY[command.name].coalesce and not command.query:
                last[command.address] = (b, c)
    return [
        [
            command
            for c, command in enumerate(batch)
            if not REGISTRY[command.name].coalesce
            or command.query
            or last[command.address] == (b, c)
        ]
        for b, batch in enumerate(batches)
    ]


class Engine:
    """Owns the generators, the play state, reactions and the render thread."""

    STALL_SECONDS = 2.0
    MODEL_FADE_SECONDS = 1.0
    SHOW_SAVE_SECONDS = 1.0  # at most one show snapshot per second
    EARLY_FRAME_GAP = 0.5  # of a frame period: how soon a command may start a frame
    SHUTDOWN_GRACE_SECONDS = 3.0  # how long a stopping render thread may finish its frame

    def __init__(
        self,
        *,
        model: LoadedModel,
        config: RenderConfig,
        device: torch.device,
        commands: CommandQueue | None = None,
        pix2pix: LoadedModel | None = None,
        encoder: LoadedModel | None = None,
        feedback: LoadedModel | None = None,
        snapshots: dict[str, dict[str, Any]] | None = None,
        catalog: Catalog | None = None,
        tempo: TempoClock | None = None,
        hooks: EngineHooks | None = None,
        faults: Faults | None = None,
        presets: dict[str, Preset] | None = None,
    ) -> None:
        self.config = config
        self.faults = faults if faults is not None else Faults.from_env()
        if self.faults.any:
            logger.warning("fault hooks armed (GANVJ_FAULTS): %s", ",".join(self.faults.names()))
        self._native = False  # after a fall back to the CPU: the model's own size
        self.hooks = hooks if hooks is not None else EngineHooks()
        self.device = device
        if device.type == "cpu":
            torch.set_num_threads(cpu_threads(config.threads))
        self.frames: LatestSlot[Frame] = LatestSlot()
        # The hub built before the engine holds this queue's other end.
        self.commands = commands if commands is not None else CommandQueue()
        self.tempo = tempo if tempo is not None else TempoClock()
        self.snapshots: dict[str, dict[str, Any]] = dict(snapshots or {})
        self.catalog = catalog if catalog is not None else Catalog()
        self.render_rate = RateMeter()
        self.fill = config.fill  # /canvas/fill
        self.regions = Regions()  # /canvas/regions, /canvas/region/N/keyframe (deck a)
        self._reaction_models = (pix2pix, encoder, feedback)
        self.decks: dict[str, Channel] = {"a": self._channel("a", device)}
        # The input the camera page and WHIP feed; None: deck a's reaction input.
        self._camera: InputHub | None = None
        # Runs blocking work (opening files, loading models) off the render thread.
        self.start_io: Callable[[Callable[[], None]], None] = _daemon_thread
        # Commands the registry gives to an output service (/record/*, /output/ndi),
        # called on the render thread between frames like every command; see serve().
        self._handlers: dict[str, Callable[[Command, float], list[Change]]] = {}
        # Called on the render thread after every frame with (index, now, dt, the
        # batches applied before it): the performance log of a recording; see log_steps().
        self._step_log: Callable[[int, float, float, list[Batch]], None] | None = None
        self._applied: list[Batch] = []
        self.errors = 0
        self._incoming_lock = threading.Lock()
        self.bending = BendControl(
            seed=config.seed,
            catalog=self.catalog,
            run_io=lambda work: self.start_io(work),  # read when used: a test may replace it
            report=self.report,
            resubmit=self.submit,
        )
        self.decks["a"].deck = self._deck(model, now=0.0, device=device)
        # Deck b: nothing until /deck/b/model/load or /deck/b/source (then it costs a render).
        # On its own device where render.device_b names one that is there.
        device_b, note = deck_device(config.device_b, device)
        if note is not None:
            logger.warning("%s", note)
        self.decks["b"] = self._channel("b", device_b)
        self.decks["b"].device_note = note
        self.mixer = Mixer(self.tempo)
        self._mix_work = Workspace()  # the mix's frame buffers, reused frame after frame
        self.master = Master()
        self.patch = Patch()
        # Modulation sources (audio features); any thread writes, the render thread reads.
        self.sources = Sources()
        self.sources_used: dict[str, float] = {}  # this frame's modulation inputs (the log)
        self._held: Framed | None = None  # the picture /output/freeze holds
        self._rendering = "a"  # the deck a device error is laid to (see _fall_back)
        self._beat_seen: int | None = None
        self._patch_dirty = False
        self.preset_control = PresetControl(
            presets,
            decks=self.decks,
            apply=self._apply_batch,
            answer=self._answer,
            patch=self.patch.commands,
        )
        self.thumbs = Thumbnails()
        self._thumbs_due: dict[int, bool] = dict.fromkeys(range(1, KEYFRAMES + 1), False)
        self._progress: tuple[int, float] = (0, 1.0)
        self._progress_sent = 0.0
        self._incoming: list[tuple[LoadedModel, Command | None]] = []
        self._imported: dict[str, dict[str, Any]] | None = None
        self._show_dirty = False
        self._show_saved = 0.0
        self._stop = threading.Event()
        self._wake = self.commands.wake
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._index = 0
        self._frame_ms = 0.0
        self._step_started: float | None = None

    # -- public, any thread -------------------------------------------------

    @property
    def deck(self) -> Deck:
        """Deck a's generator (deck a always has one)."""
        deck = self.decks["a"].deck
        assert deck is not None  # set in __init__, only ever replaced
        return deck

    @property
    def deck_b(self) -> Deck | None:
        """Deck b's generator; None while nothing is loaded there."""
        return self.decks["b"].deck

    @property
    def deck_b_inputs(self) -> InputHub:
        """Deck b's own video (/deck/b/source)."""
        return self.decks["b"].video

    @property
    def inputs(self) -> InputHub:
        """Deck a's reaction input (/react/source)."""
        return self.decks["a"].inputs

    def camera_hub(self) -> InputHub:
        """Where the camera page's and a WHIP publisher's frames go now (any thread): the
        input last set to `camera` (/react/source, /deck/b/react/source, /deck/b/source);
        deck a's reaction input until then."""
        return self._camera if self._camera is not None else self.decks["a"].inputs

    def _aim_camera(self, hub: InputHub, spec: str) -> None:
        """A source set on `hub`: the camera goes there, or leaves it for deck a's input."""
        if spec == "camera":
            self._camera = hub
            if hub.source not in ("camera", "whip"):  # already there: it stays
                hub.stop()  # make room: the camera's frames move here at their next frame
        elif hub is self._camera:
            self._camera = None

    @property
    def reaction(self) -> Reaction:
        """Deck a's reaction."""
        return self.decks["a"].reaction

    @property
    def reactor(self) -> Reactor:
        """Deck a's reaction work (pix2pix, mirror, feedback)."""
        return self.decks["a"].reactor

    @property
    def presets(self) -> PresetBank:
        """The stored presets."""
        return self.preset_control.bank

    @property
    def model(self) -> LoadedModel:
        """The model being rendered."""
        return self.deck.model

    @property
    def play(self) -> PlayState:
        """The current model's latent state (render thread only, or before start)."""
        return self.deck.play

    @property
    def index(self) -> int:
        """The number of the last frame rendered (render thread, or a snapshot's hook)."""
        return self._index

    @property
    def canvas(self) -> tuple[int, int]:
        """(width, height) of the frames this engine renders: render.size, or the model's square.

        After a fall back to the CPU, the model's own square (the safe size).
        """
        if self._native:
            return (self.deck.model.resolution, self.deck.model.resolution)
        return canvas_size(self.config.canvas, self.deck.model.resolution)

    def deck_snapshots(self) -> dict[str, dict[str, Any]]:
        """Every playing deck's show entry by its model's name (render thread, or a hook it
        calls): deck a's wins where both decks play one model."""
        return {
            channel.deck.model.name: channel.deck.snapshot()
            for channel in reversed(self.decks.values())
            if channel.deck is not None
        }

    def submit(self, batch: Batch) -> bool:
        """Queue commands to apply together before the next frame; False if the queue is full."""
        return self.commands.submit(batch)

    def serve(self, pattern: str, handler: Callable[[Command, float], list[Change]]) -> None:
        """Let an output service apply a command the registry gives to "outputs"."""
        spec = REGISTRY.get(pattern)
        if spec is None or spec.owner != "outputs":
            raise ValueError(f"{pattern} is not an output service's command")
        self._handlers[pattern] = handler

    def log_steps(self, step_log: Callable[[int, float, float, list[Batch]], None] | None) -> None:
        """Call `step_log` after every frame (a recording's performance log); None stops."""
        self._step_log = step_log

    def report(self, changes: list[Change]) -> None:
        """Send changes to the controllers from any thread (an io thread's result)."""
        if self.hooks.on_changes is not None:
            self.hooks.on_changes(changes)

    def import_show(self, snapshots: dict[str, dict[str, Any]]) -> None:
        """Replace the keyframe banks and settings of the models in an imported show."""
        with self._incoming_lock:
            self._imported = dict(snapshots)

    def import_preset(self, name: str, preset: Preset) -> None:
        """Store an imported preset (already checked) before the next frame (any thread)."""
        self.preset_control.import_preset(name, preset)

    def replace_presets(self, presets: dict[str, Preset]) -> None:
        """An imported show's presets replace them all before the next frame (any thread)."""
        self.preset_control.replace_all(presets)

    def offer_model(self, model: LoadedModel, command: Command | None = None) -> None:
        """Hand over a loaded model; the render thread crossfades to it (any thread)."""
        with self._incoming_lock:
            self._incoming.append((model, command))

    def set_deck_b(self, model: LoadedModel, now: float) -> None:
        """Put `model` on deck b at once (before start, or on the render thread: a replay)."""
        channel = self.decks["b"]
        channel.deck = self._deck(model, now, channel.device)
        channel.reactor.fit_generator(model)

    def start(self) -> None:
        """Start the render thread."""
        if self._thread is not None:
            raise RuntimeError("engine already started")
        self._thread = threading.Thread(target=self._run, name="ganvj-render", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the render thread and wake every frame reader."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("render thread did not stop within %.1f s", timeout)
        self.frames.close()

    def __enter__(self) -> Engine:
        """Start rendering; leaving the block stops the inputs and the render thread."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for channel in self.decks.values():  # (an NDI receiver: its thread ends too)
            channel.inputs.stop()
            channel.video.stop()
        # A frame in progress gets this long to finish; a stuck one is left behind
        # (a daemon thread) and its readers are woken by the closed frame slot.
        self.stop(timeout=self.SHUTDOWN_GRACE_SECONDS)
        stopped = self._thread is None or not self._thread.is_alive()
        if stopped and self._show_dirty:
            # Changes made within the last save interval: the show keeps them too.
            self._save_show(time.monotonic())

    def stats(self) -> dict[str, Any]:
        """Numbers for /api/status."""
        started = self._step_started
        model = self.deck.model
        now = time.monotonic()
        return {
            "rendered_fps": round(self.render_rate.rate(), 2),
            "frame_ms": round(self._frame_ms, 2),
            "frames": self._index,
            "model": model.name,
            "arch": model.arch,
            "resolution": model.resolution,
            "canvas": "{}x{}".format(*self.canvas),
            "fill": self.fill,
            "device": str(self.deck.device),
            "half": self.deck.half,
            "path": self.deck.path.describe(),
            "path_verified": self.deck.path.verified,
            "path_notes": list(self.deck.path.notes),
            "faults": self.faults.names(),
            "loading_model": self.decks["a"].loading,
            "render_errors": self.errors,
            "last_error": self._last_error,
            "dropped_batches": self.commands.dropped,
            "stalled": started is not None and now - started > self.STALL_SECONDS,
            "reaction": self.reaction.status(now),
            "tempo_bpm": round(self.tempo.bpm, 2),
            "deck_b": self.deck_b.model.name if self.deck_b is not None else None,
            "deck_b_source": self.deck_b_inputs.source,
            "deck_b_loading": self.decks["b"].loading,
            "deck_b_device": str(self.decks["b"].device),
            "deck_b_device_note": self.decks["b"].device_note,
            "deck_b_reaction": self.decks["b"].reaction.status(now),
            "deck_b_react_source": self.decks["b"].inputs.source,
            "crossfade": round(self.mixer.crossfade, 3),
            "render_lead_ms": round(self.tempo.lead_seconds * 1000.0, 1),
        }

    def render_once(self) -> Frame:
        """Apply pending commands and render one frame on the calling thread."""
        return self._step(time.monotonic(), 1.0 / self.config.fps)

    def render_at(self, now: float, dt: float) -> Frame:
        """Apply pending commands and render the frame at `now` (offline replay)."""
        return self._step(now, dt)

    # -- render thread ------------------------------------------------------

    def _channel(self, name: str, device: torch.device) -> Channel:
        """A deck with nothing loaded, and its reaction."""
        return new_channel(name, device, self.config, self._reaction_models)

    def _deck(self, model: LoadedModel, now: float, device: torch.device) -> Deck:
        """`model` placed and proved on `device`, with its show entry and its bends."""
        deck, kept = build_deck(
            model,
            now=now,
            device=device,
            config=self.config,
            tempo=self.tempo,
            faults=self.faults,
            saved=self.snapshots.get(model.name),
        )
        for command in kept:  # the model's bends, as the show kept them
            for change in self.bending.apply(deck, command):
                if change.address == ERROR_ADDRESS:
                    logger.warning("show setting skipped: %s: %s", *change.args)
        return deck

    def _run(self) -> None:
        period = 1.0 / self.config.fps
        # A command wakes the loop early, but frames stay at least this far apart:
        # control lands within half a period, and the frame rate at most doubles
        # while a fader moves.
        min_gap = period * self.EARLY_FRAME_GAP
        next_due = time.monotonic()
        last = next_due
        while not self._stop.is_set():
            now = time.monotonic()
            self._wake.clear()
            try:
                self._step(now, now - last)
            except Exception as exc:  # noqa: BLE001 - the show goes on with the last frame
                self._report(exc)
                if is_device_error(exc):
                    self._fall_back(exc)
            last = now
            next_due += period
            if next_due < time.monotonic():
                # Behind schedule: render as fast as the model allows, without a
                # burst of catch-up frames.
                next_due = time.monotonic()
                continue
            if self._wake.wait(next_due - time.monotonic()) and not self._stop.is_set():
                early = last + min_gap - time.monotonic()
                if early > 0:
                    self._stop.wait(early)
                next_due = time.monotonic()  # the schedule continues from here

    def _step(self, now: float, dt: float) -> Frame:
        self._step_started = time.monotonic()
        changes: list[Change] = []
        changes.extend(self._take_models(now))
        applied_at = self._drain(now, changes)
        changes.extend(self.preset_control.take_imports())
        changes.extend(self.preset_control.advance(now))
        # Each deck's reaction input, and its reaction ending on time or with its source.
        inputs = {name: channel.react_input(now) for name, channel in self.decks.items()}
        for name, channel in self.decks.items():
            changes.extend(self._on_deck(name, channel.reaction_changes(now)))
        width, height = self.canvas
        self._tempo_events(now)
        values = self.sources_used = self._source_values(now)
        bases = self._modulate(values, now)  # routes on top of the performer's values
        pose = self.deck.play.pose(now, dt)  # position (dim,) on the CPU, where play keeps it
        shown = pose.latent
        changes.extend(self.deck.play.take_changes())
        held = self._held if self.master.freeze else None
        # The crossfader: at either end only that deck renders (the other costs nothing).
        x = self.mixer.position(now)
        changes.extend(self.mixer.take_changes())
        b = self.decks["b"]
        b_on = self._deck_b_on()
        pose_b = b.deck.play.pose(now, dt) if b.deck is not None else None
        if b.deck is not None:
            changes.extend(self._on_deck("b", b.deck.play.take_changes()))
        with torch.inference_mode():
            if held is not None:
                framed = held  # commands still apply; the picture waits for release
            else:
                a = self.decks["a"]
                framed_a = (
                    self._framed(a, pose, *inputs["a"], now, dt, (width, height))
                    if not b_on or x < 1.0
                    else None
                )
                self._rendering = "b"  # a device error from here on is deck b's
                framed_b = (
                    self._framed(b, pose_b, *inputs["b"], now, dt, (width, height))
                    if b_on and x > 0.0
                    else None
                )
                self._rendering = "a"
                framed = self._mix(framed_a, framed_b, x)
                self._held = framed
            grade = self.master.grade(now)
            # The mix, the master grade and fit's bars ride the conversion: the one copy back.
            picture, box = framed
            yuv = to_yuv420(picture, (width, height), grade, box).cpu().numpy()
        self._restore(bases, now)
        finished = time.monotonic()
        self._index += 1
        frame = Frame(
            index=self._index,
            yuv=yuv,
            width=width,
            height=height,
            rendered_at=finished,
            render_ms=(finished - self._step_started) * 1000.0,
            applied_at=applied_at,
            latent=shown,
            input_at=incoming.arrived_at
            if (incoming := inputs["a"][1]) is not None and self.reaction.weight(now) > 0
            else None,
        )
        self._frame_ms = (
            0.9 * self._frame_ms + 0.1 * frame.render_ms if self._index > 1 else frame.render_ms
        )
        self.frames.put(frame)
        self.render_rate.tick(finished)
        # After the frame is out: at most one thumbnail per frame, and the morph's progress
        # (still inside the step: a thumbnail that stalls is a stall).
        changes.extend(self._thumbnail(changes))
        changes.extend(self._morph_progress(now))
        self._step_started = None
        self._publish(changes, now)
        step_log = self._step_log  # read once: a failing recording clears it from its thread
        if step_log is not None:
            applied, self._applied = self._applied, []
            step_log(self._index, now, dt, applied)
        return frame

    def _deck_b_on(self) -> bool:
        """Whether deck b has anything to show: a model, or a live video source."""
        return self.deck_b is not None or self.deck_b_inputs.source is not None

    def _framed(
        self,
        channel: Channel,
        pose: Pose | None,
        seq: int,
        incoming: InputFrame | None,
        now: float,
        dt: float,
        canvas: tuple[int, int],
    ) -> Framed | None:
        """A deck's picture framed for the canvas, through its reaction and its fader, on the
        mixing device, with the box `fit` puts it in; None while it has nothing to show."""
        width, height = canvas
        if channel.video.source is not None:  # a video source: the frame, fitted
            _, frame = channel.video.frames.latest()
            if frame is None:
                return None
            reacted = self._video_reacted(channel, frame, seq, incoming, now)
            if reacted is not None:  # under a reaction: its square, framed as FALLBACK
                boxed = place_boxed(reacted, width, height, FALLBACK)
                return self._dim(channel.name, (boxed[0].to(self.device), boxed[1]))
            boxed = place_boxed(_video_tensor(frame, self.device), width, height, "fit")
            return self._dim(channel.name, boxed)
        deck = channel.deck
        if deck is None or pose is None:
            return None
        reaction, reactor = channel.reaction, channel.reactor
        # The network paints the canvas's shape (`native`) unless a reaction's
        # square picture shows: then that frame is framed as FALLBACK is.
        fill = effective_fill(self.fill, deck.module)
        if fill == "native" and reaction.weight(now) > 0.0:
            fill = FALLBACK
        aspect = width / height if fill == "native" else 1.0
        # Compose (blend, react, smooth) at the generator's own size; the frame is
        # scaled to the canvas once, inside the colour conversion.
        compose = max(deck.model.resolution, reactor.image_resolution(now))
        latent_image = None
        if reactor.needs_latent_image(now):
            if deck.space.name == "z":  # mirror pulls z toward the encoded input
                z = reactor.latent(pose.latent.to(deck.device), now, seq, incoming)
                pose = replace(pose, latent=z)
            regions = (
                self.regions.poses(pose, deck.play, now)
                if channel.name == "a" and fill == "native" and self.regions.active()
                else ()
            )
            latent_image = deck.render(pose, compose, aspect, regions)  # (1, 3, R, R·a)
            latent_image = self._crossfade(channel, latent_image, now, dt, compose, aspect)
        image = reactor.image(latent_image, now, seq, incoming, compose)
        framed, box = place_boxed(image, width, height, fill)
        if framed.device != self.device:  # a deck on its own device: the one copy to the mix
            framed = framed.to(self.device)
        return self._dim(channel.name, (framed, box))

    def _video_reacted(
        self,
        channel: Channel,
        frame: InputFrame,
        seq: int,
        incoming: InputFrame | None,
        now: float,
    ) -> torch.Tensor | None:
        """A video deck's picture through its reaction (pix2pix, feedback) while one shows:
        the video squared, the reaction's picture over it; None when none shows."""
        reactor = channel.reactor
        size = reactor.image_resolution(now)  # 0: no pix2pix or feedback showing
        if size == 0:
            return None
        under = reactor.squared(frame, size) if reactor.needs_latent_image(now) else None
        return reactor.image(under, now, seq, incoming, size)

    def _dim(self, deck: str, framed: Framed) -> Framed:
        """A deck's picture through its fader, into that deck's reused buffer (bars stay black)."""
        level = self.mixer.dims[deck]
        picture, box = framed
        if level >= 1.0:
            return framed
        return dim_deck(picture, level, self._mix_work.get(f"dim {deck}", picture)), box

    def _mix(self, a: Framed | None, b: Framed | None, x: float) -> Framed:
        """The two decks' framed pictures at crossfade x (either alone when the other is absent).

        Two pictures in one box (two generators under `fit`) mix as they are and
        keep their bars for the conversion: black mixed with black is black in
        every mode. A deck letterboxed otherwise gets its bars in floats at the
        canvas size, since the other deck's picture shows through them.
        """
        if b is None:
            if a is None:  # deck b shows alone but has no frame yet: keep the last picture
                return (
                    self._held
                    if self._held is not None
                    else (_black(self.canvas, self.device), None)
                )
            return a
        if a is None:
            return b
        if a[1] == b[1]:  # one box, or none: mixed as they are
            (first, box), second = a, b[0]
        else:
            first, second, box = self._padded(*a), self._padded(*b), None
        if second.shape != first.shape:
            second = resize(second, (first.shape[-2], first.shape[-1]))
        return mix(first, second, x, self.mixer.curve, self.mixer.mode, self._mix_work), box

    def _padded(self, picture: torch.Tensor, box: Box | None) -> torch.Tensor:
        """A framed picture with its bars in it, at the canvas size (itself when it has none)."""
        return picture if box is None else pad(picture, box, *self.canvas)

    def _crossfade(
        self,
        channel: Channel,
        image: torch.Tensor,
        now: float,
        dt: float,
        size: int,
        aspect: float = 1.0,
    ) -> torch.Tensor:
        """During a model switch, blend the outgoing model's picture into the new one."""
        fading = channel.fading
        if fading is None:
            return image
        t = (now - channel.fade_started) / self.MODEL_FADE_SECONDS
        if t >= 1.0:
            channel.fading = None
            return image
        paints = effective_fill("native", fading.module) == "native"
        old = fading.render(fading.play.pose(now, dt), size, aspect if paints else 1.0)
        if old.shape != image.shape:
            old = resize(old, (image.shape[-2], image.shape[-1]))
        return lerp(old, image, max(t, 0.0))

    PROGRESS_SECONDS = 0.1  # morph progress is reported at most this often

    def _thumbnail(self, changes: list[Change]) -> list[Change]:
        """Draw the next due keyframe thumbnail (stored, reshuffled, or after a switch)."""
        for change in changes:
            parts = change.address.split("/")
            if len(parts) == 4 and parts[1] == "keyframe" and parts[3] in ("store", "reshuffle"):
                self._thumbs_due[int(parts[2])] = True
        if not self._thumbs_due:
            return []
        n = next(iter(self._thumbs_due))
        announce = self._thumbs_due.pop(n)
        if n > self.deck.play.bank.shape[0]:
            return []
        with torch.inference_mode():
            rgb = to_rgb_uint8(self._thumb_picture(n))[0].cpu().numpy()  # (h, w, 3)
        version = self.thumbs.put(n, rgb)
        # After a store or reshuffle every controller hears of it; the start's and a
        # model switch's thumbnails are state, asked for with "?" (no flood at connect).
        return [Change(f"/keyframe/{n}/thumb", (version,))] if announce else []

    def _thumb_picture(self, n: int) -> torch.Tensor:
        """Keyframe n framed as the canvas is, THUMB_SIZE on its long side."""
        width, height = self.canvas
        fill = effective_fill(self.fill, self.deck.module)
        aspect = width / height if fill == "native" else 1.0
        image = self.deck.render(self.deck.play.keyframe_pose(n), THUMB_SIZE, aspect)
        if fill == "fit":  # letterbox at the thumbnail's own size, not the canvas's
            scale = THUMB_SIZE / max(width, height)
            width, height = max(2, round(width * scale)), max(2, round(height * scale))
        framed = fill_canvas(image, width, height, fill)
        long_side = max(width, height)
        thumb = (round(THUMB_SIZE * height / long_side), round(THUMB_SIZE * width / long_side))
        return resize(framed, thumb)

    def _morph_progress(self, now: float) -> list[Change]:
        """Report how far a morph to a keyframe has come, a few times a second."""
        progress = self.deck.play.morph(now)
        if progress == self._progress:
            return []
        finished = progress[1] >= 1.0 or progress[0] != self._progress[0]
        if not finished and now - self._progress_sent < self.PROGRESS_SECONDS:
            return []
        self._progress = progress
        self._progress_sent = now
        return [Change("/keyframe/progress", (progress[0], round(progress[1], 3)))]

    def _source_values(self, now: float) -> dict[str, float]:
        """Every modulation source now: the audio features, and the beat grid."""
        values = self.sources.snapshot()
        beat = self.tempo.beat_at(now)
        bar = self.tempo.beats_per_bar
        values["tempo/phase"] = beat % 1.0
        values["tempo/bar"] = (beat % bar) / bar
        return values

    def _tempo_events(self, now: float) -> None:
        """Fire the tempo/beat and tempo/bar triggers when a frame crosses a beat."""
        whole = math.floor(self.tempo.beat_at(now))
        if self._beat_seen is not None and whole != self._beat_seen:
            fired = self.patch.fire("tempo/beat", received=now)
            if whole % self.tempo.beats_per_bar == 0:
                fired += self.patch.fire("tempo/bar", received=now)
            if fired:
                self.submit(fired)  # applied before the next frame
        self._beat_seen = whole

    def _value(self, address: str, now: float) -> object:
        """The performer's current value of a one-argument address."""
        command = parse(address, ["?"])
        if command.deck != "a":
            return self._deck_b_command(command, now)[0].args[0]
        if self.deck.play.handles(command):
            return self.deck.play.query(address).args[0]
        if command.name.startswith(("/bend/", "/blend/")):
            return self.bending.query(self.deck, command)[0]
        return self._query(command.name, now)[0]

    def _set_quietly(self, address: str, value: object, now: float) -> None:
        command = parse(address, [value])
        if command.deck != "a":
            self._deck_b_command(command, now)
        elif self.deck.play.handles(command):
            self.deck.play.apply(command, now)
        else:
            self._command(command, now)

    def _modulate(self, values: dict[str, float], now: float) -> list[tuple[str, object]]:
        """Apply every routed target as its value + offset; the values to restore after."""
        bases: list[tuple[str, object]] = []
        for address, offset in self.patch.offsets(values).items():
            try:
                arg = continuous_arg(address)
                base = self._value(address, now)
                value = min(max(float(base) + offset, float(arg.min)), float(arg.max))  # type: ignore[arg-type]
                self._set_quietly(address, value, now)
            except (CommandError, ValueError, TypeError, IndexError) as exc:
                self._report(exc)
                continue
            bases.append((address, base))
        return bases

    def _restore(self, bases: list[tuple[str, object]], now: float) -> None:
        for address, base in bases:
            try:
                self._set_quietly(address, base, now)
            except (CommandError, ValueError, TypeError) as exc:
                self._report(exc)

    def _publish(self, changes: list[Change], now: float) -> None:
        if changes:
            self.report(changes)
        if changes and any(c.to is None for c in changes):
            self._show_dirty = True
        if self._patch_dirty and self.hooks.on_patch is not None:
            self._patch_dirty = False
            self.hooks.on_patch(self.patch.commands())
        if self.preset_control.dirty and self.hooks.on_presets is not None:
            self.preset_control.dirty = False
            self.hooks.on_presets(self.presets.to_json())
        if self._show_dirty and now - self._show_saved >= self.SHOW_SAVE_SECONDS:
            self._save_show(now)

    def _save_show(self, now: float) -> None:
        self._show_dirty = False
        self._show_saved = now
        if self.hooks.on_show is not None:
            self.snapshots.update(self.deck_snapshots())  # deck b's keyframes too
            self.hooks.on_show(dict(self.snapshots), self._show_settings(now))

    def _show_settings(self, now: float) -> dict[str, list[object]]:
        """The show-wide settings as address -> args: the models, the master grade, the mixer."""
        settings: dict[str, list[object]] = {}
        for address in SHOW_SETTINGS:
            command = parse(address, ["?"])
            if command.deck == "a":
                settings[address] = list(self._query(command.name, now))
            elif command.name != "/model/load" or self.deck_b is not None:  # none: not kept
                settings[address] = list(self._deck_b_command(command, now)[0].args)
        for deck, address in ((self.deck, "/model/load"), (self.deck_b, "/deck/b/model/load")):
            model = deck.model if deck is not None else None
            if model is not None and self.catalog.find(model.name) is None:
                settings[address] = [str(model.path)]  # not in the model folders: its path
        settings.update(self.regions.settings())  # by address: the queries above lack the path
        return settings

    def _drain(self, now: float, changes: list[Change]) -> float | None:
        """Apply every queued batch; returns the newest batch's arrival time."""
        drained = self.commands.drain()
        if not drained:
            return None
        if self._step_log is not None:
            self._applied = [batch for batch, _ in drained]
        for batch in coalesce([batch for batch, _ in drained]):
            for command in batch:  # a performer's own value ends a recall's glide to it
                if not command.query:
                    self.preset_control.morphs.pop(command.address, None)
            changes.extend(self._apply_batch(batch, now))
        if self.hooks.on_applied is not None:
            # On disk before the frame renders, so before any answer goes out.
            self.hooks.on_applied(self._index + 1, now, [batch for batch, _ in drained])
        return drained[-1][1]

    def _apply_batch(self, whole: Sequence[Command], now: float) -> list[Change]:
        """Apply one batch at one instant: deck b's commands, deck a's latent state, the rest."""
        changes: list[Change] = []
        batch = [command for command in whole if command.deck == "a"]
        for command in whole:
            if command.deck != "a":
                try:
                    changes.extend(self._deck_b_command(command, now))
                except Exception as exc:  # noqa: BLE001 - as below
                    self._report(exc)
                    changes.append(error(command, str(exc)))
        try:
            played, rest = self.deck.play.apply_batch(batch, now)
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the show
            self._report(exc)
            return changes
        changes.extend(played)
        for command in rest:
            try:
                changes.extend(self._command(command, now))
            except Exception as exc:  # noqa: BLE001 - as above
                self._report(exc)
                changes.append(error(command, str(exc)))
        return changes

    def _answer(self, address: str, now: float) -> tuple[object, ...] | None:
        """The "?" answer of a concrete address, through the same path as any query."""
        for change in self._apply_batch([parse(address, ["?"])], now):
            if change.address == address:
                return change.args
        return None

    # -- engine commands (render thread) -------------------------------------

    def _command(self, command: Command, now: float) -> list[Change]:
        """Apply a command the latent state does not own, by the registry's owner."""
        name = command.name
        owner = REGISTRY[name].owner
        if owner == "outputs":
            handler = self._handlers.get(name)
            if handler is not None:
                return handler(command, now)
            if command.query:
                return [Change(command.address, (), command.origin)]
            return [error(command, "not available in this server")]
        if owner == "osc":  # the OSC edge applies these before the queue; here there is none
            return [error(command, "OSC is off in this server")]
        if owner == "master":
            return self.master.apply(command, now)
        if owner == "preset":
            answer = self.preset_control.apply(command, now)
            if self.preset_control.dirty:  # stored or deleted: the show keeps the bank
                self._show_dirty = True
            recalled = not any(c.address == ERROR_ADDRESS for c in answer)
            if command.name == "/preset/recall" and recalled:
                self._patch_dirty = True  # a recall replaces the routes and triggers
            return answer
        if name.startswith(("/bend/", "/blend/")):
            deck = self._deck_of(command)
            return (
                self.bending.apply(deck, command)
                if deck is not None
                else [error(command, "no deck")]
            )
        if owner == "mixer":
            if command.name == "/source":
                return [
                    error(command, "deck a's video comes in by /react/source; use /deck/b/source")
                ]
            return self.mixer.apply(command, now)
        if owner == "patch":
            if not command.query:
                self._patch_dirty = True
            return self.patch.apply(command, self._source_values(now) if command.query else None)
        if name.startswith("/react/"):
            return self._react(self.decks["a"], command, now)
        if name.startswith("/canvas/region"):
            fill = effective_fill(self.fill, self.deck.module)
            keyframes = self.deck.play.bank.shape[0]
            return self.regions.apply(command, now, fill=fill, keyframes=keyframes)
        if command.query and name == "/keyframe/{n}/thumb":
            version = self.thumbs.version(command.index())
            return [Change(command.address, (version,), command.origin)]
        if command.query:
            return [Change(command.address, self._query(name, now), command.origin)]
        if name == "/model/load":
            return self._load_model(command)
        elif name == "/canvas/fill":
            self.fill = str(command.args[0])
            self._thumbs_due = dict.fromkeys(range(1, KEYFRAMES + 1), False)  # redrawn, framed anew
        else:
            return [error(command, "not available in this server")]
        return [Change(command.address, self._query(name, now))]

    def _deck_b_command(self, command: Command, now: float) -> list[Change]:
        """A command for deck b: its model, latent state, bends, reaction, fader, video."""
        name = command.name
        if name == "/dim":
            return self.mixer.apply(command, now)
        if name == "/source":
            if command.query:
                return [
                    Change(command.address, (self.deck_b_inputs.source or "none",), command.origin)
                ]
            return self._deck_b_source(command)
        if name == "/model/load":
            if command.query:
                loaded = self.deck_b.model.name if self.deck_b is not None else "none"
                return [Change(command.address, (loaded,), command.origin)]
            return self._load_model(command)
        if name.startswith("/react/"):
            return self._react(self.decks["b"], command, now)
        deck = self.deck_b
        if deck is not None and deck.play.handles(command):
            return self._on_deck("b", deck.play.apply(command, now))
        if deck is not None and name.startswith(("/bend/", "/blend/")):
            return self._on_deck("b", self.bending.apply(deck, command))
        if deck is None and (
            REGISTRY[name].owner == "play" or name.startswith(("/bend/", "/blend/"))
        ):
            return [error(command, "deck b has no model: send /deck/b/model/load NAME first")]
        return [error(command, f"{name} is not a command deck b takes")]

    def _on_deck(self, deck: str, changes: list[Change]) -> list[Change]:
        """A deck's feedback under its own addresses: /latent/seed -> /deck/b/latent/seed."""
        out: list[Change] = []
        for change in changes:
            address = change.address
            if deck != "a" and not address.startswith("/deck/") and address != ERROR_ADDRESS:
                try:
                    if lookup(address)[0].deck:
                        address = deck_address(deck, address)
                except CommandError:
                    pass
            out.append(Change(address, change.args, change.to))
        return out

    def _deck_b_source(self, command: Command) -> list[Change]:
        """Deck b's own video, shown instead of its model."""
        return self._open_input(self.deck_b_inputs, command)

    def _query(self, name: str, now: float) -> tuple[object, ...]:
        if name.startswith("/react/"):
            return self.decks["a"].react_query(name, now)
        if name == "/model/load":
            return (self.deck.model.name,)
        if name == "/canvas/fill":
            return (self.fill,)
        if REGISTRY[name].owner == "master":
            return self.master.query(name, now)
        if REGISTRY[name].owner == "mixer" and name != "/source":
            return self.mixer.query(name)
        if name == "/keyframe/progress":
            return self._progress
        return ()

    def _react(self, channel: Channel, command: Command, now: float) -> list[Change]:
        """/react/* on a deck: its input opens here (io work); the rest is the deck's."""
        if command.name == "/react/source" and not command.query:
            return self._open_input(channel.inputs, command)
        return channel.react(command, now)

    def _open_input(self, hub: InputHub, command: Command) -> list[Change]:
        """A source for an input (/react/source, /deck/b/source): none, the camera page, or a
        file, device or NDI source opened off the render thread (answered when open)."""
        spec = str(command.args[0])
        self._aim_camera(hub, spec)
        if spec == "none":
            hub.stop()
            return [Change(command.address, ("none",))]
        if spec == "camera":  # the /camera page (or a WHIP publisher) connects by itself
            return [Change(command.address, ("camera",))]

        def open_it() -> None:
            why = self.hooks.open_input(spec, hub)
            change = error(command, why) if why else Change(command.address, (spec,))
            self.report([change])

        self.start_io(open_it)
        return []

    def _load_model(self, command: Command) -> list[Change]:
        name = str(command.args[0])
        channel = self.decks[command.deck]
        playing = channel.deck
        if playing is not None and name == playing.model.name:
            return [Change(command.address, (name,))]
        try:  # a name, or a path (admin only: the edges refuse it from anyone else)
            path = self.catalog.resolve(name)
        except ModelNotFound as exc:
            return [error(command, f"{exc} (see GET /api/models)")]
        if channel.loading is not None:
            return [error(command, f"still loading {channel.loading}; try again in a moment")]
        channel.loading = name
        channel.recall = None  # a recall waiting for another model: this load replaces it

        def load() -> None:
            # Whatever goes wrong, the load ends with an answer and clears its deck's `loading`:
            # a file the checks did not foresee must not wedge /model/load.
            try:
                model = self.catalog.load(path, device="cpu")
                if model.kind != "unconditional":
                    raise CheckpointError(
                        f"{path}: is a {model.kind} model; "
                        "/model/load needs an unconditional generator"
                    )
            except (CheckpointError, OSError) as exc:
                self._load_failed(command, name, str(exc))
                return
            except Exception as exc:  # any other failure: see above
                logger.exception("/model/load %s raised", name)
                self._load_failed(command, name, f"{path.name}: cannot be loaded: {exc!r}"[:300])
                return
            no_room = memory_check(model, channel.device, self.faults)
            if no_room is not None:  # refused before a byte moves: the playing model goes on
                channel.loading = None
                logger.warning("/model/load %s refused: %s", name, no_room)
                self.report([error(command, no_room)])
                return
            self.offer_model(model, command)

        self.start_io(load)
        return []

    def _load_failed(self, command: Command, name: str, message: str) -> None:
        """A model load that ended without a model: say why, and take loads again (io thread)."""
        self.decks[command.deck].loading = None
        logger.warning("/model/load %s failed: %s", name, message)
        self.report([error(command, message)])

    def _take_models(self, now: float) -> list[Change]:
        with self._incoming_lock:
            incoming, self._incoming = self._incoming, []
            imported, self._imported = self._imported, None
        changes: list[Change] = []
        changes.extend(self.bending.take([c.deck for c in self.decks.values() if c.deck]))
        if imported is not None:
            self.snapshots = imported
            self._thumbs_due = dict.fromkeys(range(1, KEYFRAMES + 1), False)
            saved = imported.get(self.deck.model.name)
            if saved is not None:
                try:
                    changes.extend(self.deck.play.restore(saved, now))
                except Exception as exc:  # noqa: BLE001 - the show goes on with the rest
                    logger.warning("imported show: %s unusable: %s", self.deck.model.name, exc)
                changes.extend(self.deck.play.state())
        for model, command in incoming:
            channel = self.decks[command.deck if command is not None else "a"]
            channel.loading = None  # the load has ended, whatever follows
            try:
                deck = self._deck(model, now, channel.device)
            except Exception as exc:  # noqa: BLE001 - the playing model goes on
                logger.warning("%s cannot be played: %s", model.name, exc)
                if command is not None:
                    changes.append(error(command, str(exc) or type(exc).__name__))
                continue
            outgoing = channel.deck
            if outgoing is not None:  # its keyframes (and bends) kept for when it comes back
                self.snapshots[outgoing.model.name] = outgoing.snapshot()
            # The outgoing model fades out over MODEL_FADE_SECONDS, on either deck.
            channel.fading, channel.deck = outgoing, deck
            channel.fade_started = now
            if channel.name == "a":
                self._thumbs_due = dict.fromkeys(range(1, KEYFRAMES + 1), False)
            try:
                channel.reactor.fit_generator(model)
            except Exception:  # mirror stays off for this model; the switch goes on
                logger.exception("%s: cannot check the encoder against it", model.name)
            loaded = [Change("/model/load", (model.name,)), *deck.play.state()]
            changes.extend(self._on_deck(channel.name, loaded))
            recall, channel.recall = channel.recall, None
            if recall is not None and recall.model == model.name:  # a preset's values for it
                changes.extend(self.preset_control.land(channel, recall, now))
        return changes

    # -- decks (render thread) ----------------------------------------------------------

    def _deck_of(self, command: Command) -> Deck | None:
        """The deck a command addresses; None for deck b while nothing is loaded there."""
        return self.decks[command.deck].deck

    def _fall_back(self, exc: BaseException) -> None:
        """After a device error: the deck that was rendering to its last good path
        (server.gpu_guard); deck a when the error came after the decks (the mix)."""
        channel, self._rendering = self.decks[self._rendering], "a"
        deck = channel.deck
        if deck is None:
            return
        channel.fading = None  # the outgoing model shares the device: let it go
        self._held = None
        found = fall_back(deck.model, deck.module, deck.device, deck.path, deck.half, str(exc))
        if found is None:
            return
        deck.module, deck.device, deck.path, deck.half = (
            found.module,
            found.device,
            found.path,
            False,
        )
        if found.reloaded or isinstance(deck.space, ZSpace):
            deck.space = deck.play.space = space_for(deck.model, found.module)
        if found.device.type == "cpu" and channel.device.type != "cpu":
            if channel.device != self.device:  # a deck on a device of its own leaves it alone
                channel.device = found.device
            else:
                # Later loads too: the GPU is not trusted until restart (either deck's).
                for each in self.decks.values():
                    if each.device == self.device:
                        each.device = found.device
                self.device = found.device
                self._native = True
                torch.set_num_threads(cpu_threads(self.config.threads))
        note = deck.path.notes[-1] if channel.name == "a" else f"deck b: {deck.path.notes[-1]}"
        self.report([Change(ERROR_ADDRESS, ("/render", note))])

    def _report(self, exc: BaseException) -> None:
        self.errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if message != self._last_error:
            # Logged once per distinct error, with context; a repeat only counts.
            logger.error(
                "render step %d failed (model %s, device %s): %s",
                self._index + 1,
                self.deck.model.name,
                self.device,
                message,
                exc_info=exc,
            )
        self._last_error = message


def _video_tensor(frame: InputFrame, device: torch.device) -> torch.Tensor:
    """An incoming frame as a picture (1, 3, H, W) in [-1, 1] on the device."""
    rgb = torch.from_numpy(frame.rgb()).to(device)
    return rgb.permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _black(canvas: tuple[int, int], device: torch.device) -> torch.Tensor:
    """A black picture at the canvas's aspect, tiny: the frame conversion scales it."""
    width, height = canvas
    return torch.full((1, 3, 2, max(2, round(2 * width / height))), -1.0, device=device)


# io threads (model and partner loads, channel clusters) still running; see _finish_io.
_IO_THREADS: set[threading.Thread] = set()
IO_EXIT_GRACE_S = 15.0  # how long the process waits for them as it exits


def _daemon_thread(work: Callable[[], None]) -> None:
    thread = threading.Thread(target=work, name="ganvj-io", daemon=True)
    _IO_THREADS.difference_update([t for t in _IO_THREADS if not t.is_alive()])
    _IO_THREADS.add(thread)
    thread.start()


@atexit.register
def _finish_io() -> None:
    """Let io work still running finish (within a bound) before the interpreter goes down.

    A daemon thread stopped in the middle of a torch op (a cluster computation,
    a model load) while the interpreter finalizes ends the process with
    "terminate called without an active exception" and SIGABRT: an exit code
    of 134 after a clean shutdown. A thread that outlasts the bound is left.
    """
    deadline = time.monotonic() + IO_EXIT_GRACE_S
    for thread in list(_IO_THREADS):
        thread.join(max(0.0, deadline - time.monotonic()))
