"""Offers as other browsers make them: every candidate an unresolvable mDNS name, or none at all."""

from __future__ import annotations

import re
import uuid

import pytest

from server.bench.peers import connect_viewer
from server.lifecycle import Running
from server.media.rtc import as_dtls_server, without_end_of_candidates

pytestmark = pytest.mark.webrtc

CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( .*)$")


def ws_url(run: Running) -> str:
    return f"ws://{run.app.config.server.host}:{run.port}/ws"


def mdns_only(sdp: str) -> str:
    """Firefox's offer: host addresses hidden behind `.local` names nobody answers for."""
    out = []
    for line in sdp.splitlines():
        match = CANDIDATE.match(line)
        if match:
            line = f"{match[1]}{uuid.uuid4()}.local{match[3]}"
        out.append(line)
    return ended("\r\n".join(out) + "\r\n")


def no_candidates(sdp: str) -> str:
    """An offer that ends its candidates before giving any."""
    kept = [line for line in sdp.splitlines() if not line.startswith("a=candidate:")]
    return ended("\r\n".join(kept) + "\r\n")


def ended(sdp: str) -> str:
    """Make sure each media section ends with `a=end-of-candidates`."""
    if "a=end-of-candidates" in sdp:
        return sdp
    return sdp.replace("\r\nm=", "\r\na=end-of-candidates\r\nm=") + "a=end-of-candidates\r\n"


def test_rewrites_leave_the_rest_of_the_sdp() -> None:
    offer = "v=0\r\nm=video 9 x\r\na=setup:actpass\r\na=end-of-candidates\r\n"
    assert without_end_of_candidates(offer) == "v=0\r\nm=video 9 x\r\na=setup:actpass\r\n"
    answer = "v=0\r\nm=video 9 x\r\na=setup:active\r\n"
    assert "a=setup:passive" in as_dtls_server(offer, answer)
    # A peer that asked to be the DTLS server keeps that role.
    insisting = offer.replace("actpass", "passive")
    assert "a=setup:active" in as_dtls_server(insisting, answer)


@pytest.mark.parametrize("rewrite", [mdns_only, no_candidates], ids=["mdns-only", "none"])
async def test_an_offer_without_usable_candidates_gets_ours_and_connects(
    live_server: Running, rewrite: object
) -> None:
    sent: list[str] = []

    def record(sdp: str) -> str:
        out = rewrite(sdp)  # type: ignore[operator]
        sent.append(out)
        return out

    viewer = await connect_viewer(ws_url(live_server), rewrite=record)
    try:
        offer = sent[0]
        assert "a=end-of-candidates" in offer
        assert not re.search(r"a=candidate:\S+ \d+ \S+ \d+ \d+\.\d+\.\d+\.\d+ ", offer)
        answer = viewer.pc.remoteDescription.sdp
        assert re.search(r"a=candidate:.* 10\.77\.0\.1 \d+ typ host", answer), answer
        assert "a=setup:passive" in answer
        await viewer.wait_frames(10, timeout=20)
    finally:
        await viewer.close()
