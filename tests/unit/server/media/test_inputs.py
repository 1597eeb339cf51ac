"""The latest-input slot hands every thread pictures of its own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from server.media.inputs import InputFrame, InputHub, SourceError, copy_planes, open_source


def moving_frame(i: int, width: int = 640, height: int = 480) -> av.VideoFrame:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, (i * 7) % width] = 255
    image[..., 1] = i % 256
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def test_slot_holds_no_video_frame() -> None:
    hub = InputHub()
    hub.begin("camera", threading.Event())
    frame = moving_frame(3)
    hub.put(frame, "camera")
    _, incoming = hub.frames.latest()
    assert incoming is not None
    # Nothing in the slot refers to the producer's frame or its buffers.
    assert not any(isinstance(v, av.VideoFrame) for v in vars(incoming).values())
    assert not incoming.yuv.flags.writeable
    assert incoming.width == 640 and incoming.height == 480
    np.testing.assert_array_equal(incoming.rgb(), frame.to_ndarray(format="rgb24"))


def test_odd_sizes_and_other_formats_are_copied_to_even_yuv420p() -> None:
    rgb = av.VideoFrame.from_ndarray(np.full((31, 45, 3), 90, np.uint8), format="rgb24")
    planes = copy_planes(rgb)
    assert planes.shape == (30 * 3 // 2, 44)
    picture = InputFrame(yuv=planes, arrived_at=0.0, source="x").rgb()
    assert picture.mean() == pytest.approx(90, abs=3)


@pytest.mark.timeout(60, method="thread")
def test_concurrent_readers_never_share_a_frame() -> None:
    """The deadlock of issue 10: a test thread and the render thread converting one frame.

    Three threads convert the newest input over and over while a producer keeps
    replacing it. With a shared `av.VideoFrame` this hung inside libswscale; the
    thread timeout turns a hang into a failure with every stack dumped.
    """
    hub = InputHub()
    hub.begin("camera", threading.Event())
    stop = threading.Event()
    converted = [0, 0, 0]

    def produce() -> None:
        i = 0
        while not stop.is_set():
            hub.put(moving_frame(i), "camera")
            i += 1

    def consume(slot: int) -> None:
        while not stop.is_set():
            _, incoming = hub.frames.latest()
            if incoming is not None:
                frame = incoming.to_frame()
                frame.reformat(width=320, height=240, format="rgb24").to_ndarray()
                converted[slot] += 1

    threads = [threading.Thread(target=produce, daemon=True)]
    threads += [threading.Thread(target=consume, args=(n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a converting thread hung"
    assert min(converted) > 10


def test_a_source_that_cannot_be_opened_says_the_same_whatever_the_reason(
    tmp_path: Path,
) -> None:
    # The security pass told /dev/null (Errno 25) from a missing device (Errno 2).
    texts = set()
    for spec in ("v4l2:/dev/null", "v4l2:/dev/no-such-video", "file:/etc", f"file:{tmp_path}/x"):
        with pytest.raises(SourceError) as caught:
            open_source(spec)
        text = str(caught.value).replace(repr(spec), "SPEC")  # its own words come back
        assert "Errno" not in text and "/" not in text
        texts.add(text)
    assert len(texts) == 1, texts
