"""Reactions over real WebRTC: a synthetic camera in, the reacting stream out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from server.bench.peers import PatternTrack, connect_camera, connect_viewer
from server.commands import parse
from server.engine import Engine
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_encoder, tiny_model, tiny_pix2pix

pytestmark = pytest.mark.webrtc

RED = (230, 30, 30)
BLUE = (20, 40, 220)


@pytest.fixture
async def server(webrtc_host: str, tmp_path: Path) -> AsyncIterator[Running]:
    config = server_config(webrtc_host, size=64, wander_speed=0.0, react_fade_s=0.0).with_overrides(
        {"inputs.media_dir": str(tmp_path)}
    )
    async with running(
        config, model=tiny_model(), pix2pix=tiny_pix2pix(), encoder=tiny_encoder()
    ) as run:
        yield run


def url(run: Running) -> str:
    return f"ws://{run.app.config.server.host}:{run.port}/ws"


async def command(ws: ClientConnection, address: str, *args: object) -> None:
    await ws.send(json.dumps({"address": address, "args": list(args)}))


async def until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def latest_yuv(engine: Engine) -> tuple[int, np.ndarray]:
    _, frame = engine.frames.latest()
    assert frame is not None
    return frame.index, frame.yuv.astype(int)


def input_colour(engine: Engine) -> np.ndarray | None:
    _, incoming = engine.inputs.frames.latest()
    if incoming is None:
        return None
    return incoming.rgb()[:, -1].mean(axis=0)  # a red/blue column


async def react_to_camera(run: Running, mode: str) -> None:
    """Connect a viewer and a camera; switch and trigger `mode`; compare inputs."""
    viewer = await connect_viewer(url(run))
    track = PatternTrack()
    camera = await connect_camera(url(run), track)
    engine = run.engine
    try:
        async with connect(url(run)) as ws:
            await until(
                lambda: engine.inputs.source == "camera" and input_colour(engine) is not None
            )
            await viewer.wait_frames(5, 20)
            _, latent_play = latest_yuv(engine)
            await command(ws, "/react/mode", mode)
            await command(ws, "/react/trigger")
            await until(
                lambda: engine.reaction.active and engine.reaction.level(time.monotonic()) == 1
            )
            await asyncio.sleep(0.5)
            _, red_out = latest_yuv(engine)
            assert np.abs(red_out - latent_play).mean() > 0.5  # reacting, not latent play

            # Switch the camera's picture: the output follows within a few frames
            # of the new input reaching the server.
            track.colour = BLUE
            await until(lambda: (c := input_colour(engine)) is not None and c[2] > c[0])
            arrived_index, _ = latest_yuv(engine)
            deadline = time.monotonic() + 5
            while True:
                index, current = latest_yuv(engine)
                if np.abs(current - red_out).mean() > 0.5:
                    break
                assert time.monotonic() < deadline, "the output did not follow the input"
                await asyncio.sleep(0.005)
            assert index - arrived_index <= 3
            await asyncio.sleep(0.3)
            _, blue_out = latest_yuv(engine)
            assert np.abs(blue_out - red_out).mean() > 0.5  # different inputs, different outputs
            # The viewer sees it too.
            seen = len(viewer.frames)
            await viewer.wait_frames(viewer.count + 5, 10)
            assert len(viewer.frames) >= seen

            # The camera goes away: the stream runs on and falls back to latent play.
            frames_before = viewer.count
            await camera.close()
            await until(lambda: not engine.reaction.active)
            assert engine.reaction.reason == "no input: the camera disconnected"
            await asyncio.sleep(0.3)
            _, after = latest_yuv(engine)
            assert np.abs(after - latent_play).mean() < 0.5
            await viewer.wait_frames(frames_before + 10, 10)
            assert run.app.status()["input"]["ended"] == "the camera disconnected"
    finally:
        await camera.close()
        await viewer.close()


async def test_pix2pix_reacts_to_the_camera(server: Running) -> None:
    await react_to_camera(server, "pix2pix")


async def test_mirror_maps_the_camera_into_the_latent(server: Running) -> None:
    server.engine.reactor.mirror_smoothing = 0.0  # the test compares steady states
    await react_to_camera(server, "mirror")


async def test_state_reports_why_a_reaction_ended(server: Running) -> None:
    async with connect(url(server)) as ws:
        await command(ws, "/react/trigger", 0.5)
        # No input at all: it ends at once and says why, to every client.
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message.get("address") == "/react/state" and message["args"][0] == 0:
                assert message["args"][2] == "no input"
                break


def write_clip(path: Path, colour: tuple[int, int, int], frames: int = 20) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        image = np.zeros((64, 64, 3), np.uint8)
        image[:] = colour
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


async def test_a_video_file_plays_in_a_loop_and_bad_files_are_refused(
    server: Running, tmp_path: Path
) -> None:
    write_clip(tmp_path / "clip.mp4", BLUE)
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n")
    engine = server.engine
    async with connect(url(server)) as ws:
        await command(ws, "/react/source", "file:clip.mp4")
        await until(lambda: engine.inputs.source == "file:clip.mp4")
        await until(lambda: engine.inputs.rate.rate() > 15)  # played at its own 25 fps
        await asyncio.sleep(1.5)  # past the end of a 0.8 s clip: it loops
        assert engine.inputs.source == "file:clip.mp4"
        # Still arriving: a clip that stopped at its end would be 0.7 s quiet by now.
        assert time.monotonic() - engine.inputs.frames.latest()[1].arrived_at < 0.5  # type: ignore[union-attr]

        await command(ws, "/react/source", "file:notes.mp4")
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message.get("type") == "error":
                assert "notes.mp4" in message["error"]
                break
        assert engine.inputs.source == "file:clip.mp4"  # the good source plays on
        await command(ws, "/react/source", "none")
        await until(lambda: engine.inputs.source is None)


def hub_colour(hub: object) -> np.ndarray | None:
    _, incoming = hub.frames.latest()  # type: ignore[attr-defined]
    return None if incoming is None else incoming.rgb()[:, -1].mean(axis=0)


async def test_the_camera_moves_to_the_deck_that_asks_for_it(server: Running) -> None:
    """/deck/b/source camera: the camera page's frames go to deck b's video without the
    camera connecting again; /react/source camera brings them back to deck a."""
    engine = server.engine
    track = PatternTrack()
    track.colour = RED
    camera = await connect_camera(url(server), track)
    try:
        await until(lambda: engine.inputs.source == "camera" and input_colour(engine) is not None)
        engine.submit([parse("/deck/b/source", ["camera"]), parse("/mix/crossfade", [1.0])])
        b = engine.deck_b_inputs
        await until(lambda: b.source == "camera" and hub_colour(b) is not None)
        assert engine.inputs.source is None  # it left deck a
        await asyncio.sleep(0.3)  # deck b shows the camera's picture, fitted, at full crossfade
        _, red = latest_yuv(engine)
        track.colour = BLUE
        await until(lambda: (c := hub_colour(b)) is not None and c[2] > c[0])
        await asyncio.sleep(0.3)
        _, blue = latest_yuv(engine)
        # Deck a's model stands still (wander 0): the stream follows the camera on deck b.
        assert np.abs(blue[64:] - red[64:]).mean() > 20  # the chroma planes
        engine.submit([parse("/react/source", ["camera"])])
        await until(lambda: engine.inputs.source == "camera" and b.source is None)
        assert camera.pc.connectionState == "connected"  # the same connection all along
    finally:
        await camera.close()
