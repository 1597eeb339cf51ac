"""/model/load: a crossfade to another generator, never a black frame; bad files refused."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from models.checkpoint import save_checkpoint
from server.config import Config
from server.engine import Engine
from server.lifecycle import Running, running
from tests.conftest import save_tiny_model, server_config, tiny_model, tiny_pix2pix
from tests.integration.test_stylegan_live import reply_for

HOST = "127.0.0.1"


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    for name, seed, resolution in (("alpha", 1, 32), ("beta", 2, 64)):
        save_tiny_model(tmp_path / f"{name}.safetensors", resolution=resolution, seed=seed)
    p2p = tiny_pix2pix()
    save_checkpoint(
        tmp_path / "p2p.safetensors",
        arch="pix2pix",
        config=p2p.module.config,
        weights=p2p.module,
        training={},
    )
    good = (tmp_path / "beta.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (tmp_path / "notes.safetensors").write_text("print('a model file never runs code')\n")
    config = server_config(HOST, size=64)
    async with running(config, model=tiny_model(resolution=32, seed=1)) as run:
        yield run


def two_models_and_a_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Models alpha and beta (tiny DCGANs) in a models folder of the test's own, and a
    config whose one state folder serves both starts of a restart test."""
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    for name, seed in (("alpha", 1), ("beta", 2)):
        save_tiny_model(tmp_path / f"{name}.safetensors", seed=seed)
    return server_config(HOST, size=64)


def watch(engine: Engine, seconds: float) -> list[np.ndarray]:
    """Every rendered frame's luma for a while (on a thread)."""
    frames: list[np.ndarray] = []
    seen = engine.frames.latest()[0]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen, frame = engine.frames.wait_newer(seen, 0.2)
        if frame is not None:
            frames.append(frame.yuv[: frame.height].astype(float))
    return frames


async def test_switch_crossfades_without_a_black_frame(server: Running) -> None:
    engine = server.engine
    async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
        watching = asyncio.ensure_future(asyncio.to_thread(watch, engine, 3.0))
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"address": "/model/load", "args": ["beta"]}))
        state = await reply_for(ws, lambda m: m.get("address") == "/model/load", timeout=10)
        assert state["args"] == ["beta"]
        frames = await watching
    assert engine.model.name == "beta" and engine.model.resolution == 64
    # Never black (luma 16 is black in yuv420p), never stuck: every frame a picture.
    assert min(f.mean() for f in frames) > 30
    assert min(f.std() for f in frames) > 3
    # A crossfade: successive frames change gradually, not in one cut.
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(frames)]
    total = np.abs(frames[0] - frames[-1]).mean()
    assert max(steps) < 0.5 * total


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("truncated", "truncated"),
        ("notes", "notes.safetensors"),
        ("gamma", "no model named"),
        ("p2p", "needs an unconditional generator"),  # the wrong architecture
    ],
)
async def test_a_bad_model_file_is_refused_and_the_show_goes_on(
    server: Running, name: str, needle: str
) -> None:
    engine = server.engine
    async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
        await ws.send(json.dumps({"address": "/model/load", "args": [name]}))
        reply = await reply_for(ws, lambda m: m.get("type") == "error", timeout=10)
        assert needle in str(reply["error"]).lower() or needle in str(reply["error"])
        before = engine.frames.latest()[0]
        await asyncio.sleep(0.5)
        assert engine.frames.latest()[0] > before + 5  # still rendering
        assert engine.model.name == "tiny"
        assert engine.stats()["loading_model"] is None


async def test_a_restart_restores_the_model_and_the_master_dim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = two_models_and_a_state(tmp_path, monkeypatch)
    async with (
        running(config, model=tiny_model(resolution=32, seed=1)) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await ws.send(json.dumps({"address": "/model/load", "args": ["beta"]}))
        await reply_for(
            ws, lambda m: m.get("address") == "/model/load" and m.get("args") == ["beta"]
        )
        await ws.send(json.dumps({"address": "/output/dim", "args": [0.25]}))
        await reply_for(ws, lambda m: m.get("address") == "/output/dim" and m.get("args") == [0.25])
    async with (
        running(config, model=tiny_model(resolution=32, seed=1)) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await ws.send(json.dumps({"address": "/model/load", "args": ["?"]}))
        await reply_for(
            ws, lambda m: m.get("address") == "/model/load" and m.get("args") == ["beta"]
        )
        await ws.send(json.dumps({"address": "/output/dim", "args": ["?"]}))
        await reply_for(ws, lambda m: m.get("address") == "/output/dim" and m.get("args") == [0.25])
