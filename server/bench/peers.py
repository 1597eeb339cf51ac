"""Headless aiortc peers: a viewer that collects decoded frames, and a camera.

The tests and the benchmarks watch and feed the server through them, as a
browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


@dataclass(kw_only=True)
class Receiver:
    """A peer connection receiving the picture, and what it decoded."""

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

    async def _stop(self, *tasks: asyncio.Task[None] | None) -> None:
        for task in (self.task, *tasks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                    await task
        await self.pc.close()


@dataclass(kw_only=True)
class Viewer(Receiver):
    """One viewer of ganvj itself: its websocket, peer connection and received frames."""

    ws: ClientConnection
    drain: asyncio.Task[None] | None = None  # reads (and drops) the server's state feedback

    async def close(self) -> None:
        """Hang up."""
        await self._stop(self.drain)
        await self.ws.close()


def collect_frames(viewer: Receiver, *, keep: int, pixels: bool) -> None:
    """Decode the viewer's incoming track into `viewer` (counts, arrival times, pictures)."""

    @viewer.pc.on("track")
    def on_track(track: object) -> None:
        async def pump() -> None:
            while True:
                frame = await track.recv()  # type: ignore[attr-defined]
                viewer.count += 1
                viewer.arrival.append(time.monotonic())
                if pixels:
                    viewer.frames.append(frame.to_ndarray(format="rgb24"))
                del viewer.frames[:-keep]
                del viewer.arrival[:-keep]

        viewer.task = asyncio.ensure_future(pump())


async def connect_viewer(
    url: str,
    *,
    keep: int = 400,
    ssl_context: ssl.SSLContext | None = None,
    pixels: bool = True,
    rewrite: Callable[[str], str] | None = None,
) -> Viewer:
    """Open /ws, send a recvonly offer, apply the answer, start collecting frames.

    With `pixels` False frames are decoded and counted but not converted to
    RGB, so a benchmark's viewer takes less of the CPU it shares with the server.
    `rewrite` changes the offer's SDP on its way out (other browsers' offers, in tests).
    """
    ws = await open_ws(url, ssl_context)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = Viewer(ws=ws, pc=pc)
    pc.addTransceiver("video", direction="recvonly")

    collect_frames(viewer, keep=keep, pixels=pixels)

    await negotiate(ws, pc, rewrite=rewrite)
    # A browser's page reads every message; a viewer that never read its socket
    # would be closed by the server as a stalled client once feedback piles up.
    viewer.drain = asyncio.ensure_future(_discard_messages(ws))
    return viewer


async def _discard_messages(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def open_ws(url: str, ssl_context: ssl.SSLContext | None) -> ClientConnection:
    """The server's /ws, over TLS for a wss:// URL."""
    return await connect(url, ssl=ssl_context) if url.startswith("wss:") else await connect(url)


async def negotiate(
    ws: ClientConnection,
    pc: RTCPeerConnection,
    *,
    rewrite: Callable[[str], str] | None = None,
    **extra: str,
) -> None:
    """Send our one offer (every candidate in it) and apply the server's answer."""
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    if rewrite is not None:
        sdp = rewrite(sdp)
    await ws.send(json.dumps({**extra, "type": "offer", "sdp": sdp}))
    # State feedback (thumbnails, keyframes) shares the socket: skip it, as a page does.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(remaining, 0.01)))
        if reply.get("type") != "state":
            break
    if reply.get("type") != "answer":
        await pc.close()
        await ws.close()
        raise ConnectionError(f"the server did not answer the offer: {reply}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))


class PatternTrack(VideoStreamTrack):
    """A synthetic camera: solid colour plus stripes, switchable while it runs."""

    def __init__(self, *, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.colour: tuple[int, int, int] = (255, 0, 0)
        self.stripes = 4

    def picture(self) -> np.ndarray:
        """The current pattern, (H, W, 3) uint8."""
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = self.colour
        band = max(1, self.width // (2 * self.stripes))
        for x in range(0, self.width, 2 * band):
            image[:, x : x + band] = 255 - np.array(self.colour, np.uint8)
        return image

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.picture(), format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Camera:
    """A camera connected to the server: its websocket and peer connection."""

    ws: ClientConnection
    pc: RTCPeerConnection

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()
        await self.ws.close()


async def connect_camera(
    url: str, track: VideoStreamTrack, *, ssl_context: ssl.SSLContext | None = None
) -> Camera:
    """Send `track` to the server as its camera (role "camera" on /ws)."""
    ws = await open_ws(url, ssl_context)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(track, direction="sendonly")
    await negotiate(ws, pc, role="camera")
    return Camera(ws=ws, pc=pc)
