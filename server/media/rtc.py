"""Answering a WebRTC offer so that any standard peer connects: browsers, GStreamer, aiortc.

Two upstream behaviours are worked around here, on our side of the wire:

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from aiortc import RTCPeerConnection, RTCSessionDescription

logger = logging.getLogger(__name__)

# How long a peer has to reach us before we tell aioice no candidate will come.
ICE_GRACE_SECONDS = 30.0

_pending: set[asyncio.Task[None]] = set()  # end-of-candidates tasks, kept from the GC


def without_end_of_candidates(sdp: str) -> str:
    """The offer minus `a=end-of-candidates`, so aioice keeps every component."""
    lines = sdp.splitlines()
    kept = [line for line in lines if line.strip() != "a=end-of-candidates"]
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


async def answer_offer(pc: RTCPeerConnection, offer: str) -> None:
    """Apply a remote offer and set our answer (read it from `pc.localDescription`)."""
    await pc.setRemoteDescription(
        RTCSessionDescription(sdp=without_end_of_candidates(offer), type="offer")
    )
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
