"""The real server on a free port, real aiortc viewers negotiating over /ws."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.bench.peers import connect_viewer
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model

pytestmark = pytest.mark.webrtc


def ws_url(run: Running) -> str:
    return f"ws://{run.app.config.server.host}:{run.port}/ws"


def http_get(run: Running, path: str) -> tuple[int, str, bytes]:
    url = f"http://{run.app.config.server.host}:{run.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


async def fetch(run: Running, path: str) -> tuple[int, str, bytes]:
    return await asyncio.to_thread(http_get, run, path)


async def test_viewer_receives_60_frames_that_change(live_server: Running) -> None:
    viewer = await connect_viewer(ws_url(live_server))
    try:
        await viewer.wait_frames(60, timeout=20)
        frames = viewer.frames[:60]
        assert frames[0].shape == (64, 64, 3)
        # Not a still: the drift changes the pixels over time.
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5
        assert any(f.std() > 5 for f in frames)  # a picture, not a flat field
    finally:
        await viewer.close()


async def test_two_viewers_share_one_encoder(live_server: Running) -> None:
    first = await connect_viewer(ws_url(live_server))
    second = await connect_viewer(ws_url(live_server))
    try:
        await asyncio.gather(first.wait_frames(30, 20), second.wait_frames(30, 20))
        status = live_server.app.status()
        assert status["viewers"] == 2
        encoder = live_server.app.encoder
        assert encoder is not None
        # One encode per rendered frame, not one per viewer.
        assert status["encoded_fps"] <= status["rendered_fps"] * 1.1 + 1
        assert min(status["sent_fps_per_viewer"]) > 0
    finally:
        await first.close()
        await second.close()


async def test_a_viewer_joining_mid_stream_gets_a_picture_within_2s(live_server: Running) -> None:
    first = await connect_viewer(ws_url(live_server))
    try:
        await first.wait_frames(30, 20)
        keyframes_before = live_server.app.encoder.keyframes  # type: ignore[union-attr]
        started = time.monotonic()
        late = await connect_viewer(ws_url(live_server))
        try:
            await late.wait_frames(1, timeout=10)
            assert late.arrival[0] - started < 2.0
            assert live_server.app.encoder.keyframes > keyframes_before  # type: ignore[union-attr]
        finally:
            await late.close()
    finally:
        await first.close()


async def test_status_and_pages(live_server: Running) -> None:
    code, ctype, body = await fetch(live_server, "/api/status")
    assert code == 200 and ctype == "application/json"
    status = json.loads(body)
    for key in ("rendered_fps", "sent_fps", "viewers", "model", "device", "frame_ms"):
        assert key in status
    assert status["model"] == "tiny" and status["device"] == "cpu"
    code, ctype, body = await fetch(live_server, "/")
    assert code == 200 and ctype.startswith("text/html") and b"viewer.js" in body
    code, ctype, _ = await fetch(live_server, "/viewer.js")
    assert code == 200 and ctype == "text/javascript"
    for bad in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/nope", "/web"):
        code, _, _ = await fetch(live_server, bad)
        assert code == 404, bad


async def test_bad_input_on_ws_changes_nothing(live_server: Running) -> None:
    watcher = await connect_viewer(ws_url(live_server))
    try:
        await watcher.wait_frames(10, 20)
        rendered = live_server.engine.stats()["frames"]
        async with connect(ws_url(live_server)) as ws:
            bad_messages = [
                "this is not json {",
                json.dumps([1, 2, 3]),
                json.dumps({"type": 42}),
                json.dumps({"type": "offer"}),
                json.dumps({"type": "offer", "sdp": 17}),
                json.dumps({"type": "offer", "sdp": "v=0\r\nthis is not sdp\r\n"}),
                json.dumps({"type": "offer", "sdp": "hello"}),
                json.dumps({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000}),
            ]
            for raw in bad_messages:
                await ws.send(raw)
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert reply["type"] == "error" and reply["error"], raw
            await ws.send(b"\x00\x01binary")
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "error"
            # The same connection still works after all that.
            await ws.send(json.dumps({"type": "ping", "t": 1}))
            assert json.loads(await ws.recv()) == {"type": "pong", "t": 1}

        # Over the size limit: the connection is closed (1009), nothing else is touched.
        async with connect(ws_url(live_server), max_size=None) as ws:
            limit = live_server.app.config.limits.ws_max_message_bytes
            await ws.send("x" * (limit + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

        status = live_server.app.status()
        assert status["bad_messages"] >= len(bad_messages)
        assert status["viewers"] == 1  # no half-made peers left behind
        # The stream and the other viewer went on throughout.
        before = len(watcher.frames)
        await watcher.wait_frames(before + 15, 10)
        assert live_server.engine.stats()["frames"] > rendered
    finally:
        await watcher.close()


async def test_full_server_refuses_politely(webrtc_host: str) -> None:
    config = server_config(webrtc_host).with_overrides({"server.max_viewers": 1})
    async with running(config, model=tiny_model()) as run:
        first = await connect_viewer(ws_url(run))
        try:
            async with connect(ws_url(run)) as ws:
                await ws.send(json.dumps({"type": "offer", "sdp": first.pc.localDescription.sdp}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert reply["type"] == "error" and "full" in reply["error"]
            await first.wait_frames(5, 10)
        finally:
            await first.close()


async def test_h264_can_be_selected(webrtc_host: str) -> None:
    config = server_config(webrtc_host).with_overrides({"stream.codec": "h264"})
    async with running(config, model=tiny_model()) as run:
        viewer = await connect_viewer(ws_url(run))
        try:
            await viewer.wait_frames(10, 20)
            assert "H264" in viewer.pc.remoteDescription.sdp
            assert "VP8" not in viewer.pc.remoteDescription.sdp
        finally:
            await viewer.close()


async def test_viewer_leaving_is_cleaned_up(live_server: Running) -> None:
    viewer = await connect_viewer(ws_url(live_server))
    await viewer.wait_frames(5, 20)
    assert live_server.app.status()["viewers"] == 1
    await viewer.close()
    deadline = time.monotonic() + 5
    while live_server.app.status()["viewers"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert live_server.app.status()["viewers"] == 0
    assert live_server.app.hub is not None and live_server.app.hub.viewers == 0


async def test_https_and_wss_on_the_same_port(webrtc_host: str, tmp_path: Path) -> None:
    config = server_config(webrtc_host).with_overrides(
        {"server.tls": True, "server.state_dir": str(tmp_path)}
    )
    async with running(config, model=tiny_model()) as run:
        trust = ssl.create_default_context(cafile=tmp_path / "tls" / "cert.pem")
        trust.check_hostname = False  # the certificate names this machine, not 10.77.0.1
        url = f"https://{webrtc_host}:{run.port}/api/status"

        def get() -> dict[str, object]:
            with urllib.request.urlopen(url, context=trust, timeout=5) as response:
                return dict(json.loads(response.read()))

        assert (await asyncio.to_thread(get))["model"] == "tiny"
        viewer = await connect_viewer(f"wss://{webrtc_host}:{run.port}/ws", ssl_context=trust)
        try:
            await viewer.wait_frames(10, 20)
        finally:
            await viewer.close()
        # Plain HTTP on the TLS port is refused, not served.
        with pytest.raises(OSError):
            await asyncio.to_thread(
                urllib.request.urlopen, f"http://{webrtc_host}:{run.port}/api/status", None, 5
            )


async def test_picture_loss_from_a_viewer_brings_a_keyframe(live_server: Running) -> None:
    viewer = await connect_viewer(ws_url(live_server))
    try:
        await viewer.wait_frames(10, 20)
        encoder = live_server.app.encoder
        assert encoder is not None
        await asyncio.sleep(0.2)
        before = encoder.keyframes
        receiver = viewer.pc.getReceivers()[0]
        ssrc = receiver.getSynchronizationSources()[0].source
        # What a browser sends when it lost packets it cannot recover: RTCP PLI.
        await receiver._send_rtcp_pli(ssrc)
        deadline = time.monotonic() + 2
        while encoder.keyframes == before:
            assert time.monotonic() < deadline, "no keyframe after a picture-loss request"
            await asyncio.sleep(0.02)
        # Well before the periodic keyframe would have come.
        assert live_server.app.config.stream.keyframe_interval_s >= 4
    finally:
        await viewer.close()
