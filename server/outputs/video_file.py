"""Record the set: the encoded stream muxed to a file as it was sent, never re-encoded.

VP8 goes to WebM, H.264 to fragmented MP4. Matroska is written cluster by
cluster (one a second) and every packet is flushed to the operating system,
so a crash or SIGKILL leaves a file that plays up to its last complete
cluster; fragmented MP4 likewise up to its last fragment. A file starts on a
keyframe. The event loop only copies packet bytes into a bounded queue; a
writer thread of its own muxes them. A full disk or any write error ends the
recording with a reason; the show goes on.
"""

from __future__ import annotations

import contextlib
import fractions
import io
import logging
import queue
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

from server.media.stream import TIME_BASE, EncodedFrame

logger = logging.getLogger(__name__)

# Limits
QUEUE_FRAMES = 256  # encoded frames waiting for the writer (8 s at 30 fps)
MAX_NAME_CHARS = 64
CLUSTER_MS = 1000  # Matroska cluster length: what a crash can cost at most

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CONTAINERS = {
    # codec -> (format, suffix, muxer options)
    "vp8": (
        "webm",
        ".webm",
        {"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
    ),
    "h264": (
        "mp4",
        ".mp4",
        {
            # Fragmented: a moof per keyframe, the moov first (after the first
            # keyframe, where SPS/PPS become known); nothing needs the end.
            "movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",
            "flush_packets": "1",
        },
    ),
}


class RecordError(ValueError):
    """A recording that cannot start; the message says why."""


def check_name(name: str) -> str:
    """A file stem for the recordings folder (no paths, no hidden files)."""
    if not name or len(name) > MAX_NAME_CHARS or not NAME.match(name):
        raise RecordError(
            f"recording name {name[:80]!r}: use 1..{MAX_NAME_CHARS} letters, digits, '_', '-', "
            "'.', starting with a letter or digit"
        )
    return name


def unused_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/stem.suffix, or stem-2, stem-3 ... when it exists: never overwrite a set."""
    path = folder / f"{stem}{suffix}"
    n = 2
    while path.exists() or path.with_suffix(".perf.jsonl").exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


@dataclass(frozen=True)
class _Packet:
    data: bytes  # a copy: av.Packets stay with the event loop's viewers
    pts: int  # 1/90000 s
    keyframe: bool
    width: int
    height: int


def template_stream(
    codec: str, keyframe: bytes, width: int, height: int
) -> av.container.InputContainer:
    """A one-frame in-memory file whose stream describes ours (size, SPS/PPS) to the muxer."""
    if codec == "vp8":
        # IVF: a 32-byte file header, then a 12-byte frame header.
        header = b"DKIF" + struct.pack("<HHIHHIIII", 0, 32, 0x30385056, width, height, 30, 1, 1, 0)
        data = header + struct.pack("<IQ", len(keyframe), 0) + keyframe
        return av.open(io.BytesIO(data), "r", format="ivf")
    return av.open(io.BytesIO(keyframe), "r", format="h264")  # Annex B, SPS/PPS in front


class Recording:
    """One file, written by its own thread from a bounded queue of packet copies."""

    def __init__(
        self,
        *,
        path: Path,
        codec: str,
        request_keyframe: Callable[[], None],
        on_end: Callable[[Recording], None],
    ) -> None:
        self.path = path
        self.codec = codec
        self.frames = 0  # frames written
        self.bytes = 0
        self.dropped = 0  # queue overflows (each restarts at a keyframe)
        self.error: str | None = None
        self.started_at = time.monotonic()
        self._request_keyframe = request_keyframe
        self._on_end = on_end
        self._queue: queue.Queue[_Packet | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._waiting_for_keyframe = True
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="ganvj-record", daemon=True)
        self._thread.start()
        request_keyframe()  # start on a keyframe, now rather than at the next interval

    def offer(self, encoded: EncodedFrame) -> None:
        """One encoded frame (event loop): copy its bytes for the writer."""
        if self._stopped:
            return
        if self._waiting_for_keyframe:
            if not encoded.keyframe:
                return
            self._waiting_for_keyframe = False
        packet = _Packet(
            data=b"".join(bytes(p) for p in encoded.packets),
            pts=int(encoded.packets[0].pts or 0),
            keyframe=encoded.keyframe,
            width=encoded.frame.width,
            height=encoded.frame.height,
        )
        try:
            self._queue.put_nowait(packet)
        except queue.Full:
            # The disk is slower than the stream: skip to the next keyframe
            # rather than write a frame whose predecessors are missing.
            self.dropped += 1
            self._waiting_for_keyframe = True
            self._request_keyframe()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the file (any thread but the writer's)."""
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def active(self) -> bool:
        """True until stopped or failed."""
        return not self._stopped and self.error is None

    def _run(self) -> None:
        container: av.container.OutputContainer | None = None
        stream: av.video.stream.VideoStream | None = None
        try:
            while True:
                try:
                    packet = self._queue.get(timeout=0.25)
                except queue.Empty:
                    if self._stopped:
                        break  # stopped while the queue was full: no sentinel came
                    continue
                if packet is None:
                    break
                if container is None:
                    container, stream = self._open(packet)
                assert stream is not None
                out = av.Packet(packet.data)
                out.pts = out.dts = packet.pts
                out.time_base = TIME_BASE
                out.is_keyframe = packet.keyframe
                out.stream = stream
                container.mux(out)
                self.frames += 1
                self.bytes += len(packet.data)
        except (av.FFmpegError, OSError) as exc:
            self.error = f"recording {self.path.name} stopped: {exc}"
            logger.error("%s", self.error)
        finally:
            self._stopped = True
            if container is not None:
                try:
                    container.close()
                except (av.FFmpegError, OSError) as exc:
                    self.error = self.error or f"recording {self.path.name}: closing failed: {exc}"
            self._on_end(self)

    def _open(
        self, first: _Packet
    ) -> tuple[av.container.OutputContainer, av.video.stream.VideoStream]:
        fmt, _, options = CONTAINERS[self.codec]
        source = template_stream(self.codec, first.data, first.width, first.height)
        container = av.open(str(self.path), "w", format=fmt, options=dict(options))
        stream = container.add_stream_from_template(source.streams.video[0])
        stream.time_base = fractions.Fraction(1, 90_000)
        source.close()
        return container, stream
