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


def receive(seconds: float, source_name: str = "(ganvj)") -> list[tuple[int, np.ndarray]]:
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
                (s for s in ndi.find_get_current_sources(finder) if source_name in s.ndi_name),
                None,
            )
        assert source is not None, f"no NDI source {source_name} was found within 15 s"
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


def near(image: np.ndarray, y: float, x: float, value: np.ndarray) -> float:
    """The smallest mean difference between `value` and image's 3 x 3 pixels around (x, y)."""
    h, w = image.shape[:2]
    return min(
        float(
            np.abs(
                image[min(max(int(y) + dy, 0), h - 1), min(max(int(x) + dx, 0), w - 1)].astype(int)
                - value
            ).mean()
        )
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


async def test_a_warped_output_is_its_own_ndi_source_with_the_warped_geometry() -> None:
    import dataclasses

    from server.outputs.mapping import UNIT_QUAD, OutputMapping, apply, homography

    corners = ((0.1, 0.05), (0.9, 0.15), (0.8, 0.95), (0.05, 0.85))
    mapping = OutputMapping(name="left", rect=(0.0, 0.0, 0.5, 1.0), corners=corners, ndi=True)
    config = server_config("127.0.0.1", fps=FPS, size=128)
    config = dataclasses.replace(config, outputs=(mapping,))
    async with running(config, model=tiny_model()) as run:
        rendered = Rendered(run)
        try:
            received = await asyncio.to_thread(receive, 2.0, "(ganvj left)")
        finally:
            rendered.close()
        status = run.app.status()["outputs"]["projectors"]["ndi"]["left"]
    assert status["on"] and status["error"] is None
    pin = homography(UNIT_QUAD, corners)  # slice -> the output's frame
    matched = 0
    for timecode, bgr in received:
        frame = rendered.frames.get(timecode)
        if frame is None:
            continue
        assert bgr.shape == (128, 64, 3)  # the slice's own size: half of a 128 px canvas
        canvas = av.VideoFrame.from_ndarray(frame.yuv, format="yuv420p").to_ndarray(format="bgr24")
        # Outside the pinned quad: black (each frame corner lies outside it).
        for x, y in ((1, 1), (62, 1), (62, 126), (1, 126)):
            assert bgr[y, x].max() < 20, (x, y, bgr[y, x])
        # Inside: the slice's pixel at s lands at the pinned point H(s).
        # Nearest-pixel sampling and NDI's compression (measured: 11 levels against 29
        # for the unwarped slice): compared with the best of
        # the canvas pixel's 3 x 3 neighbours; the unwarped slice must fit far worse.
        errors, unwarped = [], []
        for s in np.linspace(0.15, 0.85, 8):
            for t in np.linspace(0.15, 0.85, 8):
                u, v = apply(pin, (float(s), float(t)))
                got = bgr[int(v * 128), int(u * 64)].astype(int)
                errors.append(near(canvas, t * 128, s * 64, got))  # rect x 0..0.5 of 128
                unwarped.append(near(canvas, v * 128, u * 64, got))
        assert np.mean(errors) < 14, f"mean error {np.mean(errors):.1f}"
        assert np.mean(unwarped) > 2 * np.mean(errors), (np.mean(unwarped), np.mean(errors))
        matched += 1
    assert matched >= 3, (len(received), matched)


async def test_an_ndi_output_shows_the_test_card_warped_as_its_picture() -> None:
    import dataclasses

    from server.commands import parse
    from server.outputs.mapping import OutputMapping
    from server.outputs.testcard import card_frame
    from server.outputs.warp import Warper

    corners = ((0.1, 0.05), (0.9, 0.15), (0.8, 0.95), (0.05, 0.85))
    mapping = OutputMapping(
        name="left", rect=(0.0, 0.0, 0.5, 1.0), corners=corners, blend=(0, 0.3, 0, 0), ndi=True
    )
    config = server_config("127.0.0.1", fps=FPS, size=256)
    config = dataclasses.replace(config, outputs=(mapping,))
    async with running(config, model=tiny_model()) as run:
        run.engine.submit([parse("/output/testcard", [1])])
        rendered = Rendered(run)
        try:
            received = await asyncio.to_thread(receive, 2.0, "(ganvj left)")
        finally:
            rendered.close()
    assert received
    like = next(iter(rendered.frames.values()))
    card = Warper().warp(card_frame(mapping, like), mapping)
    want = av.VideoFrame.from_ndarray(card.yuv, format="yuv420p").to_ndarray(format="bgr24")
    assert want.shape == (256, 128, 3)
    # The card: its dark blue-grey background, its red edges, its grid and circles; the
    # received frames are the card as the server warped it (NDI compression aside),
    # whatever the live picture does meanwhile; the live picture fits far worse.
    errors, pictures = [], []
    for timecode, bgr in received[-10:]:
        assert bgr.shape == want.shape
        errors.append(np.abs(bgr.astype(int) - want.astype(int)).mean())
        frame = rendered.frames.get(timecode)
        if frame is not None:
            live = Warper().warp(frame, mapping)
            shown = av.VideoFrame.from_ndarray(live.yuv, format="yuv420p").to_ndarray(
                format="bgr24"
            )
            pictures.append(np.abs(bgr.astype(int) - shown.astype(int)).mean())
    assert max(errors) < 6, errors
    assert pictures and min(pictures) > 3 * max(errors), (pictures, errors)
    # The red edge frame round the slice: where the card is red, the receiver sees red.
    red = (want[..., 2] > 180) & (want[..., 1] < 90) & (want[..., 0] < 90)
    assert red.sum() > 200
    seen = bgr[red].astype(int).mean(axis=0)
    assert seen[2] > 150 and seen[1] < 110 and seen[0] < 110, seen
