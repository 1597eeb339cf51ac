"""Pure cores of the outputs: RTP packetizing for Janus, UYVY for NDI, recording names."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.rtp import RtcpPacket, RtcpSrPacket, RtpPacket

from server.media.frame import Frame
from server.media.stream import TIME_BASE, EncodedFrame, open_codec
from server.outputs.janus import RtpPacketizer
from server.outputs.ndi import uyvy
from server.outputs.video_file import RecordError, check_name, unused_path


def encoded_frames(codec: str, count: int, size: int = 96) -> list[EncodedFrame]:
    context = open_codec(codec, width=size, height=size, bitrate=2_000_000, fps=30)
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        yuv = rng.integers(0, 255, (size * 3 // 2, size), dtype=np.uint8)
        video = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        video.pts, video.time_base = i * 3000, TIME_BASE
        packets = tuple(context.encode(video))
        for packet in packets:
            packet.time_base = TIME_BASE
        frame = Frame(i, yuv, size, size, 0.0, 0.0, None)
        out.append(EncodedFrame(packets, any(p.is_keyframe for p in packets), frame, 0.0))
    return out


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_rtp_packets_carry_one_stream_with_a_marker_on_each_frames_last(codec: str) -> None:
    packetizer = RtpPacketizer(codec, ssrc=1234)
    first_sequence = packetizer.sequence
    sent = []
    for encoded in encoded_frames(codec, 5):
        datagrams = [RtpPacket.parse(d) for d in packetizer.packetize(encoded)]
        assert len(datagrams) >= 2  # noise does not fit one packet: fragmented
        assert [p.marker for p in datagrams] == [0] * (len(datagrams) - 1) + [1]
        assert {p.timestamp for p in datagrams} == {encoded.packets[0].pts}
        assert all(len(p.payload) <= 1300 for p in datagrams)  # under a LAN MTU with headers
        sent += datagrams
    assert {p.ssrc for p in sent} == {1234}
    assert {p.payload_type for p in sent} == {100 if codec == "vp8" else 126}
    assert [p.sequence_number for p in sent] == [
        (first_sequence + i) & 0xFFFF for i in range(len(sent))
    ]
    report = RtcpPacket.parse(packetizer.sender_report())
    assert isinstance(report[0], RtcpSrPacket)
    assert report[0].ssrc == 1234 and report[0].sender_info.packet_count == len(sent)


def test_uyvy_matches_ffmpeg_packing() -> None:
    rng = np.random.default_rng(1)
    width, height = 64, 48
    yuv = rng.integers(0, 255, (height * 3 // 2, width), dtype=np.uint8)
    # Smooth chroma (U left to right, V top to bottom): FFmpeg's vertical chroma
    # interpolation then agrees with our repeated rows to within rounding.
    cy, cx = np.mgrid[0 : height // 2, 0 : width // 2]
    u = (40 + 5 * cx).astype(np.uint8)
    v = (200 - 6 * cy).astype(np.uint8)
    yuv[height:] = np.concatenate([u.reshape(-1), v.reshape(-1)]).reshape(height // 2, width)
    ours = uyvy(yuv, width, height)
    assert ours.shape == (height, width * 2)
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    plane = frame.reformat(format="uyvy422").planes[0]
    rows = np.frombuffer(bytes(plane), np.uint8).reshape(height, plane.line_size)
    theirs = rows[:, : width * 2]
    assert np.array_equal(ours[:, 1::2], theirs[:, 1::2])  # luma copied
    assert np.abs(ours[:, 0::2].astype(int) - theirs[:, 0::2].astype(int)).max() <= 6


def test_recording_names_are_plain_and_never_overwrite(tmp_path: Path) -> None:
    for bad in ("", "../x", "a/b", ".hidden", "x" * 65, "naïve"):
        with pytest.raises(RecordError):
            check_name(bad)
    assert check_name("set-1_a.b") == "set-1_a.b"
    first = unused_path(tmp_path, "set", ".webm")
    first.write_bytes(b"x")
    second = unused_path(tmp_path, "set", ".webm")
    assert second.name == "set-2.webm"
    (tmp_path / "set-2.perf.jsonl").write_text("")
    assert unused_path(tmp_path, "set", ".webm").name == "set-3.webm"
