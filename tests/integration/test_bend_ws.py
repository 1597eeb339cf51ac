"""Network bending over the websocket: a bend changes the picture, /bend/reset brings the
unbent picture back bit for bit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from server.engine import Engine
from server.lifecycle import running
from tests.conftest import server_config, tiny_model
from tests.integration.test_stylegan_live import reply_for

HOST = "127.0.0.1"


async def settle(ws: Any, address: str, args: list[object]) -> None:
    """Send and hear it applied (the engine echoes the change after the frame)."""
    await ws.send(json.dumps({"address": address, "args": args}))
    await reply_for(ws, lambda m: m.get("address") == address)


async def steady_frame(engine: Engine) -> np.ndarray:
    """A picture the engine renders twice in a row (whatever moved has stopped)."""
    last = None
    seen = engine.frames.latest()[0]
    for _ in range(200):
        seen, frame = await asyncio.to_thread(engine.frames.wait_newer, seen, 2.0)
        assert frame is not None
        if last is not None and np.array_equal(frame.yuv, last):
            return last
        last = frame.yuv.copy()
    raise AssertionError("the picture never held still")


async def test_a_bend_changes_the_picture_and_reset_restores_it_bit_for_bit() -> None:
    async with (
        running(server_config(HOST, size=64), model=tiny_model()) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await settle(ws, "/latent/wander", [0])
        unbent = await steady_frame(run.engine)
        await settle(ws, "/bend/1/rotate", [90.0])
        bent = await steady_frame(run.engine)
        assert np.abs(bent.astype(int) - unbent.astype(int)).mean() > 1.0
        await ws.send(json.dumps({"address": "/bend/1/rotate", "args": ["?"]}))
        await reply_for(ws, lambda m: m.get("address") == "/bend/1/rotate" and m["args"] == [90.0])
        await settle(ws, "/bend/reset", [])
        restored = await steady_frame(run.engine)
        assert np.array_equal(restored, unbent)
