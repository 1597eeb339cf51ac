"""SDP rewrites of the negotiation: the cap on an offer's remote candidates."""

from __future__ import annotations

from server.media.rtc import MAX_OFFER_CANDIDATES, capped_candidates


def offer(count: int) -> str:
    lines = ["v=0", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0"]
    lines += [
        f"a=candidate:{i} 1 udp 2130706431 10.0.0.9 {20000 + i} typ host" for i in range(count)
    ]
    lines += ["a=rtpmap:96 VP8/90000"]
    return "\r\n".join(lines) + "\r\n"


def candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_an_offer_keeps_its_first_candidates_up_to_the_cap() -> None:
    kept = capped_candidates(offer(200), lambda: True)
    assert candidates(kept) == candidates(offer(MAX_OFFER_CANDIDATES))
    assert "a=rtpmap:96 VP8/90000" in kept and "a=mid:0" in kept
    assert capped_candidates(offer(3), lambda: True) == offer(3)


def test_a_spent_rate_drops_the_rest() -> None:
    budget = [5]

    def keep() -> bool:
        budget[0] -= 1
        return budget[0] >= 0

    assert len(candidates(capped_candidates(offer(10), keep))) == 5
