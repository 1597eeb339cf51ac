"""A model by name or by path in every live place: /model/load (websocket, OSC) and `serve`."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from controllers.osc import OscController
from controllers.osc_access import AllowList
from controllers.osc_packet import encode
from models.checkpoint import save_checkpoint
from server.commands import Command
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model
from tests.integration.test_stylegan_live import reply_for

REPO = Path(__file__).resolve().parents[2]


def save_tiny(path: Path, *, resolution: int, seed: int) -> Path:
    model = tiny_model(resolution=resolution, seed=seed)
    save_checkpoint(
        path, arch="dcgan", config=model.module.config, weights=model.module, training={}
    )
    return path


@pytest.fixture
async def server(
    webrtc_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    """A server that trusts nobody (tokens decide the role), `alpha` in its models folder."""
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    save_tiny(tmp_path / "models" / "alpha.safetensors", resolution=32, seed=1)
    save_tiny(tmp_path / "elsewhere.safetensors", resolution=64, seed=2)
    config = server_config(webrtc_host).with_overrides({"server.trusted": []})
    async with running(config, model=tiny_model(resolution=32, seed=1)) as run:
        yield run


async def load(run: Running, token: str, spec: str) -> dict[str, object]:
    """Send /model/load over /ws with this token; the reply (state or error)."""
    url = f"ws://{run.app.config.server.host}:{run.port}/ws?t={token}"
    async with connect(url) as ws:
        await ws.send(json.dumps({"address": "/model/load", "args": [spec]}))
        return await reply_for(
            ws,
            lambda m: m.get("type") == "error" or m.get("address") == "/model/load",
            timeout=20,
        )


@pytest.mark.webrtc
async def test_websocket_loads_by_name_for_a_performer_and_by_path_for_an_admin(
    server: Running, tmp_path: Path
) -> None:
    tokens = server.app.access.tokens
    path = str(tmp_path / "elsewhere.safetensors")
    assert (await load(server, tokens.performer, "alpha"))["args"] == ["alpha"]
    refused = await load(server, tokens.performer, path)
    assert "needs the admin role" in str(refused["error"])
    assert server.engine.model.name == "alpha"
    assert (await load(server, tokens.admin, path))["args"] == ["elsewhere"]
    assert server.engine.model.name == "elsewhere" and server.engine.model.resolution == 64
    missing = await load(server, tokens.admin, str(tmp_path / "gone.safetensors"))
    assert "no such model file" in str(missing["error"]) and "alpha" in str(missing["error"])
    unknown = await load(server, tokens.performer, "gamma")
    assert "no model named 'gamma'" in str(unknown["error"])
    assert "(or give a path)" in str(unknown["error"])


async def test_osc_takes_a_model_path_from_this_machine_only() -> None:
    batches: queue.Queue[list[Command]] = queue.Queue()
    allow = AllowList(["10.77.0.2"])  # another machine allowed to play: a performer
    async with OscController(
        host="127.0.0.1", port=0, submit=lambda b: batches.put_nowait(b) is None, allow=allow
    ) as osc:
        path = encode("/model/load", ["/tmp/x.safetensors"])
        osc.receive(path, ("10.77.0.2", 9000))  # from a performer's tablet: refused
        assert osc.stats.invalid == 1 and batches.empty()
        osc.receive(encode("/model/load", ["alpha"]), ("10.77.0.2", 9000))  # a name is fine
        osc.receive(path, ("127.0.0.1", 9000))  # from this machine: allowed
        names = [batches.get_nowait()[0].args[0] for _ in range(2)]
        assert names == ["alpha", "/tmp/x.safetensors"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(home: Path, state: Path, model: str) -> subprocess.Popen[str]:
    """`ganvj serve --model MODEL` on loopback, with its own home and state folder."""
    config = home / "config.toml"
    config.write_text(f'[server]\nstate_dir = "{state}"\n[osc]\nport = 0\n')
    env = {k: v for k, v in os.environ.items() if k != "GANVJ_MODELS_DIR"}
    env["HOME"] = str(home)
    command = [sys.executable, "-m", "server.cli", "serve", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(free_port()), "--model", model]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def started(process: subprocess.Popen[str]) -> list[str]:
    """The output up to the models-folder line (serve is up then), after which it stops."""
    lines = []
    with process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("models folder:"):
                break
        process.send_signal(signal.SIGINT)
        lines.extend(process.stdout)
        assert process.wait(timeout=60) == 0, "".join(lines)
    return lines


def test_serve_takes_a_model_by_path_then_by_name_and_makes_the_folder(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    film = save_tiny(tmp_path / "film.safetensors", resolution=32, seed=4)
    first = started(serve(home, state, str(film)))  # a path; the first start makes the folder
    assert (state / "models").is_dir() and "serving film (dcgan, 32 px)" in "".join(first)
    assert f"models folder: {state / 'models'} " in "".join(first)
    (state / "models" / "film.safetensors").write_bytes(film.read_bytes())
    film.unlink()
    second = started(serve(home, state, "film"))  # now by name, from the folder
    assert "serving film (dcgan, 32 px)" in "".join(second)
    with serve(home, state, "gamma") as unknown:
        output, _ = unknown.communicate(timeout=120)
    assert unknown.returncode == 2
    assert f"no model named 'gamma' in {state / 'models'} (or give a path)" in output
