"""Faults mid-show: the show's disk fills up or turns read-only, a model file vanishes as it loads.

Each gives a clear error to the controllers while the picture plays on, and
nothing stored is lost. The disk is a real tmpfs mounted in this run's own
mount namespace (scripts/test runs pytest under `unshare -n -m`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from models.checkpoint import save_checkpoint
from models.nets.dcgan import DCGANConfig, DCGANGenerator
from server.bench.faults import can_mount, fill, set_read_only, tmpfs
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model

HOST = "127.0.0.1"
SHOW_KB = 512  # the show's whole disk


def showfile_text(run: Running) -> str:
    return (Path(run.app.config.server.state_dir) / "show.json").read_text()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def error_about(ws: ClientConnection, address: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no error about {address}"
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if message.get("type") == "error" and message.get("address") == address:
            return str(message["error"])


async def frames_advance(run: Running, count: int = 5) -> None:
    """The picture plays on: `count` new frames within a few seconds."""

    def index() -> int:
        frame = run.engine.frames.latest()[1]
        return -1 if frame is None else frame.index

    start = index()
    await eventually(lambda: index() >= start + count, 5.0)


def saved_keyframe(text: str, model: str, n: int) -> list[float]:
    return list(json.loads(text)["models"][model]["keyframes"][n - 1])


@pytest.fixture
async def show_on_tmpfs(tmp_path: Path) -> AsyncIterator[tuple[Running, Path]]:
    why = can_mount()
    if why is not None:
        pytest.skip(why)
    with tmpfs(tmp_path / "state", SHOW_KB) as state:
        config = server_config(HOST).with_overrides({"server.state_dir": str(state)})
        async with running(config, model=tiny_model()) as run:
            yield run, state


@pytest.mark.parametrize("fault", ["full", "read-only"])
async def test_show_disk_fault_keeps_playing_and_loses_nothing(
    show_on_tmpfs: tuple[Running, Path], fault: str
) -> None:
    run, state = show_on_tmpfs
    name = run.engine.model.name
    async with connect(f"ws://{HOST}:{run.port}/ws") as ws:
        initial = run.engine.play.bank[2].tolist()  # the start-up save already holds this
        await ws.send(json.dumps({"address": "/keyframe/3/store", "args": []}))

        def stored_3() -> bool:
            if not (state / "show.json").exists() or run.engine.play.bank[2].tolist() == initial:
                return False  # the store has not been applied yet
            saved = saved_keyframe(showfile_text(run), name, 3)
            return saved == pytest.approx(run.engine.play.bank[2].tolist(), abs=1e-6)

        await eventually(stored_3)
        before = showfile_text(run)

        filler = fill(state) if fault == "full" else None
        if fault == "read-only":
            set_read_only(state, True)
        try:
            await ws.send(json.dumps({"address": "/keyframe/5/store", "args": []}))
            message = await error_about(ws, "/show/save")
            assert "could not be saved" in message
            assert ("No space" in message) if fault == "full" else ("Read-only" in message)
            assert run.app.status()["show"]["saved"] is False
            await frames_advance(run)
            assert showfile_text(run) == before  # the old file is whole, never torn
        finally:
            if filler is not None:
                filler.unlink()
            if fault == "read-only":
                set_read_only(state, False)

        # The disk takes it again: the retry saves what was performed meanwhile.
        await eventually(lambda: run.app.status()["show"]["saved"] is True)
        after = showfile_text(run)
        stored = [float(v) for v in run.engine.play.bank[4].tolist()]
        assert saved_keyframe(after, name, 5) == pytest.approx(stored, abs=1e-6)
        assert saved_keyframe(after, name, 3) == saved_keyframe(before, name, 3)


def model_file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    generator = DCGANGenerator(config=DCGANConfig(resolution=32, z_dim=16, ngf=8, max_channels=32))
    path = folder / f"{name}.safetensors"
    save_checkpoint(
        path,
        arch="dcgan",
        config=generator.config,
        weights=generator,
        training={"note": "fault test"},
    )
    return path


@pytest.fixture
async def server_with_user_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Running, Path]]:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(folder))
    async with running(server_config(HOST), model=tiny_model()) as run:
        yield run, folder


@pytest.mark.parametrize("damage", ["delete", "truncate"])
async def test_model_file_vanishing_while_it_loads(
    server_with_user_models: tuple[Running, Path], damage: str
) -> None:
    run, folder = server_with_user_models
    original = model_file(folder, "template")
    playing = run.engine.model.name
    async with connect(f"ws://{HOST}:{run.port}/ws") as ws:
        # Several timings: before the load opens the file, during, after.
        for attempt, delay in enumerate((0.0, 0.0005, 0.002, 0.01)):
            name = f"victim{attempt}"
            path = folder / f"{name}.safetensors"
            shutil.copy(original, path)
            size = path.stat().st_size

            def hurt(path: Path = path, size: int = size, delay: float = delay) -> None:
                time.sleep(delay)
                if damage == "delete":
                    path.unlink()
                else:
                    os.truncate(path, size // 2)

            await ws.send(json.dumps({"address": "/model/load", "args": [name]}))
            thread = threading.Thread(target=hurt)
            thread.start()
            outcome = ""
            deadline = time.monotonic() + 10
            while not outcome:
                assert time.monotonic() < deadline, "no answer to /model/load"
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message.get("address") != "/model/load":
                    continue
                outcome = message.get("error") or f"loaded {message.get('args')}"
            thread.join()
            # Either it loaded whole before the damage, or a clear error named the file.
            assert outcome.startswith("loaded") or name in outcome or "no model" in outcome
            await frames_advance(run)
            if outcome.startswith("loaded"):
                await eventually(lambda name=name: run.engine.model.name == name)
                playing = name
            else:
                assert run.engine.model.name == playing  # the old model plays on
