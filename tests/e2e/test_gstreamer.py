"""GStreamer's webrtcbin, with its default settings (an RSA certificate), watches the stream."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from server.lifecycle import Running

pytestmark = pytest.mark.webrtc

SYSTEM_PYTHON = Path("/usr/bin/python3")
RECEIVER = Path(__file__).with_name("gst_receiver.py")


async def read_json(stream: asyncio.StreamReader, timeout: float) -> dict[str, object]:
    line = await asyncio.wait_for(stream.readline(), timeout=timeout)
    if not line:
        raise EOFError("the GStreamer receiver ended early")
    return json.loads(line)


async def test_webrtcbin_decodes_changing_frames(live_server: Running) -> None:
    check = await asyncio.create_subprocess_exec(
        str(SYSTEM_PYTHON), "-c", "import gi; gi.require_version('GstWebRTC', '1.0')"
    )
    if not SYSTEM_PYTHON.exists() or await check.wait() != 0:
        pytest.fail("GStreamer's webrtcbin is missing: scripts/install --test installs it")
    receiver = await asyncio.create_subprocess_exec(
        str(SYSTEM_PYTHON),
        str(RECEIVER),
        "--frames",
        "30",
        "--timeout",
        "40",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
    )
    assert receiver.stdin is not None and receiver.stdout is not None
    url = f"ws://{live_server.app.config.server.host}:{live_server.port}/ws"
    try:
        offer = await read_json(receiver.stdout, timeout=20)
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "offer", "sdp": offer["offer"]}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
            assert reply["type"] == "answer", reply
            receiver.stdin.write(json.dumps({"answer": reply["sdp"]}).encode() + b"\n")
            await receiver.stdin.drain()
            last: dict[str, object] = {}
            while "frames" not in last or int(last["frames"]) < 30:  # type: ignore[call-overload]
                last = await read_json(receiver.stdout, timeout=40)
        assert await asyncio.wait_for(receiver.wait(), timeout=10) == 0
        assert last["size"] == [64, 64]
        # Not a still: the drifting latent changes most frames.
        assert int(last["distinct"]) >= 10, last  # type: ignore[call-overload]
    finally:
        if receiver.returncode is None:
            receiver.kill()
            await receiver.wait()
