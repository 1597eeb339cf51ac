"""Numbers out of reach, over real sockets: a show import of 10^400 or NaN is refused whole,
a model file whose metadata breaks the loader neither wedges /model/load nor /api/models."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import save_file
from websockets.asyncio.client import ClientConnection, connect

from models.checkpoint import METADATA_KEY, read_tensors, save_checkpoint
from server.engine import Engine
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model

HOST = "127.0.0.1"  # loopback is admin: show/import is allowed
HUGE = "1" + "0" * 400  # 10^400 as a JSON integer: float() of it raises OverflowError


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `check()` holds; fail after `timeout` (a bound, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.05)


async def reply(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first message that matches, within 15 s."""
    async with asyncio.timeout(15):
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return dict(message)


def get(run: Running, path: str) -> tuple[int, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{run.port}{path}", timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(models))
    config = server_config(HOST).with_overrides({"server.state_dir": str(tmp_path / "state")})
    async with running(config, model=tiny_model()) as run:
        yield run


def show_text(run: Running) -> str:
    path = Path(run.app.config.server.state_dir) / "show.json"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize(
    "where",
    ["setting 10^400", "setting NaN", "keyframe 10^400", "keyframe NaN"],
)
async def test_a_show_import_with_a_number_out_of_reach_is_refused_whole(
    server: Running, where: str
) -> None:
    async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
        await ws.send(json.dumps({"address": "/keyframe/morph", "args": [2.5]}))
        await reply(ws, lambda m: m.get("address") == "/keyframe/morph")
        await eventually(lambda: '"/keyframe/morph":[2.5]' in show_text(server))
        stored, on_disk = server.app.status()["show"], show_text(server)
        exported = json.loads(on_disk)
        bad = json.loads(on_disk)
        if "keyframe" in where:
            bad["models"]["tiny"]["keyframes"][0][0] = "BAD"
        else:
            bad["models"]["tiny"]["settings"]["/latent/speed"] = ["BAD"]
        value = HUGE if "10^400" in where else "NaN"  # Python's json reads NaN
        text = json.dumps({"type": "show/import", "show": bad}).replace('"BAD"', value)
        await ws.send(text)
        answer = await reply(ws, lambda m: m.get("type") in ("error", "show/imported"))
        assert answer["type"] == "error", answer
        assert "imported show" in answer["error"] and "tiny" in answer["error"]
        await ws.send(json.dumps({"type": "show/export"}))
        after = await reply(ws, lambda m: m.get("type") == "show")
        assert after["show"] == exported  # nothing stored changed
        assert server.engine.errors == 0

        # The next valid change is saved, and the show says so.
        await ws.send(json.dumps({"address": "/keyframe/morph", "args": [4.0]}))
        await eventually(lambda: '"/keyframe/morph":[4.0]' in show_text(server))
        assert server.app.status()["show"]["saved"] is True
        assert stored["saved"] is True


def bad_model(folder: Path, name: str, config: object) -> Path:
    """A real model file whose metadata's config is `config`."""
    model = tiny_model(seed=3)
    path = folder / f"{name}.safetensors"
    save_checkpoint(
        path, arch="dcgan", config=model.module.config, weights=model.module, training={}
    )
    meta, tensors = read_tensors(path)
    meta["config"] = config
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    return path


async def test_a_model_file_that_breaks_the_loader_neither_wedges_loading_nor_the_list(
    server: Running, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    # z_dim 10^400 made torch raise TypeError inside the loader; a config that is a list made
    # the list raise AttributeError.
    bad_model(folder, "huge", {"resolution": 32, "z_dim": 10**400, "ngf": 8, "max_channels": 32})
    bad_model(folder, "listed", [32])
    engine: Engine = server.engine
    async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
        for name in ("huge", "listed"):
            await ws.send(json.dumps({"address": "/model/load", "args": [name]}))
            answer = await reply(ws, lambda m: m.get("address") == "/model/load")
            assert answer["type"] == "error" and f"{name}.safetensors" in answer["error"]
            assert engine.stats()["loading_model"] is None
        before = engine.frames.latest()[0]
        await eventually(lambda: engine.frames.latest()[0] > before + 5)  # still playing
        assert engine.model.name == "tiny"

    status, listed = await asyncio.to_thread(get, server, "/api/models")
    assert status == 200
    by_name = {m["name"]: m for m in listed["models"]}
    assert "z_dim" in by_name["huge"]["error"] and "config" in by_name["listed"]["error"]
    assert str(folder) not in json.dumps(listed)  # file names, never server paths
    assert all("error" not in m for n, m in by_name.items() if n not in ("huge", "listed"))
