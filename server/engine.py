"""The engine: the one owner of the resident generator and its latent state.

A render thread (never the event loop) drains queued command batches between
frames, asks the play state for this frame's latent, runs the generator and
converts the result once. Finished frames go to a latest-frame slot. A step
that raises or stalls leaves the last good frame in the slot: viewers keep
seeing it, and rendering goes on.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.checkpoint import LoadedModel
from server.config import RenderConfig
from server.convert import resize, to_yuv420
from server.inputs import InputHub
from server.meters import RateMeter
from server.play import PlayState
from server.reaction import Reaction
from server.reactor import Reactor
from server.slot import LatestSlot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One rendered picture, ready for every encoder."""

    index: int
    yuv: np.ndarray  # (H * 3 // 2, W) uint8, planar yuv420p
    width: int
    height: int
    rendered_at: float  # time.monotonic() when the frame was finished
    render_ms: float  # generator + conversion time
    applied_at: float | None  # arrival time of the newest command this frame shows


def pick_device(name: str) -> torch.device:
    """Resolve "auto" to CUDA, then MPS, then CPU; check an explicit choice exists."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"render.device = {name!r} but no CUDA device is available")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError(f"render.device = {name!r} but MPS is not available")
    return device


def cpu_threads(requested: int) -> int:
    """Torch threads for a CPU generator: as asked, or one less than the cores.

    The encoder and the network need a core of their own: with every core
    running OpenMP workers, a 2-core machine ran a small DCGAN 200x slower
    (5 fps against 1,247) while another process was busy.
    """
    if requested > 0:
        return requested
    return max(1, (os.cpu_count() or 1) - 1)


def half_if_finite(
    module: torch.nn.Module, *, z_dim: int, device: torch.device
) -> tuple[torch.nn.Module, bool]:
    """The module in half precision if a probe render stays finite there, else float32.

    Some generators overflow fp16 (large activations before a tanh); those
    keep rendering in float32 rather than drawing NaN.
    """
    half = module.half()
    with torch.inference_mode():
        probe = half(torch.randn(2, z_dim, device=device).half())
    if bool(torch.isfinite(probe).all()):
        return half, True
    return module.float(), False


Batch = Sequence[Any]  # a list of commands applied together between two frames
BatchHandler = Callable[[Any, float], Sequence[Any]]


class Engine:
    """Owns the generator, the play state and the render thread."""

    STALL_LOG_SECONDS = 2.0

    def __init__(
        self,
        *,
        model: LoadedModel,
        config: RenderConfig,
        device: torch.device,
        queue_size: int = 256,
        pix2pix: LoadedModel | None = None,
        encoder: LoadedModel | None = None,
    ) -> None:
        if model.kind != "unconditional" or model.z_dim is None:
            raise ValueError(
                f"{model.name} is a {model.kind} model; serve needs an unconditional generator"
            )
        self.config = config
        self.device = device
        if device.type == "cpu":
            torch.set_num_threads(cpu_threads(config.threads))
        self.frames: LatestSlot[Frame] = LatestSlot()
        self.commands: queue.Queue[tuple[Batch, float]] = queue.Queue(maxsize=queue_size)
        self.play = PlayState(z_dim=model.z_dim, seed=config.seed, wander_speed=config.wander_speed)
        self.render_rate = RateMeter()
        self.inputs = InputHub()
        self.reaction = Reaction(
            fade_seconds=config.react_fade_s, stall_seconds=config.react_stall_s
        )
        self.reaction.smoothing = config.smoothing
        self.reactor = Reactor(
            reaction=self.reaction, device=device, pix2pix=pix2pix, encoder=encoder
        )
        self.on_changes: Callable[[Sequence[Any]], None] | None = None
        self.errors = 0
        self.dropped_batches = 0
        self._model = model
        self._half = False
        self._module = self._prepare(model)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._index = 0
        self._frame_ms = 0.0
        self._step_started: float | None = None

    # -- public, any thread -------------------------------------------------

    @property
    def model(self) -> LoadedModel:
        """The model being rendered."""
        return self._model

    @property
    def output_size(self) -> int:
        """Side of the frames this engine renders."""
        return self.config.size or self._model.resolution

    def submit(self, batch: Batch) -> bool:
        """Queue commands to apply together before the next frame; False if the queue is full."""
        try:
            self.commands.put_nowait((batch, time.monotonic()))
        except queue.Full:
            self.dropped_batches += 1
            return False
        return True

    def start(self) -> None:
        """Start the render thread."""
        if self._thread is not None:
            raise RuntimeError("engine already started")
        self._thread = threading.Thread(target=self._run, name="ganvj-render", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the render thread and wake every frame reader."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("render thread did not stop within %.1f s", timeout)
        self.frames.close()

    def stats(self) -> dict[str, Any]:
        """Numbers for /api/status."""
        started = self._step_started
        return {
            "rendered_fps": round(self.render_rate.rate(), 2),
            "frame_ms": round(self._frame_ms, 2),
            "frames": self._index,
            "model": self._model.name,
            "arch": self._model.arch,
            "resolution": self._model.resolution,
            "output_size": self.output_size,
            "device": str(self.device),
            "half": self._half,
            "render_errors": self.errors,
            "last_error": self._last_error,
            "dropped_batches": self.dropped_batches,
            "stalled": started is not None and time.monotonic() - started > self.STALL_LOG_SECONDS,
        }

    def render_once(self) -> Frame:
        """Apply pending commands and render one frame on the calling thread."""
        return self._step(time.monotonic(), 1.0 / self.config.fps)

    # -- render thread ------------------------------------------------------

    def _prepare(self, model: LoadedModel) -> torch.nn.Module:
        module = model.module.to(self.device).eval()
        self._half = False
        if self.device.type == "cuda" and self.config.half:
            module, self._half = half_if_finite(module, z_dim=model.z_dim or 1, device=self.device)
            if not self._half:
                logger.info("%s is not finite in half precision; rendering in float32", model.name)
        return module

    def _run(self) -> None:
        period = 1.0 / self.config.fps
        next_due = time.monotonic()
        last = next_due
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self._step(now, now - last)
            except Exception as exc:  # noqa: BLE001 - the show goes on with the last frame
                self._report(exc)
            last = now
            next_due += period
            delay = next_due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                # Behind schedule: render as fast as the model allows, without a
                # burst of catch-up frames.
                next_due = time.monotonic()

    def _step(self, now: float, dt: float) -> Frame:
        self._step_started = time.monotonic()
        applied_at = self._drain(now)
        seq, incoming = self.inputs.frames.latest()
        input_age = (
            None if incoming is None or self.inputs.source is None else now - incoming.arrived_at
        )
        self.reaction.update(now, input_age=input_age, source_ended=self.inputs.ended_reason)
        if self.inputs.source is None:
            incoming = None  # a stopped source's last frame is not live input
        size = self.output_size
        z = self.play.latent(now, dt).to(self.device)  # (z_dim,)
        with torch.inference_mode():
            image = None
            if self.reactor.needs_latent_image(now):
                z = self.reactor.latent(z, now, seq, incoming)
                if self._half:
                    z = z.half()
                image = resize(self._module(z[None]).float(), size)  # (1, 3, S, S)
            image = self.reactor.image(image, now, seq, incoming, size)
            yuv = to_yuv420(image).cpu().numpy()  # the one copy back per frame
        finished = time.monotonic()
        self._index += 1
        frame = Frame(
            index=self._index,
            yuv=yuv,
            width=size,
            height=size,
            rendered_at=finished,
            render_ms=(finished - self._step_started) * 1000.0,
            applied_at=applied_at,
        )
        self._frame_ms = (
            0.9 * self._frame_ms + 0.1 * frame.render_ms if self._index > 1 else frame.render_ms
        )
        self.frames.put(frame)
        self.render_rate.tick(finished)
        self._step_started = None
        return frame

    def _drain(self, now: float) -> float | None:
        """Apply every queued batch; returns the newest batch's arrival time."""
        newest: float | None = None
        while True:
            try:
                batch, arrived = self.commands.get_nowait()
            except queue.Empty:
                return newest
            newest = arrived
            changes: list[Any] = []
            for command in batch:
                changes.extend(self._apply(command, now))
            if changes and self.on_changes is not None:
                self.on_changes(changes)

    def _apply(self, command: Any, now: float) -> Sequence[Any]:
        apply = getattr(self.play, "apply", None)
        if apply is None:
            return ()
        try:
            result: Sequence[Any] = apply(command, now)
        except Exception as exc:  # noqa: BLE001 - one bad command must not stop the show
            self._report(exc)
            return ()
        return result

    def _report(self, exc: BaseException) -> None:
        self.errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if message != self._last_error:
            # Logged once per distinct error, with context; a repeat only counts.
            logger.error(
                "render step %d failed (model %s, device %s): %s",
                self._index + 1,
                self._model.name,
                self.device,
                message,
                exc_info=exc,
            )
        self._last_error = message
