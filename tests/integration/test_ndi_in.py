"""NDI in: an ndi-python sender on loopback becomes deck b's source, its picture on deck b."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import av
import numpy as np
import pytest

from server.commands import parse
from server.lifecycle import running
from tests.conftest import server_config, tiny_model

ndi: Any = pytest.importorskip(
    "NDIlib",
    reason="ndi-python, the optional `ndi` extra, is not installed: scripts/install --test "
    "tries it and says so where this platform has no wheel",
)

SENDER = "ganvj-test-deck-b"
BGR = (40, 200, 120)  # blue, green, red: a colour no generator of the test paints flat


class Sender:
    """An NDI source on this machine sending one flat colour, 30 frames a second."""

    def __init__(self, bgr: tuple[int, int, int], width: int = 64, height: int = 48) -> None:
        self.picture = np.zeros((height, width, 4), np.uint8)
        self.picture[..., :3] = bgr
        self.picture[..., 3] = 255
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        settings = ndi.SendCreate()
        settings.ndi_name = SENDER
        settings.clock_video = False
        sender = ndi.send_create(settings)
        try:
            while not self._stop.is_set():
                video = ndi.VideoFrameV2()
                video.data = self.picture
                video.FourCC = ndi.FOURCC_VIDEO_TYPE_BGRX
                height, width = self.picture.shape[:2]
                video.xres, video.yres = width, height
                video.line_stride_in_bytes = width * 4
                video.frame_rate_N, video.frame_rate_D = 30000, 1000
                ndi.send_send_video_v2(sender, video)
                time.sleep(1 / 30)
        finally:
            ndi.send_destroy(sender)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def bgr(yuv: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="bgr24")


async def wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_an_ndi_sender_on_loopback_becomes_deck_b_with_its_picture() -> None:
    assert ndi.initialize()
    sender = Sender(BGR)
    heard: list[Any] = []
    try:
        async with running(server_config("127.0.0.1"), model=tiny_model()) as run:
            engine = run.engine
            engine.submit([parse("/deck/b/source", [f"ndi:{SENDER}"])])
            hub = engine.deck_b_inputs
            assert await wait_for(lambda: hub.frames.latest()[1] is not None, 30), (
                f"no NDI frame reached deck b: {hub.ended_reason}"
            )
            _, incoming = hub.frames.latest()
            assert incoming is not None and incoming.source == f"ndi:{SENDER}"
            assert (incoming.width, incoming.height) == (64, 48)
            got = bgr(incoming.yuv)[8:40, 8:56].reshape(-1, 3).mean(axis=0)
            # NDI compresses (SpeedHQ) and the hub keeps yuv420p: close, not equal.
            assert np.abs(got - BGR).max() < 12, got
            # All of deck b: the canvas shows the sent colour (fitted: the middle of it).
            engine.submit([parse("/mix/crossfade", [1.0])])
            assert await wait_for(lambda: engine.mixer.crossfade == 1.0, 10)
            seen, _ = engine.frames.latest()  # rendered after the crossfade moved
            seen, frame = await asyncio.to_thread(engine.frames.wait_newer, seen, 5)
            assert frame is not None
            middle = bgr(frame.yuv)[frame.height // 2 - 4 : frame.height // 2 + 4]
            shown = middle[:, frame.width // 4 : 3 * frame.width // 4].reshape(-1, 3).mean(axis=0)
            assert np.abs(shown - BGR).max() < 12, shown
            heard.append(engine.stats()["deck_b_source"])
    finally:
        sender.close()
    assert heard == [f"ndi:{SENDER}"]
