"""Recording the set: real encoder packets muxed to real files, read back with PyAV."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from server.bench import faults
from server.commands import parse
from server.lifecycle import Running, running, state_dir
from server.media.stream import EncodedFrame
from tests.conftest import server_config, tiny_model

REPO = Path(__file__).resolve().parents[2]


class Sent:
    """Every encoded frame the shared encoder published, as bytes."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, bool]] = []

    def __call__(self, encoded: EncodedFrame) -> None:
        self.frames.append((b"".join(bytes(p) for p in encoded.packets), encoded.keyframe))


async def record(run: Running, name: str, seconds: float) -> Path:
    outputs = run.outputs
    assert outputs is not None
    assert run.engine.submit([parse("/record/start", [name])])
    await asyncio.sleep(seconds)
    assert run.engine.submit([parse("/record/stop", [])])
    deadline = time.monotonic() + 10
    while outputs.recorder.recording and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    video = outputs.recorder.video
    assert video is not None
    await asyncio.to_thread(video.stop)
    return video.path


def nal_units(data: bytes, *, annex_b: bool) -> list[bytes]:
    """H.264 NAL units from Annex B (start codes) or MP4's length-prefixed form."""
    if not annex_b:
        units, i = [], 0
        while i < len(data):
            size = int.from_bytes(data[i : i + 4], "big")
            units.append(data[i + 4 : i + 4 + size])
            i += 4 + size
        return units
    parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p.rstrip(b"\x00") for p in parts if p]


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_recording_holds_the_sent_packets_from_a_keyframe(codec: str) -> None:
    config = server_config("127.0.0.1").with_overrides({"stream.codec": codec})
    async with running(config, model=tiny_model()) as run:
        sent = Sent()
        assert run.app.hub is not None
        run.app.hub.listeners.append(sent)
        path = await record(run, f"set-{codec}", 2.0)
        assert run.outputs is not None
        written = run.outputs.recorder.video.frames  # type: ignore[union-attr]
    assert path.suffix == (".webm" if codec == "vp8" else ".mp4")
    assert path.parent == state_dir(config) / "recordings"
    with av.open(str(path)) as container:
        packets = [(bytes(p), p.is_keyframe) for p in container.demux(video=0) if p.size]
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert len(packets) == written == decoded
    assert written > 20  # two seconds at 30 fps, whatever the load
    assert packets[0][1]  # starts on a keyframe
    # Not re-encoded: the file's packets are a run of exactly what was sent.
    if codec == "vp8":
        sent_bytes = [data for data, _ in sent.frames]
        start = sent_bytes.index(packets[0][0])
        assert sent.frames[start][1]
        assert [p for p, _ in packets] == sent_bytes[start : start + len(packets)]
    else:
        # MP4 stores H.264 length-prefixed instead of with start codes: same NAL units.
        sent_units = [nal_units(data, annex_b=True) for data, _ in sent.frames]
        file_units = [nal_units(data, annex_b=False) for data, _ in packets]
        start = next(i for i, u in enumerate(sent_units) if u[-1] == file_units[0][-1])
        assert file_units == sent_units[start : start + len(file_units)]


KILLED = """
import asyncio, sys
from server.commands import parse
from server.lifecycle import running, state_dir
from tests.conftest import server_config, tiny_model

async def main():
    config = server_config("127.0.0.1")
    async with running(config, model=tiny_model()) as run:
        run.engine.submit([parse("/record/start", ["killed"])])
        print(state_dir(config), flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_sigkill_mid_recording_leaves_a_file_that_plays() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        folder = Path(line.strip()) / "recordings"
        await asyncio.sleep(3.5)  # three complete one-second clusters, at least
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    path = folder / "killed.webm"
    log = folder / "killed.perf.jsonl"
    assert path.stat().st_size > 0 and log.stat().st_size > 0
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(video=0)]
    # Read to the last complete cluster: at least the first two seconds.
    assert len(frames) >= 40
    assert frames[-1].shape == (96, 64)


async def test_a_full_disk_stops_the_recording_and_the_show_goes_on() -> None:
    why = faults.can_mount()
    if why is not None:
        pytest.skip(why)
    config = server_config("127.0.0.1")
    folder = state_dir(config) / "recordings"
    with faults.tmpfs(folder, size_kb=256):
        async with running(config, model=tiny_model()) as run:
            outputs = run.outputs
            assert outputs is not None
            changes: list[tuple[object, ...]] = []
            run.app.control.subscribe(
                lambda batch: changes.extend(c.args for c in batch if c.address == "/record/state")
            )
            assert run.engine.submit([parse("/record/start", ["full"])])
            await asyncio.sleep(1.0)
            assert outputs.recorder.recording
            await asyncio.to_thread(faults.fill, folder)  # the disk fills up mid-set
            deadline = time.monotonic() + 20
            while not outputs.recorder.last_error and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert "No space left" in outputs.recorder.last_error
            assert not outputs.recorder.recording
            while (not changes or changes[-1][0]) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the change crosses to the event loop
            assert changes[-1][0] == 0 and "No space left" in str(changes[-1][2])
            # The show goes on: frames are still rendered and encoded.
            frames, encoded = run.engine.stats()["frames"], run.app.encoder.encoded_rate  # type: ignore[union-attr]
            await asyncio.sleep(1.0)
            assert run.engine.stats()["frames"] > frames + 10
            assert encoded.rate() > 5
            assert "No space left" in run.app.status()["outputs"]["recording"]["error"]
