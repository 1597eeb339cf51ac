"""NDI out: the picture as a network source for Resolume, TouchDesigner, OBS.

A thread of its own waits on the latest-frame slot, repacks each new frame's
planar YUV 4:2:0 into UYVY (the 4:2:2 layout NDI takes natively, so the
library does no colour conversion) and sends it. It reads the slot like any
other reader: a slow network skips frames, never slows the render loop or the
WebRTC encoder. The NDI runtime comes from the optional `ndi-python` wheel
(`pip install -e ".[ndi]"`); without it, NDI reports itself unavailable.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from server.media.frame import Frame
from server.media.slot import LatestSlot
from server.meters import RateMeter

logger = logging.getLogger(__name__)

SOURCE_NAME = "ganvj"  # receivers list it as "<HOST> (ganvj)"
_init_lock = threading.Lock()
_initialized = False


def load() -> tuple[Any, str | None]:
    """The NDIlib module, or None and why not."""
    global _initialized
    try:
        import NDIlib as ndi
    except ImportError as exc:
        return None, f"NDI needs the ndi-python wheel: pip install -e '.[ndi]' ({exc})"
    with _init_lock:
        if not _initialized:
            if not ndi.initialize():
                return None, "the NDI runtime did not start (this CPU or OS is not supported)"
            _initialized = True
    return ndi, None


def default_name() -> str:
    """The source name: receivers show it as "<host> (ganvj)"."""
    return SOURCE_NAME


def uyvy(yuv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Planar yuv420p (H * 3 // 2, W) -> packed UYVY (H, W * 2): chroma rows doubled."""
    y = yuv[:height]
    quarter = (height // 2) * (width // 2)
    chroma = yuv[height:].reshape(-1)
    u = chroma[:quarter].reshape(height // 2, width // 2)
    v = chroma[quarter : 2 * quarter].reshape(height // 2, width // 2)
    out = np.empty((height, width // 2, 4), dtype=np.uint8)  # U Y0 V Y1 per pixel pair
    out[..., 0] = np.repeat(u, 2, axis=0)
    out[..., 1] = y[:, 0::2]
    out[..., 2] = np.repeat(v, 2, axis=0)
    out[..., 3] = y[:, 1::2]
    return out.reshape(height, width * 2)


class NdiSender:
    """Sends every new rendered frame as one NDI source, from its own thread."""

    def __init__(
        self,
        *,
        frames: LatestSlot[Frame],
        fps: float,
        name: str = "",
        transform: Callable[[Frame], Frame | None] | None = None,
    ) -> None:
        self.name = name or default_name()
        # A projector output's warp (server/outputs/warp.py), run on this sender's
        # thread; None from it skips the frame.
        self.transform = transform
        self.fps = fps
        self.sent = RateMeter()
        self.frames_sent = 0
        self.error: str | None = None
        self._frames = frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the sender thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str | None:
        """Start sending; None, or why NDI is unavailable."""
        ndi, why = load()
        if ndi is None:
            self.error = why
            return why
        if self._thread is not None and self._thread.is_alive():
            if not self._stop.is_set():
                return None  # already sending
            self._thread.join(2.0)  # a stop still finishing
        self._stop.clear()
        self.error = None
        self._thread = threading.Thread(
            target=self._run, args=(ndi,), name="ganvj-ndi", daemon=True
        )
        self._thread.start()
        return None

    def stop(self, timeout: float | None = None) -> None:
        """Stop sending; waits for the thread only when given a timeout."""
        self._stop.set()
        if timeout is not None and self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, object]:
        """Numbers for /api/status."""
        return {
            "on": self.running,
            "name": self.name,
            "host": socket.gethostname(),
            "fps": round(self.sent.rate(), 2),
            "frames": self.frames_sent,
            "error": self.error,
        }

    def _run(self, ndi: Any) -> None:
        settings = ndi.SendCreate()
        settings.ndi_name = self.name
        settings.clock_video = False  # the render loop is the clock
        sender = ndi.send_create(settings)
        if sender is None:
            self.error = "the NDI sender could not be created"
            logger.error("%s", self.error)
            return
        rate = round(self.fps * 1000)
        seen = 0
        try:
            while not self._stop.is_set():
                seq, frame = self._frames.wait_newer(seen, timeout=0.1)
                if frame is None or seq == seen or self._frames.closed:
                    if self._frames.closed:
                        break
                    continue
                seen = seq
                if self.transform is not None:
                    frame = self.transform(frame)
                    if frame is None:
                        continue
                video = ndi.VideoFrameV2()
                video.data = uyvy(frame.yuv, frame.width, frame.height)
                # The data setter guesses the size from the array: set it as it is.
                video.FourCC = ndi.FOURCC_VIDEO_TYPE_UYVY
                video.xres, video.yres = frame.width, frame.height
                video.line_stride_in_bytes = frame.width * 2
                video.frame_rate_N, video.frame_rate_D = rate, 1000
                # Render time in 100 ns units: receivers that sync on timecode get
                # the frame's own time, and tests match frames by it.
                video.timecode = int(frame.rendered_at * 10_000_000)
                ndi.send_send_video_v2(sender, video)
                self.frames_sent += 1
                self.sent.tick()
        except Exception as exc:  # NDI fails alone; the show goes on
            self.error = f"NDI sending stopped: {type(exc).__name__}: {exc}"
            logger.exception("%s", self.error)
        finally:
            ndi.send_destroy(sender)
