"""Scale out through Janus: the one encoded stream sent as RTP to a Streaming mountpoint.

ganvj encodes once; Janus fans the stream out to every WebRTC viewer, so
ganvj's cost stays that of a single viewer however large the audience. The
forwarder speaks Janus's HTTP API (create a session, attach the Streaming
plugin, create or look up the mountpoint, keep the session alive) and sends
each encoded frame, packetized as RTP on the event loop (VP8 payload type 100,
or H.264 packetization-mode=1 with payload type 126), nothing re-encoded.

Keyframes: Janus keeps the latest one for new viewers (`videobufferkf`), and
a mountpoint made here has an RTCP port: we send it a sender report every
second, so Janus knows where to send its picture-loss requests (PLI, FIR),
which reach the shared encoder. On top, a keyframe floor: at least one every
KEYFRAME_FLOOR_SECONDS, whatever the encoder's own interval.

Cascading: the same RTP can go to several Janus edges (one forwarder each) or
to a LAN multicast group that many edges subscribe to (`videomcast`): that is
how an audience grows past one Janus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPacket, RtcpPsfbPacket, RtpPacket

from server.config import Config
from server.media.stream import EncodedFrame, PacketHub

logger = logging.getLogger(__name__)

# Limits
HTTP_TIMEOUT_SECONDS = 10.0
KEEPALIVE_SECONDS = 25.0  # Janus drops a session after 60 s of silence
KEYFRAME_FLOOR_SECONDS = 2.0
RTCP_REPORT_SECONDS = 1.0

PAYLOAD_TYPES = {"vp8": 100, "h264": 126}
H264_FMTP = "profile-level-id=42e01f;packetization-mode=1"


class JanusError(RuntimeError):
    """Janus refused or could not be reached; the message says which and why."""


class JanusSession:
    """One Janus session with one plugin handle, over the HTTP API."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self.http = http
        self.session: int | None = None
        self.handle: int | None = None
        self._keepalive: asyncio.Task[None] | None = None

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request; the reply, or JanusError."""
        body = {**body, "transaction": secrets.token_hex(6)}
        try:
            async with self.http.post(f"{self.url}{path}", json=body) as response:
                reply: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JanusError(f"Janus at {self.url}: {type(exc).__name__}: {exc}") from exc
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(f"Janus at {self.url}: {error.get('reason', error)}")
        return reply

    async def attach(self, plugin: str = "janus.plugin.streaming") -> None:
        """Create a session, attach a plugin and keep the session alive."""
        created = await self.post("", {"janus": "create"})
        self.session = int(created["data"]["id"])
        attached = await self.post(f"/{self.session}", {"janus": "attach", "plugin": plugin})
        self.handle = int(attached["data"]["id"])
        self._keepalive = asyncio.create_task(self._keep_alive())

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A plugin request; a synchronous reply's plugin data, or {} when Janus acks."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self.post(f"/{self.session}/{self.handle}", request)
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"Janus streaming: {data['error']} (code {data.get('error_code')})")
        return data

    async def event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next asynchronous event of this session (long poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                async with self.http.get(f"{self.url}/{self.session}?maxev=1") as response:
                    reply: dict[str, Any] = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise JanusError(f"Janus at {self.url}: {exc}") from exc
            if reply.get("janus") not in ("keepalive", None):
                return reply
        raise JanusError(f"Janus at {self.url}: no event within {timeout} s")

    async def close(self) -> None:
        """Destroy the session (best effort)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        if self.session is not None:
            with contextlib.suppress(JanusError):
                await self.post(f"/{self.session}", {"janus": "destroy"})
            self.session = None

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await self.post(f"/{self.session}", {"janus": "keepalive"})
            except JanusError as exc:
                logger.warning("Janus keepalive failed: %s", exc)


@dataclass(frozen=True)
class Mountpoint:
    """Where the RTP goes."""

    id: int
    host: str
    video_port: int
    rtcp_port: int  # 0: Janus did not say (an existing mountpoint without RTCP)
    created: bool  # made by us: destroyed again when we stop


