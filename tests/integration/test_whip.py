"""WHIP in from GStreamer's whip-client, WHEP out to an aiortc client: real peers, real HTTP."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from server.commands import parse
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model, tiny_pix2pix
from tests.integration.test_react import input_colour, latest_yuv, until

pytestmark = pytest.mark.webrtc

SYSTEM_PYTHON = Path("/usr/bin/python3")
PUBLISHER = Path(__file__).with_name("gst_whip.py")


@pytest.fixture
async def server(webrtc_host: str) -> AsyncIterator[Running]:
    config = server_config(webrtc_host, wander_speed=0.0, react_fade_s=0.0)
    async with running(config, model=tiny_model(), pix2pix=tiny_pix2pix()) as run:
        yield run


def base(run: Running) -> str:
    return f"http://{run.app.config.server.host}:{run.port}"


class WhipClient:
    """GStreamer's webrtcbin publishing a test pattern over WHIP (gst_whip.py says why
    not Debian's simple-whip-client)."""

    def __init__(self, url: str, pattern: str, log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(PUBLISHER), url, "--pattern", pattern, "--timeout", "60"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # it sends DELETE on its way out
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


def gstreamer_missing() -> str | None:
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import gi; gi.require_version('GstWebRTC', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        return "GStreamer's webrtcbin and Python bindings are missing (scripts/install --test)"
    return None


async def test_whip_client_becomes_the_reaction_source(server: Running, tmp_path: Path) -> None:
    why = gstreamer_missing()
    if why is not None:
        pytest.skip(why)
    engine = server.engine
    red = WhipClient(f"{base(server)}/whip", "red", tmp_path / "red.log")
    try:
        await until(
            lambda: (
                engine.inputs.source == "whip"
                and (c := input_colour(engine)) is not None
                and c[0] > 150 > c[2]
            ),
            timeout=20,
        )
        _, latent_play = latest_yuv(engine)
        engine.submit([parse("/react/mode", ["pix2pix"]), parse("/react/trigger", [])])
        await until(lambda: engine.reaction.active and engine.reaction.level(time.monotonic()) == 1)
        await asyncio.sleep(0.5)
        _, red_out = latest_yuv(engine)
        assert np.abs(red_out - latent_play).mean() > 0.5  # reacting to the WHIP stream
        assert server.app.status()["whip"]["whip_published"] == 1
    finally:
        red.stop()
    # whip-client hung up with DELETE: the reaction falls back, the show goes on.
    await until(lambda: engine.inputs.source is None, timeout=10)
    await until(lambda: not engine.reaction.active, timeout=10)
    blue = WhipClient(f"{base(server)}/whip", "blue", tmp_path / "blue.log")
    try:
        await until(
            lambda: (
                engine.inputs.source == "whip"
                and (c := input_colour(engine)) is not None
                and c[2] > 150 > c[0]
            ),
            timeout=20,
        )
        engine.submit([parse("/react/trigger", [])])
        await until(lambda: engine.reaction.active and engine.reaction.level(time.monotonic()) == 1)
        await asyncio.sleep(0.5)
        _, blue_out = latest_yuv(engine)
        assert np.abs(blue_out - red_out).mean() > 0.5  # the reaction follows the new stream
    finally:
        blue.stop()


async def post_sdp(
    url: str, sdp: str, content_type: str = "application/sdp"
) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=sdp, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, response.headers.get("Location", ""), await response.text()


async def test_whep_client_plays_the_shared_stream_and_delete_hangs_up(server: Running) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    frames: list[np.ndarray] = []
    tasks: list[asyncio.Future[None]] = []

    @pc.on("track")
    def on_track(track: RemoteStreamTrack) -> None:
        async def pump() -> None:
            while True:
                frames.append((await track.recv()).to_ndarray(format="rgb24"))

        tasks.append(asyncio.ensure_future(pump()))

    try:
        await pc.setLocalDescription(await pc.createOffer())
        status, location, answer = await post_sdp(f"{base(server)}/whep", pc.localDescription.sdp)
        assert status == 201 and location.startswith("/whep/")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await until(lambda: len(frames) >= 30, timeout=20)
        assert frames[0].shape == (64, 64, 3)
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.1
        status_now = server.app.status()
        assert status_now["viewers"] == 1  # a viewer of the shared encoder like any other
        assert status_now["encoded_fps"] <= status_now["rendered_fps"] * 1.1 + 1
        async with aiohttp.ClientSession() as http:
            async with http.delete(f"{base(server)}{location}") as response:
                assert response.status == 200
            async with http.delete(f"{base(server)}{location}") as response:
                assert response.status == 404
        await until(lambda: server.app.status()["viewers"] == 0)
    finally:
        for task in tasks:
            task.cancel()
        await pc.close()


async def test_bad_offers_get_a_reason_and_change_nothing(server: Running) -> None:
    for kind in ("whip", "whep"):
        status, _, body = await post_sdp(f"{base(server)}/{kind}", "v=0\r\nnot an offer\r\n")
        assert status == 400 and "offer" in body, body
        status, _, body = await post_sdp(f"{base(server)}/{kind}", "v=0", "application/json")
        assert status == 415 and "application/sdp" in body
        async with (
            aiohttp.ClientSession() as http,
            http.patch(f"{base(server)}/{kind}/x", data="a=candidate") as response,
        ):
            assert response.status == 405
    assert server.engine.inputs.source is None
    assert server.app.status()["viewers"] == 0
