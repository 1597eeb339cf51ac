"""WebRTC negotiation for every edge: one offer in, one answer out, and the peers that result.

`/ws` (the browser pages) and WHIP/WHEP share this module. `PeerConnections`
owns every peer of the server: viewers we send the stream to, and incoming
peers (a camera or WHIP publisher whose video becomes the input source, a
browser sending audio for modulation). A peer closes when its connection
fails, when its owner (a websocket, a WHIP session) asks, or at shutdown.

`answer_offer` answers so that any standard peer connects: browsers,
GStreamer, aiortc. Two upstream behaviours are worked around here, on our side
of the wire, by changing SDP text only (the patches to aiortc's classes live in
`server.media.aiortc_patches`):

- **ICE (aioice 0.13, `Connection._prune_components`).** When an offer carries
  `a=end-of-candidates`, aioice drops every ICE component for which no remote
  candidate survived. Firefox offers only mDNS `*.local` host candidates; where
  multicast is blocked none resolves, the only component is dropped, and
  `gather_candidates()` then gathers for no component: the answer carries no
  candidate and the peer has nothing to check. An offer with no candidate at all
  plus end-of-candidates ends the same way. We strip `a=end-of-candidates` from
  the offer, so the answer always carries our host candidates; the peer's checks
  then reach us and aioice learns its peer-reflexive candidates (RFC 8445
  7.3.1.3). Without end-of-candidates aioice never declares failure, so we
  signal it ourselves after `ICE_GRACE_SECONDS`.
- **DTLS (aiortc 1.16, `RTCCertificate._create_ssl_context`).** aiortc answers
  an `actpass` offer as the DTLS client and offers only ECDHE-ECDSA cipher
  suites; GStreamer's webrtcbin serves an RSA certificate, so the handshake
  fails with "no shared cipher". We answer `a=setup:passive` instead: as the
  DTLS server our own ECDSA certificate picks the suite, and every WebRTC stack
  supports ECDSA suites as a client, since browsers have used ECDSA
  certificates for years. RFC 8842 lets the answerer pick either role, and
  it leaves aiortc's private TLS context alone. A peer that insists on being
  the server (`a=setup:passive` in its offer) still gets an aiortc client.

Each remote candidate makes aioice send STUN checks to its address, so an
offer is a way to make this server send packets anywhere: the candidates an
offer brings are capped (`MAX_OFFER_CANDIDATES`, and `CANDIDATES_PER_S` over
all offers together); the extra `a=candidate` lines are dropped before aiortc
sees them. A peer left with none still connects: its checks reach us and
aioice learns it as peer-reflexive. Candidates arrive in offers only (no
trickle ICE on any path), so that is the one place to cap them. A peer that
has not connected within `peer_connect_s` is closed, so offers that never
run ICE do not hold viewer slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from server.media.aiortc_patches import route_keyframe_requests
from server.media.inputs import InputHub, pump_audio, pump_track
from server.media.stream import FrameTrack, ViewerTrack
from server.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

# How long a peer has to reach us before we tell aioice no candidate will come.
ICE_GRACE_SECONDS = 30.0
# Limits
MAX_SDP_CHARS = 64 * 1024
CLOSE_TIMEOUT_S = 2.0  # closing a peer is best effort past this
MAX_OFFER_CANDIDATES = 16  # remote ICE candidates taken from one offer
CANDIDATES_PER_S = 64  # ... and from every offer together, a second's worth at once

CODEC_MIME = {"vp8": "video/VP8", "h264": "video/H264"}

_pending: set[asyncio.Task[None]] = set()  # timer-started tasks, kept from the GC


def without_end_of_candidates(sdp: str) -> str:
    """The offer minus `a=end-of-candidates`, so aioice keeps every component."""
    lines = sdp.splitlines()
    kept = [line for line in lines if line.strip() != "a=end-of-candidates"]
    return "\r\n".join(kept) + "\r\n"


def capped_candidates(sdp: str, keep: Callable[[], bool]) -> str:
    """The offer with its `a=candidate` lines cut to the first `MAX_OFFER_CANDIDATES`.

    `keep()` is asked for each candidate within that cap (a rate across offers);
    a candidate it refuses is dropped as well.
    """
    kept: list[str] = []
    taken = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") or line.startswith("a=candidate "):
            if taken >= MAX_OFFER_CANDIDATES or not keep():
                continue
            taken += 1
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def as_dtls_server(offer: str, answer: str) -> str:
    """The answer with `a=setup:passive` in each section the offer left to us (`actpass`)."""
    offer_sections = _sections(offer)
    out: list[str] = []
    for index, section in enumerate(_sections(answer)):
        ours = offer_sections[index] if index < len(offer_sections) else []
        free = "a=setup:actpass" in ours
        out.extend(
            "a=setup:passive" if free and line == "a=setup:active" else line for line in section
        )
    return "\r\n".join(out) + "\r\n"


def _sections(sdp: str) -> list[list[str]]:
    """The session part, then one list of lines per m= section."""
    sections: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line.strip())
    return sections


async def answer_offer(
    pc: RTCPeerConnection, offer: str, keep_candidate: Callable[[], bool] = lambda: True
) -> None:
    """Apply a remote offer and set our answer (read it from `pc.localDescription`)."""
    remote = capped_candidates(without_end_of_candidates(offer), keep_candidate)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=remote, type="offer"))
    answer = await pc.createAnswer()
    await pc.setLocalDescription(
        RTCSessionDescription(sdp=as_dtls_server(offer, answer.sdp), type="answer")
    )
    loop = asyncio.get_running_loop()
    # A weak reference: a peer closed meanwhile is not kept alive by the timer.
    loop.call_later(ICE_GRACE_SECONDS, _end_candidates_soon, weakref.ref(pc))


def _end_candidates_soon(ref: weakref.ref[RTCPeerConnection]) -> None:
    pc = ref()
    if pc is None or pc.iceConnectionState in ("completed", "closed", "failed"):
        return
    task = asyncio.ensure_future(_end_candidates(pc))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _end_candidates(pc: RTCPeerConnection) -> None:
    # Past the grace time a peer that never reached us fails the normal way,
    # so the app's connectionstatechange handler closes it.
    with contextlib.suppress(Exception):
        await pc.addIceCandidate(None)
    logger.debug("ICE: no peer reached us in %.0f s, end of candidates", ICE_GRACE_SECONDS)


class OfferError(ValueError):
    """An offer this server does not answer; the message says why, for the peer."""


def checked_sdp(sdp: object) -> str:
    """The SDP if it is an offer's (a string from `v=0`, within the limit); else OfferError."""
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OfferError("an offer needs an 'sdp' string that starts with 'v=0'")
    if len(sdp) > MAX_SDP_CHARS:
        raise OfferError(f"the SDP is longer than {MAX_SDP_CHARS} characters")
    return sdp


