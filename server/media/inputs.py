"""Incoming media: video from a browser camera over WebRTC, a file played in a loop or a
V4L2 device; audio from a browser over WebRTC (the /audio page).

Every source writes its decoded pictures into one latest-input slot as plain
read-only YUV 4:2:0 arrays, never as `av.VideoFrame`s: a frame carries its own
libswscale context, and two threads converting one frame at once deadlocked in
swscale's slice threads (seen in our own tests). So each thread owns its
frames: the producer copies the planes out (a memcpy for the decoders'
yuv420p, no colour conversion on the event loop), and the render thread builds
its own frame from the array for the one scale + RGB conversion it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from server.media.slot import LatestSlot
from server.meters import RateMeter

logger = logging.getLogger(__name__)


class SourceError(ValueError):
    """A video source that cannot be opened; the message names it."""


@dataclass(frozen=True)
class InputFrame:
    """One incoming picture: its own read-only copy of the decoded planes."""

    yuv: np.ndarray  # (H * 3 // 2, W) uint8, yuv420p planes stacked as PyAV lays them out
    arrived_at: float  # time.monotonic() when it reached the server
    source: str  # "camera", "file:clip.mp4", "v4l2:/dev/video0"

    @property
    def width(self) -> int:
        return int(self.yuv.shape[1])

    @property
    def height(self) -> int:
        return int(self.yuv.shape[0] * 2 // 3)

    def to_frame(self) -> av.VideoFrame:
        """A fresh `av.VideoFrame` owned by the caller's thread (never shared)."""
        return av.VideoFrame.from_ndarray(self.yuv, format="yuv420p")

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, converted in the caller's thread on a frame of its own."""
        return self.to_frame().to_ndarray(format="rgb24")


def copy_planes(frame: av.VideoFrame) -> np.ndarray:
    """The picture as a new read-only yuv420p array, even-sized (a plain copy for yuv420p)."""
    if frame.width % 2 or frame.height % 2 or frame.format.name != "yuv420p":
        frame = frame.reformat(
            width=frame.width // 2 * 2 or 2, height=frame.height // 2 * 2 or 2, format="yuv420p"
        )
    planes = frame.to_ndarray()  # a new array: the frame's buffers are not referenced
    planes.flags.writeable = False
    return planes


class InputHub:
    """The latest-input slot and who feeds it; one source at a time."""

    def __init__(self) -> None:
        self.frames: LatestSlot[InputFrame] = LatestSlot()
        self.rate = RateMeter()
        self.source: str | None = None
        self.ended_reason: str | None = None
        self._stop_current: asyncio.Event | threading.Event | None = None
        self._lock = threading.Lock()

    def put(self, image: av.VideoFrame, source: str) -> None:
        """Offer a frame from `source` (any thread); frames of a replaced source are ignored."""
        if source != self.source:
            return
        now = time.monotonic()
        self.frames.put(InputFrame(yuv=copy_planes(image), arrived_at=now, source=source))
        self.rate.tick(now)

    def begin(self, source: str, stop: asyncio.Event | threading.Event) -> None:
        """Make `source` the current one, stopping the one before."""
        with self._lock:
            if self._stop_current is not None:
                self._stop_current.set()
            self.source = source
            self.ended_reason = None
            self._stop_current = stop

    def end(self, source: str, reason: str) -> None:
        """`source` is gone (disconnected, file unreadable); the reason reaches the state."""
        with self._lock:
            if self.source == source:
                self.source = None
                self.ended_reason = reason
                self._stop_current = None
        logger.info("input %s ended: %s", source, reason)

    def stop(self) -> None:
        """Stop whatever feeds the slot."""
        with self._lock:
            if self._stop_current is not None:
                self._stop_current.set()
            if self.source is not None:
                self.ended_reason = "stopped"
            self.source = None
            self._stop_current = None

    def status(self) -> dict[str, object]:
        """Numbers for /api/status."""
        _, latest = self.frames.latest()
        age = None if latest is None else round(time.monotonic() - latest.arrived_at, 3)
        return {
            "source": self.source,
            "fps": round(self.rate.rate(), 2),
            "last_frame_age_s": age,
            "ended": self.ended_reason,
        }


