"""Encode once, send to every viewer.

aiortc builds an encoder per RTCRtpSender, so CPU grows with the audience.
Here one `StreamEncoder` thread per output stream encodes each new frame
once; its packets go to a `PacketHub` on the event loop, which hands them to
every `ViewerTrack`. A track returns `av.Packet`s from `recv()`, so the
sender only packetizes. Picture-loss requests and new viewers ask the one
encoder for a keyframe. A slow viewer overflows its own small queue, drops
to the next keyframe and never slows anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from server.config import StreamConfig
from server.media.frame import Frame
from server.media.slot import LatestSlot
from server.meters import RateMeter

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000  # RTP video clock rate
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
CODEC_NAMES = {"vp8": "libvpx", "h264": "libx264"}  # the software encoders
HARDWARE = {"h264": "h264_nvenc"}  # NVIDIA's, where PyAV's FFmpeg has it and a GPU opens it
# Below this many pixels a frame encodes fastest on one thread: FFmpeg's
# threading cost 30x the CPU time per frame on a busy 2-core machine (64 px:
# 8 ms against 0.27 ms). Above it (720p and up) the slices pay for themselves.
THREADED_PIXELS = 1280 * 720


def encoder_threads(
    setting: int, width: int, height: int, cores: int | None = None, codec: str = "h264"
) -> int:
    """Threads for a software encoder: `setting`, or (0) what the frame and the cores allow.

    Auto: one below THREADED_PIXELS. Above it, every core but one (the render
    thread's), at most eight; x264 (sliced threads, no frame delay) gets at
    least two. libvpx's threads wait on one another: on a busy 2-core machine
    two of them took 905 ms/frame at 1080p against 78 ms for one
    (docs/canvas.md), so it gets more than one only where cores are spare.
    """
    if setting > 0:
        return setting
    if width * height < THREADED_PIXELS:
        return 1
    cores = cores if cores is not None else (os.cpu_count() or 1)
    spare = min(8, cores - 1)
    return max(2 if codec == "h264" else 1, spare)


def name_os_thread(name: str) -> None:
    """Give the calling thread `name` in the OS too (top -H, /proc/PID/task/TID/comm), on Linux.

    Python 3.11 names its threads only for itself. FFmpeg's own threads, started
    by a codec this thread opens, inherit the name, so a profiler (and `ganvj
    bench stream`) tells the encoder's CPU from the render thread's.
    """
    with contextlib.suppress(OSError):  # no /proc (not Linux): nothing to name
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(name[:15])


def hardware_available(codec: str) -> str | None:
    """The hardware encoder PyAV lists for this codec, or None."""
    name = HARDWARE.get(codec)
    return name if name is not None and name in av.codecs_available else None


@dataclass(frozen=True)
class EncodedFrame:
    """The packets of one encoded frame."""

    packets: tuple[av.Packet, ...]
    keyframe: bool
    frame: Frame  # the picture it encodes (for latency figures)
    encoded_at: float


def open_encoder(
    codec: str,
    *,
    width: int,
    height: int,
    bitrate: int,
    fps: float,
    encoder: str = "auto",
    threads: int = 0,
) -> av.VideoCodecContext:
    """The encoder stream.encoder asks for, falling back to software where it cannot be had.

    auto or nvenc: NVIDIA's hardware encoder for h264 when PyAV's FFmpeg has it
    and it opens (a GPU with NVENC, its driver); otherwise, with a warning when
    it was named, the software one. software: always the software one.
    """
    if encoder in ("auto", "nvenc"):
        hardware = hardware_available(codec)
        if hardware is None:
            if encoder == "nvenc":
                logger.warning(
                    "stream.encoder = nvenc: PyAV has no %s; encoding with %s",
                    HARDWARE.get(codec, "hardware encoder"),
                    CODEC_NAMES[codec],
                )
        else:
            try:
                return open_codec(
                    codec, width=width, height=height, bitrate=bitrate, fps=fps, name=hardware
                )
            except Exception as exc:  # noqa: BLE001 - any failure to open: software instead
                log = logger.warning if encoder == "nvenc" else logger.info
                log(
                    "%s does not open here (%s); encoding with %s",
                    hardware,
                    exc,
                    CODEC_NAMES[codec],
                )
    return open_codec(
        codec,
        width=width,
        height=height,
        bitrate=bitrate,
        fps=fps,
        threads=encoder_threads(threads, width, height, codec=codec),
    )


def open_codec(
    codec: str,
    *,
    width: int,
    height: int,
    bitrate: int,
    fps: float,
    name: str | None = None,
    threads: int = 1,
) -> av.VideoCodecContext:
    """A realtime, low-latency encoder context for one output stream.

    `name`: the FFmpeg encoder (default: the codec's software one); `threads`:
    the software encoder's threads (x264 slices, libvpx partitions: no frame delay).
    """
    name = name or CODEC_NAMES[codec]
    context = av.CodecContext.create(name, "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width = width
    context.height = height
    context.pix_fmt = "yuv420p"
    context.time_base = TIME_BASE
    context.framerate = fractions.Fraction(round(fps * 1000), 1000)
    context.bit_rate = bitrate
    # Keyframes come on request (new viewer, picture loss) and on our own
    # interval; the codec's GOP is only a backstop.
    context.gop_size = 10_000
    # Threads chosen, never FFmpeg's automatic count (see encoder_threads).
    context.thread_count = threads
    if name.endswith("_nvenc"):
        # Low-latency realtime: no B-frames, no lookahead, an IDR on request.
        context.options = {
            "preset": "p1",
            "tune": "ull",
            "zerolatency": "1",
            "rc": "cbr",
            "forced-idr": "1",
            "delay": "0",
        }
        context.profile = "Baseline"
        context.max_b_frames = 0
    elif codec == "vp8":
        context.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "auto-alt-ref": "0",
            "error-resilient": "1",
            "max-intra-rate": "300",
            "undershoot-pct": "95",
            "buf-sz": "1000",
            "buf-initial-sz": "500",
            "buf-optimal-sz": "600",
        }
        context.qmin = 2
        context.qmax = 56
    else:
        context.profile = "Constrained Baseline"
        context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "forced-idr": "1",
            "repeat-headers": "1",
        }
        context.max_b_frames = 0
    context.open()
    return context


def median_encode_ms(context: av.VideoCodecContext, width: int, height: int, frames: int) -> float:
    """Median ms to encode one frame of moving noise at this size (the first is warm-up).

    What `ganvj doctor` and `ganvj bench gpu` time an encoder with: noise that
    shifts each frame keeps the encoder from coasting on a still picture.
    """
    base = np.random.default_rng(0).integers(0, 255, (height * 3 // 2, width), dtype=np.uint8)
    times = []
    for i in range(frames + 1):
        picture = av.VideoFrame.from_ndarray(np.roll(base, i * 4, axis=1), format="yuv420p")
        picture.pts = i
        start = time.perf_counter()
        context.encode(picture)
        if i:
            times.append(time.perf_counter() - start)
    return 1000.0 * sorted(times)[len(times) // 2]


class StreamEncoder:
    """One encoder thread for one output stream: new frame in, packets out."""

    # With no new frame for this long (a stalled generator), the last frame is
    # encoded again so new viewers still get a picture.
    REPEAT_AFTER_SECONDS = 1.0

    def __init__(
        self,
        *,
        frames: LatestSlot[Frame],
        config: StreamConfig,
        fps: float,
        on_encoded: Callable[[EncodedFrame], None],
    ) -> None:
        self.config = config
        self.fps = fps
        self.encoded_rate = RateMeter()
        self.keyframes = 0
        self.errors = 0
        self.encodes = 0  # frames through the encoder: one per frame, however many viewers
        self.encode_ms = 0.0  # moving average of one encode
        self.encoder_name = ""  # the FFmpeg encoder running (libvpx, libx264, h264_nvenc)
        self.encoder_threads = 0
        self._frames = frames
        self._on_encoded = on_encoded
        self._keyframe_wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: av.VideoCodecContext | None = None
        self._start = time.monotonic()
        self._last_pts = -1
        self._last_keyframe = 0.0

    def request_keyframe(self) -> None:
        """Make the next encoded frame a keyframe (new viewer, picture loss)."""
        self._keyframe_wanted.set()

    def start(self) -> None:
        """Start the encoder thread."""
        self._thread = threading.Thread(target=self._run, name="ganvj-encode", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (the frame slot must be closed or about to produce)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> StreamEncoder:
        """Start encoding; leaving the block stops the thread."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        name_os_thread("ganvj-encode")
        seen = 0
        last_encode = 0.0
        while not self._stop.is_set():
            seq, frame = self._frames.wait_newer(seen, timeout=0.1)
            if self._stop.is_set() or (self._frames.closed and seq == seen):
                return
            if frame is None:
                continue
            now = time.monotonic()
            stale = seq == seen
            if stale and not (
                self._keyframe_wanted.is_set() or now - last_encode > self.REPEAT_AFTER_SECONDS
            ):
                continue
            seen = seq
            try:
                encoded = self.encode(frame, now)
            except Exception as exc:
                self.errors += 1
                logger.exception("encoding frame %d failed: %s", frame.index, exc)
                self._context = None  # reopen on the next frame
                continue
            last_encode = now
            if encoded is not None:
                self._on_encoded(encoded)

    def encode(self, frame: Frame, now: float) -> EncodedFrame | None:
        """Encode one frame (on the calling thread); None if the codec held it back."""
        context = self._context
        if context is None or context.width != frame.width or context.height != frame.height:
            context = self._context = open_encoder(
                self.config.codec,
                width=frame.width,
                height=frame.height,
                bitrate=self.config.bitrate_kbps * 1000,
                fps=self.fps,
                encoder=self.config.encoder,
                threads=self.config.encoder_threads,
            )
            self.encoder_name, self.encoder_threads = context.name, context.thread_count
            logger.info(
                "encoding %dx%d with %s (%d threads)",
                frame.width,
                frame.height,
                context.name,
                context.thread_count,
            )
            self._keyframe_wanted.set()
        video = av.VideoFrame.from_ndarray(frame.yuv, format="yuv420p")
        # Monotonic pts, strictly increasing even when a frame is sent again.
        pts = max(int((now - self._start) * VIDEO_CLOCK), self._last_pts + 1)
        self._last_pts = pts
        video.pts = pts
        video.time_base = TIME_BASE
        keyframe = self._keyframe_wanted.is_set() or (
            now - self._last_keyframe > self.config.keyframe_interval_s
        )
        if keyframe:
            self._keyframe_wanted.clear()
            video.pict_type = av.video.frame.PictureType.I
        started = time.perf_counter()
        packets = tuple(context.encode(video))
        took = (time.perf_counter() - started) * 1000.0
        self.encode_ms = took if self.encodes == 0 else 0.9 * self.encode_ms + 0.1 * took
        self.encodes += 1
        if not packets:
            return None
        is_key = any(p.is_keyframe for p in packets)
        if is_key:
            self.keyframes += 1
            self._last_keyframe = now
        for packet in packets:
            packet.time_base = TIME_BASE
        self.encoded_rate.tick(now)
        return EncodedFrame(
            packets=packets, keyframe=is_key, frame=frame, encoded_at=time.monotonic()
        )


class ViewerTrack(MediaStreamTrack):
    """A video track for one viewer that returns pre-encoded packets."""

    kind = "video"

    def __init__(self, *, hub: PacketHub, queue_size: int) -> None:
        super().__init__()
        self._hub = hub
        # Each packet with its frame on the frame's last packet, for the figures.
        self._queue: asyncio.Queue[tuple[av.Packet, EncodedFrame | None]] = asyncio.Queue(
            maxsize=queue_size
        )
        self._waiting_for_keyframe = True
        self.sent = RateMeter()
        self.drops = 0
        self.last_sent: EncodedFrame | None = None

    def offer(self, encoded: EncodedFrame) -> None:
        """Take one encoded frame from the hub (event loop thread)."""
        if self._waiting_for_keyframe:
            if not encoded.keyframe:
                return
            self._waiting_for_keyframe = False
        if self._queue.qsize() + len(encoded.packets) > self._queue.maxsize:
            # Too slow: drop what is queued and restart from the next keyframe
            # (an inter frame without its predecessors would smear the picture).
            self.drops += 1
            while not self._queue.empty():
                self._queue.get_nowait()
            self._waiting_for_keyframe = True
            self._hub.request_keyframe()
            return
        last = len(encoded.packets) - 1
        for i, packet in enumerate(encoded.packets):
            self._queue.put_nowait((packet, encoded if i == last else None))

    def request_keyframe(self) -> None:
        """Picture loss on this viewer: ask the shared encoder for a keyframe."""
        self._hub.request_keyframe()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet, encoded = await self._queue.get()
        if encoded is not None:
            self.sent.tick()
            self.last_sent = encoded
        return packet

    def stop(self) -> None:
        super().stop()
        self._hub.remove(self)


class PacketHub:
    """Fans encoded frames out to every viewer track, on the event loop."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        queue_size: int,
        request_keyframe: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._queue_size = queue_size
        self._request_keyframe = request_keyframe
        self._tracks: set[ViewerTrack] = set()
        # Called with every encoded frame on the event loop (latency meters).
        self.listeners: list[Callable[[EncodedFrame], None]] = []

    def add_viewer(self) -> ViewerTrack:
        """A new viewer track; it starts at the next keyframe, asked for now."""
        track = ViewerTrack(hub=self, queue_size=self._queue_size)
        self._tracks.add(track)
        self.request_keyframe()
        return track

    def remove(self, track: ViewerTrack) -> None:
        """Forget a stopped track."""
        self._tracks.discard(track)

    def request_keyframe(self) -> None:
        """Ask the encoder for a keyframe."""
        self._request_keyframe()

    def publish_threadsafe(self, encoded: EncodedFrame) -> None:
        """Called on the encoder thread: hand over to the event loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self.publish, encoded)

    def publish(self, encoded: EncodedFrame) -> None:
        """Give one encoded frame to every viewer (event loop thread)."""
        for listener in self.listeners:
            listener(encoded)
        for track in list(self._tracks):
            track.offer(encoded)

    @property
    def viewers(self) -> int:
        """Live viewer tracks."""
        return len(self._tracks)


class FrameTrack(MediaStreamTrack):
    """A raw-frame track that lets aiortc encode per viewer (benchmark comparison only)."""

    kind = "video"

    def __init__(self, *, frames: LatestSlot[Frame]) -> None:
        super().__init__()
        self._frames = frames
        self._seen = 0
        self._start = time.monotonic()
        self.sent = RateMeter()

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        while True:
            if self.readyState != "live" or self._frames.closed:
                raise MediaStreamError
            seq, frame = await loop.run_in_executor(None, self._frames.wait_newer, self._seen, 0.5)
            if frame is not None and seq != self._seen:
                break
        self._seen = seq
        video = av.VideoFrame.from_ndarray(frame.yuv, format="yuv420p")
        video.pts = int((time.monotonic() - self._start) * VIDEO_CLOCK)
        video.time_base = TIME_BASE
        self.sent.tick()
        return video
