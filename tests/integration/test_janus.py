"""Scale out through a real Janus (Debian's) in the test namespace: one encode, many viewers."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from server.bench.janus import ADMIN_KEY, janus_missing, running_janus, watch
from server.lifecycle import StartupError, running
from tests.conftest import server_config, tiny_model

pytestmark = pytest.mark.webrtc


@pytest.fixture(autouse=True)
def need_janus() -> None:
    why = janus_missing()
    if why is not None:
        pytest.skip(why)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_three_janus_viewers_and_a_late_one_share_one_encoder(
    webrtc_host: str, codec: str
) -> None:
    async with running_janus(webrtc_host) as janus:
        config = server_config(webrtc_host).with_overrides(
            {
                "stream.codec": codec,
                "output.janus": janus.url,
                "output.janus_admin_key": ADMIN_KEY,
            }
        )
        async with running(config, model=tiny_model()) as run:
            outputs = run.outputs
            assert outputs is not None and outputs.janus is not None
            mountpoint = outputs.janus.mountpoint
            assert mountpoint is not None and mountpoint.created
            viewers = [await watch(janus.url, mountpoint.id) for _ in range(3)]
            try:
                await asyncio.gather(*(v.wait_frames(40, 30) for v in viewers))
                for viewer in viewers:
                    first, last = viewer.frames[0].astype(int), viewer.frames[-1].astype(int)
                    assert first.shape == (64, 64, 3)
                    assert np.abs(first - last).mean() > 0.5  # changing frames, not a still
                # Janus fans out: ganvj has no WebRTC viewer of its own and encodes once.
                status = run.app.status()
                assert status["viewers"] == 0
                assert status["encoded_fps"] <= status["rendered_fps"] * 1.1 + 1
                assert status["outputs"]["janus"]["packets"] > 0
                # Janus asked for keyframes over RTCP (PLI) as viewers joined.
                assert outputs.janus.picture_loss >= 1
                started = time.monotonic()
                late = await watch(janus.url, mountpoint.id)
                viewers.append(late)
                await late.wait_frames(1, timeout=10)
                assert late.arrival[0] - started < 2.0
            finally:
                for viewer in viewers:
                    await viewer.close()
        # A mountpoint ganvj created is gone when it stops.
        gone = await watch_fails(janus.url, mountpoint.id)
        assert "No such mountpoint" in gone


async def watch_fails(url: str, mountpoint: int) -> str:
    try:
        viewer = await watch(url, mountpoint)
    except Exception as exc:  # noqa: BLE001 - the reason is what is checked
        return str(exc)
    await viewer.close()
    return ""


async def test_an_unreachable_janus_stops_the_start_with_the_reason(webrtc_host: str) -> None:
    config = server_config(webrtc_host).with_overrides(
        {"output.janus": f"http://{webrtc_host}:9/janus"}
    )
    with pytest.raises(StartupError, match=r"output\.janus"):
        async with running(config, model=tiny_model()):
            pass