async def pump_track(target: Callable[[], InputHub], track: MediaStreamTrack, source: str) -> None:
    """Feed frames of a received WebRTC track into a hub until it ends or is replaced.

    `target()` names the hub on every frame: the camera moves to the deck that
    asked for it last (/react/source camera, /deck/b/source camera) without
    the camera page or a WHIP publisher connecting again.
    """
    stop = asyncio.Event()
    hub = target()
    hub.begin(source, stop)
    reason = "the camera disconnected"
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    receive: asyncio.Future[Any] | None = None
    try:
        while True:
            receive = asyncio.ensure_future(track.recv())
            done, _ = await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                reason = "replaced by another source"
                break
            frame = receive.result()  # MediaStreamError when the track ends
            if not isinstance(frame, av.VideoFrame):
                continue
            moved = target()
            if moved is not hub:
                hub.end(source, "the camera moved to another deck")
                hub = moved
                hub.begin(source, stop)
            hub.put(frame, source)
    except MediaStreamError:
        pass
    finally:
        for task in (receive, stopped):
            if task is not None:
                _discard(task)
        hub.end(source, reason)


async def pump_audio(track: MediaStreamTrack, deliver: Callable[[np.ndarray, int], None]) -> None:
    """Read a WebRTC audio track and hand each frame's samples over (the /audio page)."""
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            if not isinstance(frame, av.AudioFrame):
                continue  # an audio track yields audio frames; this keeps the types honest
            # s16 interleaved: (1, samples * channels) -> (samples, channels)
            data = frame.to_ndarray().reshape(-1, len(frame.layout.channels))
            deliver(data, int(frame.sample_rate))


def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a helper task and mark its outcome as seen (no "never retrieved" noise)."""
    task.cancel()
    task.add_done_callback(lambda t: None if t.cancelled() else t.exception())


def open_source(spec: str) -> tuple[av.container.InputContainer, str, bool]:
    """Open "file:PATH" or "v4l2:/dev/videoN"; returns (container, name, loops).

    A path that cannot be opened gets one text whatever the reason, so a sender
    cannot tell which paths exist (Errno 2 against Errno 25); the log has the reason.
    """
    kind, _, target = spec.partition(":")
    if kind not in ("file", "v4l2"):
        raise SourceError(f"unknown source {spec[:80]!r}: expected file:PATH or v4l2:/dev/videoN")
    refusal = f"cannot open {spec[:80]!r} as video: the server's log says why"
    try:
        if kind == "file":
            path = Path(target).expanduser()
            if not path.is_file():
                logger.warning("video source %r: no such file", spec)
                raise SourceError(refusal)
            container = av.open(str(path))
            loops = True
        else:
            container = av.open(target, format="v4l2")
            loops = False
    except (av.FFmpegError, OSError) as exc:
        logger.warning("video source %r: %s", spec, exc)
        raise SourceError(refusal) from exc
    if not container.streams.video:
        container.close()
        logger.warning("video source %r: no video stream", spec)
        raise SourceError(refusal)
    return container, f"{kind}:{Path(target).name if kind == 'file' else target}", loops


def play_source(hub: InputHub, spec: str) -> threading.Thread:
    """Play a file (looping, at its own frame rate) or a device into the hub on a thread."""
    container, name, loops = open_source(spec)
    stop = threading.Event()
    hub.begin(name, stop)

    def run() -> None:
        reason = "the file ended"
        try:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 25)
            while not stop.is_set():
                started = time.monotonic()
                shown = 0
                for frame in container.decode(stream):
                    if stop.is_set():
                        break
                    hub.put(frame, name)
                    shown += 1
                    # Pace to the file's own rate; a device paces itself.
                    if loops:
                        delay = started + shown / rate - time.monotonic()
                        if delay > 0:
                            stop.wait(delay)
                if not loops or stop.is_set():
                    break
                if shown == 0:
                    reason = "the file has no decodable frames"
                    break
                container.seek(0)
            if stop.is_set():
                reason = "stopped"
        except (av.FFmpegError, OSError) as exc:
            reason = f"reading {name} failed: {exc}"
        finally:
            container.close()
            hub.end(name, reason)

    thread = threading.Thread(target=run, name=f"ganvj-input-{name}", daemon=True)
    thread.start()
    return thread