@dataclass(eq=False)  # identity, so peers live in sets
class Peer:
    """One peer connection: a viewer, or an incoming camera or audio sender."""

    pc: RTCPeerConnection
    track: ViewerTrack | FrameTrack | None  # what we send; None for an incoming peer
    connected_at: float = field(default_factory=time.monotonic)
    client: str = ""  # the address that offered it
    privileged: bool = False  # a performer's or trusted client's: counted apart from viewers
    pump: asyncio.Task[None] | None = None  # an incoming peer's frame or sample pump


AudioSink = Callable[[np.ndarray, int], None]  # samples (samples, channels), sample rate


class PeerConnections:
    """Every WebRTC peer of the server: the viewers, and the incoming peers."""

    def __init__(
        self,
        *,
        ice_servers: tuple[str, ...],
        codec: str,
        max_viewers: int,
        camera: Callable[[], InputHub],
        viewer_track: Callable[[], ViewerTrack | FrameTrack],
        viewers_per_client: int | None = None,
        connect_s: float = 10.0,
    ) -> None:
        self.ice_servers = ice_servers
        self.codec = codec
        self.max_viewers = max_viewers  # for viewers, and for privileged peers apart
        self.viewers_per_client = viewers_per_client or max_viewers
        self.connect_s = connect_s
        self.candidates = TokenBucket(rate=CANDIDATES_PER_S, max_keys=1)
        self.unconnected_closed = 0  # peers closed for not connecting in time
        self.camera = camera  # where an incoming camera's frames go now (the engine says)
        self.viewer_track = viewer_track  # a new viewer's track
        self.viewers: set[Peer] = set()
        self.incoming: set[Peer] = set()  # cameras, WHIP publishers and audio senders

    async def answer_camera(self, sdp: object, own: set[Peer], source: str = "camera") -> str:
        """A camera (or a WHIP publisher) sending video to us; it becomes the input source.

        Every `answer_*` takes the offer's SDP as received (checked here) and
        returns the answer's; the peer joins `own` (its websocket's or its
        session's set) until it closes. OfferError says why an offer is refused.
        """
        sdp = checked_sdp(sdp)
        peer = Peer(pc=self._new_pc(), track=None)

        @peer.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and peer.pump is None:
                peer.pump = asyncio.ensure_future(pump_track(self.camera, track, source))

        def receives_video() -> str | None:
            if any(t.kind == "video" for t in peer.pc.getTransceivers()):
                return None
            return "a camera offer needs a video section"

        return await self._negotiate(peer, sdp, receives_video, self.incoming, own)

    async def answer_audio(self, sdp: object, own: set[Peer], deliver: AudioSink | None) -> str:
        """A browser sending its microphone or line input to `deliver` (None: no audio here)."""
        sdp = checked_sdp(sdp)
        if deliver is None:
            raise OfferError("audio input is not available in this server")
        peer = Peer(pc=self._new_pc(), track=None)

        @peer.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and peer.pump is None:
                peer.pump = asyncio.ensure_future(pump_audio(track, deliver))

        def receives_audio() -> str | None:
            if any(t.kind == "audio" for t in peer.pc.getTransceivers()):
                return None
            return "an audio offer needs an audio section"

        return await self._negotiate(peer, sdp, receives_audio, self.incoming, own)

    async def answer_viewer(
        self, sdp: object, own: set[Peer], *, client: str = "", privileged: bool = False
    ) -> str:
        """A viewer (a page, a WHEP client) that receives the stream.

        `client` is its address; `privileged` (a performer's or a trusted
        machine's, such as the projector) counts apart from the audience, so
        a full house never refuses it, and no per-client limit applies.
        """
        sdp = checked_sdp(sdp)
        same = [p for p in self.viewers if p.privileged == privileged]
        if len(same) >= self.max_viewers:
            raise OfferError(f"the server is full ({self.max_viewers} viewers)")
        if not privileged and sum(p.client == client for p in same) >= self.viewers_per_client:
            raise OfferError(
                f"this address already has {self.viewers_per_client} viewers: close one first"
            )
        track = self.viewer_track()
        peer = Peer(pc=self._new_pc(), track=track, client=client, privileged=privileged)
        sender = peer.pc.addTrack(track)
        if isinstance(track, ViewerTrack):
            # The sender handles picture loss by flagging its own encoder,
            # which it does not use here: route it to the shared one.
            route_keyframe_requests(sender, track.request_keyframe)
        self._prefer_codec(peer.pc, sender)

        def sends_video() -> str | None:
            if any(
                t.sender is sender and t.currentDirection in ("sendonly", "sendrecv")
                for t in peer.pc.getTransceivers()
            ):
                return None
            return (
                "the offer has no video section this server can send to "
                "(offer a recvonly or sendrecv video transceiver)"
            )

        return await self._negotiate(peer, sdp, sends_video, self.viewers, own)

    async def close_peer(self, peer: Peer) -> None:
        """Hang up one peer and stop what feeds it or what it feeds."""
        self.viewers.discard(peer)
        self.incoming.discard(peer)
        if peer.track is not None:
            peer.track.stop()
        if peer.pump is not None:
            peer.pump.cancel()
        try:
            await asyncio.wait_for(peer.pc.close(), timeout=CLOSE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            logger.debug("closing a peer failed: %s", exc)

    async def close(self) -> None:
        """Close every peer (shutdown)."""
        await asyncio.gather(*(self.close_peer(p) for p in [*self.viewers, *self.incoming]))

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(
            RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in self.ice_servers])
        )

    async def _negotiate(
        self,
        peer: Peer,
        sdp: str,
        check: Callable[[], str | None],
        group: set[Peer],
        own: set[Peer],
    ) -> str:
        """Apply an offer and answer it; a bad offer closes the peer and says why."""
        pc = peer.pc
        try:
            await answer_offer(
                pc, sdp, self.candidates.take
            )  # connects whatever the peer's candidates, DTLS role
            problem = check()
            if problem is not None:
                raise OfferError(problem)
        except OfferError:
            await self.close_peer(peer)
            raise
        except Exception as exc:  # aiortc raises many types for a bad SDP
            await self.close_peer(peer)
            raise OfferError(f"the offer could not be used: {type(exc).__name__}: {exc}") from exc
        group.add(peer)
        own.add(peer)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                own.discard(peer)
                await self.close_peer(peer)

        # A weak reference: a peer that hung up is freed at once, not when this fires
        # (200 churned viewers otherwise held ~50 MB for the 10 s).
        asyncio.get_running_loop().call_later(
            self.connect_s, self._close_if_unconnected, weakref.ref(peer), group, own
        )
        return pc.localDescription.sdp

    def _close_if_unconnected(
        self, ref: weakref.ref[Peer], group: set[Peer], own: set[Peer]
    ) -> None:
        """Free the slot of a peer that never connected (an offer that runs no ICE)."""
        peer = ref()
        if peer is None or peer not in group or peer.pc.connectionState == "connected":
            return
        self.unconnected_closed += 1
        own.discard(peer)
        logger.info("a peer from %s did not connect in %.0f s: closed", peer.client, self.connect_s)
        task = asyncio.ensure_future(self.close_peer(peer))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    def _prefer_codec(self, pc: RTCPeerConnection, sender: RTCRtpSender) -> None:
        # Must happen before setRemoteDescription, where aiortc picks the codec.
        mime = CODEC_MIME[self.codec]
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == mime]
        for transceiver in pc.getTransceivers():
            if transceiver.sender is sender:
                transceiver.setCodecPreferences(codecs)
