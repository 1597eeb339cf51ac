"""NDI out: a real NDI receiver (ndi-python) finds ganvj's source on loopback and
gets frames that match the render."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import av
import numpy as np
import pytest

from server.lifecycle import running
from server.media.frame import Frame
from tests.conftest import server_config, tiny_model

ndi: Any = pytest.importorskip(
    "NDIlib",
    reason="ndi-python, the optional `ndi` extra, is not installed: scripts/install --test "
    "tries it and says so where this platform has no wheel",
)

FPS = 30.0


class Rendered:
    """Every frame the engine puts in its slot, by the timecode NDI carries."""

    def __init__(self, run: Any) -> None:
        self.frames: dict[int, Frame] = {}
        self._slot = run.engine.frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen = 0
        while not self._stop.is_set():
            seen, frame = self._slot.wait_newer(seen, 0.1)
            if frame is not None:
                self.frames[int(frame.rendered_at * 10_000_000)] = frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def receive(seconds: float) -> list[tuple[int, np.ndarray]]:
    """Find the ganvj source on loopback (no avahi daemon) and capture for `seconds`."""
    find_settings = ndi.FindCreate()
    find_settings.show_local_sources = True
    find_settings.extra_ips = "127.0.0.1"
    finder = ndi.find_create_v2(find_settings)
    receiver = None
    got: list[tuple[int, np.ndarray]] = []
    try:
        source = None
        deadline = time.monotonic() + 15
        while source is None and time.monotonic() < deadline:
            ndi.find_wait_for_sources(finder, 500)
            source = next(
                (s for s in ndi.find_get_current_sources(finder) if "(ganvj)" in s.ndi_name), None
            )
        assert source is not None, "no ganvj NDI source was found within 15 s"
        settings = ndi.RecvCreateV3()
        settings.color_format = ndi.RECV_COLOR_FORMAT_BGRX_BGRA
        receiver = ndi.recv_create_v3(settings)
        ndi.recv_connect(receiver, source)
        started = None
        while started is None or time.monotonic() - started < seconds:
            kind, video, _, _ = ndi.recv_capture_v2(receiver, 1000)
            if kind == ndi.FRAME_TYPE_VIDEO:
                started = started or time.monotonic()
                got.append((int(video.timecode), np.array(video.data[..., :3])))
                ndi.recv_free_video_v2(receiver, video)
            elif started is None and len(got) == 0 and time.monotonic() > deadline + 10:
                break
    finally:
        if receiver is not None:
            ndi.recv_destroy(receiver)
        ndi.find_destroy(finder)
    return got


async def test_an_ndi_receiver_gets_the_render_at_the_frame_rate_for_5s() -> None:
    config = server_config("127.0.0.1", fps=FPS).with_overrides({"output.ndi": True})
    async with running(config, model=tiny_model()) as run:
        assert run.outputs is not None
        rendered = Rendered(run)
        try:
            received = await asyncio.to_thread(receive, 5.0)
        finally:
            rendered.close()
        rendered_fps = run.engine.stats()["rendered_fps"]
        status = run.app.status()["outputs"]["ndi"]
    assert status["on"] and status["error"] is None
    # At the configured rate (the engine's own, on a loaded machine), for 5 s.
    assert len(received) >= 0.7 * 5 * min(FPS, rendered_fps), (len(received), rendered_fps)
    matched = 0
    for timecode, bgr in received:
        frame = rendered.frames.get(timecode)
        if frame is None:
            continue
        assert bgr.shape == (64, 64, 3)
        expected = av.VideoFrame.from_ndarray(frame.yuv, format="yuv420p").to_ndarray(
            format="bgr24"
        )
        # NDI compresses (SpeedHQ) and resamples chroma: close, not equal.
        error = np.abs(bgr.astype(int) - expected.astype(int)).mean()
        assert error < 12, f"frame {frame.index}: mean error {error:.1f}"
        matched += 1
    assert matched >= len(received) // 2
    # A moving picture, not a still.
    first, last = received[0][1].astype(int), received[-1][1].astype(int)
    assert np.abs(first - last).mean() > 1


async def test_output_ndi_command_turns_the_source_on_and_off() -> None:
    from server.commands import parse

    async with running(server_config("127.0.0.1"), model=tiny_model()) as run:
        outputs = run.outputs
        assert outputs is not None
        assert not outputs.ndi.running
        run.engine.submit([parse("/output/ndi", [1])])
        deadline = time.monotonic() + 10
        while not outputs.ndi.frames_sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert outputs.ndi.running and outputs.ndi.frames_sent > 0
        run.engine.submit([parse("/output/ndi", [0])])
        while outputs.ndi.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not outputs.ndi.running