class RtpPacketizer:
    """Encoded frames -> RTP datagrams of one stream (one SSRC, one sequence)."""

    def __init__(self, codec: str, *, ssrc: int | None = None) -> None:
        self.codec = codec
        self.payload_type = PAYLOAD_TYPES[codec]
        self.ssrc = ssrc if ssrc is not None else random.getrandbits(32)
        self.sequence = random.getrandbits(16)
        self.packets = 0
        self.octets = 0
        self.last_timestamp = 0
        self._packer = Vp8Encoder() if codec == "vp8" else H264Encoder()

    def packetize(self, encoded: EncodedFrame) -> list[bytes]:
        """The RTP datagrams of one frame; the marker bit on its last."""
        out: list[bytes] = []
        for packet in encoded.packets:
            payloads, timestamp = self._packer.pack(packet)
            for i, payload in enumerate(payloads):
                rtp = RtpPacket(
                    payload_type=self.payload_type,
                    marker=int(i == len(payloads) - 1 and packet is encoded.packets[-1]),
                    sequence_number=self.sequence,
                    timestamp=timestamp,
                    ssrc=self.ssrc,
                    payload=payload,
                )
                self.sequence = (self.sequence + 1) & 0xFFFF
                out.append(rtp.serialize())
                self.packets += 1
                self.octets += len(payload)
            self.last_timestamp = timestamp
        return out

    def sender_report(self) -> bytes:
        """An RTCP sender report (PT 200) for our stream, with no report blocks."""
        now = time.time() + 2_208_988_800  # NTP epoch
        ntp = (int(now) << 32) | int((now % 1.0) * (1 << 32))
        body = struct.pack("!IQIII", self.ssrc, ntp, self.last_timestamp, self.packets, self.octets)
        return struct.pack("!BBH", 0x80, 200, len(body) // 4) + body


class _Rtcp(asyncio.DatagramProtocol):
    def __init__(self, on_picture_loss: Any) -> None:
        self._on_picture_loss = on_picture_loss

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self._on_picture_loss()


class JanusForwarder:
    """Sends the shared encoder's packets to a Janus Streaming mountpoint."""

    def __init__(self, *, config: Config, hub: PacketHub) -> None:
        self.config = config.output
        self.codec = config.stream.codec
        self.hub = hub
        self.packetizer = RtpPacketizer(self.codec)
        self.mountpoint: Mountpoint | None = None
        self.picture_loss = 0
        self.keyframes_asked = 0
        self.error: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._janus: JanusSession | None = None
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_keyframe = 0.0

    async def start(self) -> None:
        """Reach Janus, set up the mountpoint and start sending; JanusError if it fails."""
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
        self._http = aiohttp.ClientSession(timeout=timeout)
        self._janus = JanusSession(self.config.janus, self._http)
        await self._janus.attach()
        self.mountpoint = await self._mountpoint()
        loop = asyncio.get_running_loop()
        mount = self.mountpoint
        self._rtp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(mount.host, mount.video_port)
        )
        if mount.rtcp_port:
            self._rtcp, _ = await loop.create_datagram_endpoint(
                lambda: _Rtcp(self._picture_lost), remote_addr=(mount.host, mount.rtcp_port)
            )
            self._tasks.append(asyncio.create_task(self._report()))
        self._tasks.append(asyncio.create_task(self._floor()))
        self.hub.listeners.append(self.offer)
        self.hub.request_keyframe()
        logger.info(
            "sending %s RTP to Janus mountpoint %d at %s:%d",
            self.codec,
            mount.id,
            mount.host,
            mount.video_port,
        )

    async def close(self) -> None:
        """Stop sending; destroy a mountpoint we created."""
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(self.offer)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        if self._janus is not None:
            mount = self.mountpoint
            if mount is not None and mount.created:
                body: dict[str, Any] = {"request": "destroy", "id": mount.id}
                if self.config.janus_admin_key:
                    body["admin_key"] = self.config.janus_admin_key
                with contextlib.suppress(JanusError):
                    await self._janus.message(body)
            await self._janus.close()
        if self._http is not None:
            await self._http.close()

    def offer(self, encoded: EncodedFrame) -> None:
        """A PacketHub listener (event loop): one frame out as RTP."""
        if self._rtp is None:
            return
        if encoded.keyframe:
            self._last_keyframe = time.monotonic()
        for datagram in self.packetizer.packetize(encoded):
            self._rtp.sendto(datagram)

    def status(self) -> dict[str, object]:
        """The /api/status section."""
        mount = self.mountpoint
        return {
            "url": self.config.janus,
            "mountpoint": mount.id if mount else None,
            "rtp": f"{mount.host}:{mount.video_port}" if mount else None,
            "packets": self.packetizer.packets,
            "picture_loss": self.picture_loss,
            "error": self.error,
        }

    async def _mountpoint(self) -> Mountpoint:
        assert self._janus is not None
        config = self.config
        host = config.janus_rtp_host or urlsplit(config.janus).hostname or "127.0.0.1"
        if config.janus_mountpoint and config.janus_video_port:
            # An existing mountpoint whose port the config names: no admin rights needed.
            return Mountpoint(config.janus_mountpoint, host, config.janus_video_port, 0, False)
        media: dict[str, Any] = {
            "type": "video",
            "mid": "v",
            "port": 0,  # Janus picks free ports from its rtp_port_range
            "rtcpport": 0,
            "pt": self.packetizer.payload_type,
            "codec": self.codec,
            "bufferkf": True,  # new viewers get the latest keyframe at once
        }
        if self.codec == "h264":
            media["fmtp"] = H264_FMTP
        body: dict[str, Any] = {
            "request": "create",
            "type": "rtp",
            "description": "ganvj",
            "media": [media],
        }
        if config.janus_mountpoint:
            body["id"] = config.janus_mountpoint
        if config.janus_admin_key:
            body["admin_key"] = config.janus_admin_key
        data = await self._janus.message(body)
        stream = data.get("stream", {})
        ports = [p for p in stream.get("ports", []) if p.get("type") == "video"]
        if ports:
            video, rtcp = ports[0].get("port"), ports[0].get("rtcp_port", 0)
        else:  # the pre-1.0 answer
            video, rtcp = stream.get("video_port"), stream.get("video_rtcp_port", 0)
        if not video:
            raise JanusError(f"Janus created a mountpoint without a video port: {data}")
        return Mountpoint(
            id=int(stream["id"]),
            host=host,
            video_port=int(video),
            rtcp_port=int(rtcp),
            created=True,
        )

    def _picture_lost(self) -> None:
        self.picture_loss += 1
        self.hub.request_keyframe()

    async def _report(self) -> None:
        # Sender reports tell Janus where our RTCP socket is; its PLIs come back to it.
        while True:
            if self._rtcp is not None:
                self._rtcp.sendto(self.packetizer.sender_report())
            await asyncio.sleep(RTCP_REPORT_SECONDS)

    async def _floor(self) -> None:
        while True:
            await asyncio.sleep(KEYFRAME_FLOOR_SECONDS / 4)
            if time.monotonic() - self._last_keyframe > KEYFRAME_FLOOR_SECONDS:
                self.keyframes_asked += 1
                self.hub.request_keyframe()
