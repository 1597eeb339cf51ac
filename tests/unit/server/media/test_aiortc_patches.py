"""Our aiortc patches: playout-delay sent, keyframe requests routed, the version checked."""

from __future__ import annotations

import logging

import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack, rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

from server.media.aiortc_patches import (
    URI,
    ZERO,
    AiortcMismatch,
    check_aiortc,
    disable_zero_playout_delay,
    enable_zero_playout_delay,
    route_keyframe_requests,
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


async def test_a_viewers_picture_loss_reaches_our_encoder() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTrack(VideoStreamTrack())
        asked: list[str] = []
        route_keyframe_requests(sender, lambda: asked.append("keyframe"))
        # What the sender's RTCP loop does with a PLI from the viewer.
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
        await sender._handle_rtcp_packet(pli)
        assert asked == ["keyframe"]
    finally:
        await pc.close()


def test_the_installed_aiortc_is_a_verified_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_aiortc.__wrapped__()
    assert not caplog.records


def test_another_aiortc_version_is_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(aiortc, "__version__", "9.1.0")
    with caplog.at_level(logging.WARNING):
        check_aiortc.__wrapped__()
    assert "aiortc 9.1.0 is not a version" in caplog.text


def test_an_aiortc_without_the_patched_names_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(AiortcMismatch, match="_send_keyframe"):
        check_aiortc.__wrapped__()
