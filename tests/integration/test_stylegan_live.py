"""A live server plays an imported StyleGAN pickle: it fades in, OSC moves it, bad files bounce."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pickle
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pythonosc.udp_client import SimpleUDPClient
from websockets.asyncio.client import ClientConnection, connect

from server.engine import Engine
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model
from tests.support.nvidia_pickles import (
    dumps,
    persistent_tree,
    seeded_stylegan2,
    stylegan2_ada_kwargs,
    write_network_pickle,
)

HOST = "127.0.0.1"


class _SystemCall:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    kwargs = stylegan2_ada_kwargs(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=32, channel_base=256, channel_max=32
    )
    generator = seeded_stylegan2(kwargs, seed=11, noise_seed=12)
    good = write_network_pickle(tmp_path / "faces.pkl", generator, init_kwargs=kwargs)
    data = good.read_bytes()
    (tmp_path / "torn.pkl").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.pkl").write_text("print('a model file never runs code')\n")
    marker = tmp_path / "ran"
    (tmp_path / "evil.pkl").write_bytes(
        pickle.dumps({"G_ema": _SystemCall(f"touch {marker}")}, protocol=4)
    )
    odd = persistent_tree(torch.nn.Linear(2, 2), class_name=lambda m: "Perceiver")
    (tmp_path / "odd.pkl").write_bytes(dumps(odd))
    config = server_config(HOST, size=64)
    async with running(config, model=tiny_model(resolution=32, seed=1)) as run:
        yield run
    assert not marker.exists()


async def reply_for(ws: ClientConnection, predicate: object, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if predicate(message):  # type: ignore[operator]
            return dict(message)


def watch(engine: Engine, stop: threading.Event, limit: float = 60.0) -> list[np.ndarray]:
    """Every rendered frame's luma until `stop` is set (bounded by `limit` seconds)."""
    frames: list[np.ndarray] = []
    seen = engine.frames.latest()[0]
    deadline = time.monotonic() + limit
    while not stop.is_set() and time.monotonic() < deadline:
        seen, frame = engine.frames.wait_newer(seen, 0.2)
        if frame is not None:
            frames.append(frame.yuv[: frame.height].astype(float))
    return frames


async def load_watching(
    ws: ClientConnection, engine: Engine, name: str, *, lead: float = 0.0
) -> list[np.ndarray]:
    """`/model/load name` over the websocket; every frame's luma from `lead` s before it
    until a second after the fade."""
    stop = threading.Event()
    watching = asyncio.ensure_future(asyncio.to_thread(watch, engine, stop))
    try:
        await asyncio.sleep(lead)
        await ws.send(json.dumps({"address": "/model/load", "args": [name]}))
        state = await reply_for(ws, lambda m: m.get("address") == "/model/load")
        assert state["args"] == [name]
        await asyncio.sleep(engine.MODEL_FADE_SECONDS + 1.0)
    finally:
        stop.set()
    return await watching


async def luma_in(engine: Engine, seconds: float) -> np.ndarray:
    """The luma of the newest frame after a while (a held picture is not re-rendered)."""
    await asyncio.sleep(seconds)
    frame = engine.frames.latest()[1]
    assert frame is not None
    return frame.yuv[: frame.height].astype(float)


async def test_pkl_crossfades_in_and_osc_moves_it(server: Running) -> None:
    engine = server.engine
    async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
        # Watch from before the load to after the fade: conversion time varies with load.
        frames = await load_watching(ws, engine, "faces", lead=0.3)
    assert engine.model.name == "faces" and engine.model.arch == "stylegan2"
    # Never black (luma 16 is black in yuv420p), never stuck: every frame a picture.
    assert len(frames) > 10
    assert min(f.mean() for f in frames) > 30
    assert min(f.std() for f in frames) > 3
    # A crossfade: successive frames change gradually, not in one cut.
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(frames)]
    total = np.abs(frames[0] - frames[-1]).mean()
    assert max(steps) < 0.5 * total

    # OSC moves the StyleGAN: hold still, then jump to another keyframe.
    assert server.osc is not None
    client = SimpleUDPClient(HOST, server.osc.address[1])
    try:
        client.send_message("/latent/wander", 0)
        client.send_message("/keyframe/1/jump", 0.0)
        still_a = await luma_in(engine, 0.5)
        still_b = await luma_in(engine, 0.3)
        assert np.abs(still_a - still_b).mean() < 0.5  # held: the same picture
        client.send_message("/keyframe/4/jump", 0.0)
        moved = await luma_in(engine, 0.5)
    finally:
        client._sock.close()
    assert np.abs(moved - still_b).mean() > 2.0


async def test_bad_pickles_are_refused_and_the_show_goes_on(server: Running) -> None:
    engine = server.engine
    cases = [
        ("torn", "truncated"),
        ("notes", "not a network pickle"),
        ("evil", "refused global"),
        ("odd", "unknown architecture"),
    ]
    async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
        for name, needle in cases:
            await ws.send(json.dumps({"address": "/model/load", "args": [name]}))
            reply = await reply_for(ws, lambda m: m.get("type") == "error")
            assert needle in str(reply["error"]), (name, reply)
            before = engine.frames.latest()[0]
            await asyncio.sleep(0.4)
            assert engine.frames.latest()[0] > before + 3  # still rendering
            assert engine.model.name == "tiny"
            assert engine.stats()["loading_model"] is None
