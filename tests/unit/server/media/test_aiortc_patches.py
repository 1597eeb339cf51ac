"""The playout-delay RTP header extension: negotiated when offered, written on every packet."""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack, rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from server.media.aiortc_patches import (
    URI,
    ZERO,
    disable_zero_playout_delay,
    enable_zero_playout_delay,
)


def test_packets_carry_min_max_zero_next_to_aiortcs_own_extensions() -> None:
    enable_zero_playout_delay()
    try:
        mapping = rtp.HeaderExtensionsMap()
        mapping.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(
                        id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"
                    ),
                    RTCRtpHeaderExtensionParameters(id=9, uri=URI),
                ]
            )
        )
        values = rtp.HeaderExtensions(mid="0")
        elements = list(rtp.unpack_header_extensions(*mapping.set(values)))
        assert elements == [(1, b"0"), (9, ZERO)]
    finally:
        disable_zero_playout_delay()
    plain = rtp.HeaderExtensionsMap()
    plain.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=9, uri=URI)])
    )
    assert plain.set(rtp.HeaderExtensions()) == (0, b"")


async def answer_to_an_offer_with_playout_delay() -> str:
    offerer = RTCPeerConnection()
    answerer = RTCPeerConnection()
    try:
        offerer.addTransceiver("video", direction="recvonly")
        offer = await offerer.createOffer()
        # Chromium offers the extension; aiortc's own offer does not unless enabled.
        sdp = offer.sdp
        if URI not in sdp:
            sdp = sdp.replace(
                "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
                f"a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:9 {URI}",
            )
        answerer.addTrack(VideoStreamTrack())
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        answer = await answerer.createAnswer()
        return answer.sdp
    finally:
        await offerer.close()
        await answerer.close()


async def test_the_answer_accepts_the_extension_only_when_enabled() -> None:
    assert URI not in await answer_to_an_offer_with_playout_delay()
    enable_zero_playout_delay()
    try:
        assert URI in await answer_to_an_offer_with_playout_delay()
    finally:
        disable_zero_playout_delay()
