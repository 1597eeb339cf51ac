"""A headless aiortc viewer: negotiates over /ws and collects decoded frames.

The tests and the benchmarks watch the stream through it, as a browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass, field

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect


@dataclass
class Viewer:
    """One connected viewer: its websocket, peer connection and received frames."""

    ws: ClientConnection
    pc: RTCPeerConnection
    frames: list[np.ndarray] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    count: int = 0  # frames decoded since connecting (frames/arrival keep the newest)
    task: asyncio.Task[None] | None = None

    async def wait_frames(self, count: int, timeout: float) -> None:
        """Wait until `count` frames have been decoded."""
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {self.count} of {count} frames in {timeout} s")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Hang up."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await self.task
        await self.pc.close()
        await self.ws.close()


async def connect_viewer(
    url: str, *, keep: int = 400, ssl_context: ssl.SSLContext | None = None
) -> Viewer:
    """Open /ws, send a recvonly offer, apply the answer, start collecting frames."""
    ws = await connect(url, ssl=ssl_context) if url.startswith("wss:") else await connect(url)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = Viewer(ws=ws, pc=pc)
    pc.addTransceiver("video", direction="recvonly")

    @pc.on("track")
    def on_track(track: object) -> None:
        async def pump() -> None:
            while True:
                frame = await track.recv()  # type: ignore[attr-defined]
                viewer.count += 1
                viewer.frames.append(frame.to_ndarray(format="rgb24"))
                viewer.arrival.append(time.monotonic())
                if len(viewer.frames) > keep:
                    del viewer.frames[: len(viewer.frames) - keep]
                    del viewer.arrival[: len(viewer.arrival) - keep]

        viewer.task = asyncio.ensure_future(pump())

    await pc.setLocalDescription(await pc.createOffer())
    await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    if reply.get("type") != "answer":
        await pc.close()
        await ws.close()
        raise ConnectionError(f"the server did not answer the offer: {reply}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    return viewer
