"""A wide canvas end to end: `serve --size 320x180` streams 320x180 frames to a real viewer."""

from __future__ import annotations

import numpy as np
import pytest

from server.bench.peers import connect_viewer
from server.cli import build_parser, serve_config
from server.lifecycle import running
from tests.conftest import server_config, tiny_model

pytestmark = pytest.mark.webrtc


def test_size_and_fill_flags_make_the_canvas() -> None:
    args = build_parser().parse_args(["serve", "--size", "320x180", "--fill", "mirror"])
    config = serve_config(args)
    assert config.render.canvas == (320, 180) and config.render.fill == "mirror"


async def test_a_320x180_canvas_reaches_an_aiortc_viewer_as_320x180_frames(
    webrtc_host: str,
) -> None:
    config = server_config(webrtc_host, size="320x180")
    async with running(config, model=tiny_model()) as run:
        viewer = await connect_viewer(f"ws://{webrtc_host}:{run.port}/ws")
        try:
            await viewer.wait_frames(20, timeout=30)
            frames = viewer.frames[:20]
            assert all(f.shape == (180, 320, 3) for f in frames)
            # Painted to the edges: the outer columns of the (native) wide frame vary.
            last = frames[-1].astype(int)
            assert last[:, :4].std() > 2 and last[:, -4:].std() > 2
            status = run.app.status()
            assert status["canvas"] == "320x180" and status["fill"] == "native"
            assert status["encoder"] == "libvpx" and status["encode_ms"] > 0
            assert np.abs(frames[0].astype(int) - last).mean() > 0.5  # a moving picture
        finally:
            await viewer.close()
