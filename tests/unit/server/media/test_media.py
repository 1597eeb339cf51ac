"""The shared encoder and the fan-out: keyframes on request, slow viewers resync."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest

from server.config import StreamConfig
from server.media.frame import Frame
from server.media.slot import LatestSlot
from server.media.stream import EncodedFrame, PacketHub, StreamEncoder


def frame(index: int, size: int = 64) -> Frame:
    rng = np.random.default_rng(index)
    yuv = rng.integers(0, 255, size=(size * 3 // 2, size), dtype=np.uint8)
    return Frame(
        index=index,
        yuv=yuv,
        width=size,
        height=size,
        rendered_at=time.monotonic(),
        render_ms=1.0,
        applied_at=None,
    )


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_encoder_keyframes_on_request_only(codec: str) -> None:
    encoder = StreamEncoder(
        frames=LatestSlot(), config=StreamConfig(codec=codec), fps=30, on_encoded=lambda e: None
    )
    start = time.monotonic()
    keys = []
    for i in range(12):
        if i == 7:
            encoder.request_keyframe()
        encoded = encoder.encode(frame(i), start + i / 30)
        assert encoded is not None and encoded.packets
        assert all(p.time_base.denominator == 90_000 for p in encoded.packets)
        keys.append(encoded.keyframe)
    assert [i for i, k in enumerate(keys) if k] == [0, 7]


def test_encoded_stream_decodes() -> None:
    encoder = StreamEncoder(
        frames=LatestSlot(), config=StreamConfig(codec="vp8"), fps=30, on_encoded=lambda e: None
    )
    decoder = av.CodecContext.create("libvpx", "r")
    start = time.monotonic()
    decoded = 0
    for i in range(5):
        encoded = encoder.encode(frame(i), start + i / 30)
        assert encoded is not None
        for packet in encoded.packets:
            decoded += len(decoder.decode(packet))
    assert decoded == 5


def test_encoder_thread_repeats_the_last_frame_when_the_generator_stalls() -> None:
    slot: LatestSlot[Frame] = LatestSlot()
    got: list[EncodedFrame] = []
    encoder = StreamEncoder(frames=slot, config=StreamConfig(), fps=30, on_encoded=got.append)
    encoder.REPEAT_AFTER_SECONDS = 0.2
    encoder.start()
    try:
        slot.put(frame(1))
        time.sleep(0.1)
        assert len(got) == 1
        # No new frame: a new viewer's keyframe request is answered with the last picture.
        encoder.request_keyframe()
        time.sleep(0.3)
        assert len(got) >= 2 and got[1].keyframe and got[1].frame.index == 1
    finally:
        slot.close()
        encoder.stop()


def encoded(index: int, keyframe: bool) -> EncodedFrame:
    packet = av.Packet(b"\x00" * 10)
    return EncodedFrame(
        packets=(packet,), keyframe=keyframe, frame=frame(index), encoded_at=time.monotonic()
    )


async def test_hub_fans_out_and_viewers_start_at_a_keyframe() -> None:
    requests: list[int] = []
    hub = PacketHub(
        loop=asyncio.get_running_loop(), queue_size=4, request_keyframe=lambda: requests.append(1)
    )
    first = hub.add_viewer()
    assert requests == [1]  # a new viewer asks for a keyframe
    sent = [encoded(i, keyframe=i in (2, 4)) for i in range(1, 5)]
    hub.publish(sent[0])  # no use before a keyframe
    hub.publish(sent[1])
    second = hub.add_viewer()
    hub.publish(sent[2])  # second is still waiting for its keyframe
    hub.publish(sent[3])
    packets = [await first.recv() for _ in range(3)]
    assert packets == [e.packets[0] for e in sent[1:]]
    assert first.last_sent is not None and first.last_sent.frame.index == 4
    await second.recv()
    assert second.last_sent is not None and second.last_sent.frame.index == 4
    assert hub.viewers == 2
    first.stop()
    assert hub.viewers == 1


async def test_a_slow_viewer_drops_to_the_next_keyframe() -> None:
    requests: list[int] = []
    hub = PacketHub(
        loop=asyncio.get_running_loop(), queue_size=3, request_keyframe=lambda: requests.append(1)
    )
    slow = hub.add_viewer()
    hub.publish(encoded(1, keyframe=True))
    for i in range(2, 6):
        hub.publish(encoded(i, keyframe=False))  # nobody reads: the queue overflows
    assert slow.drops == 1
    assert len(requests) == 2  # the overflow asked for a keyframe
    hub.publish(encoded(6, keyframe=False))  # skipped: it needs its predecessors
    hub.publish(encoded(7, keyframe=True))
    await slow.recv()
    assert slow.last_sent is not None and slow.last_sent.frame.index == 7
