"""`ganvj serve` as a real process: signals, a busy port, bad config and model files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from models.checkpoint import save_checkpoint
from server.bench.peers import connect_viewer
from server.lifecycle import running
from tests.conftest import server_config, tiny_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    model = tiny_model()
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(
        path,
        arch="dcgan",
        config=model.module.config,
        weights=model.module,
        training={"note": "untrained test model"},
    )
    return path


@pytest.fixture
def state_config(tmp_path: Path) -> Path:
    """A config file giving `ganvj serve` a state folder of this test's own (tmp_path/state)."""
    config = tmp_path / "state.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    return config


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str], timeout: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "open http://" in line:
            return line
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.stderr.read()}")  # type: ignore[union-attr]
    raise AssertionError("server did not start")


@pytest.fixture
def server_process(
    model_file: Path, state_config: Path
) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    host = "10.77.0.1"
    port = free_port("127.0.0.1")
    process = start(
        "serve", "--config", str(state_config), "--model", str(model_file),
        "--host", host, "--port", str(port), "--size", "32",
    )  # fmt: skip
    try:
        yield process, port, host
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # reap it and close the pipes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_within_5s(
    server_process: tuple[subprocess.Popen[str], int, str], state_config: Path, sig: signal.Signals
) -> None:
    process, _, _ = server_process
    wait_ready(process)
    # The server keeps its tokens in the test's state folder, not the performer's home.
    assert (state_config.parent / "state" / "tokens.json").is_file()
    started = time.monotonic()
    os.kill(process.pid, sig)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5.0


@pytest.mark.webrtc
async def test_sigterm_with_a_connected_viewer_exits_within_5s(
    server_process: tuple[subprocess.Popen[str], int, str], webrtc_host: str
) -> None:
    process, port, host = server_process
    wait_ready(process)
    viewer = await connect_viewer(f"ws://{host}:{port}/ws")
    try:
        await viewer.wait_frames(5, 20)
        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        while process.poll() is None:
            assert time.monotonic() - started < 5.0
            await asyncio.sleep(0.05)
        assert process.returncode == 0
    finally:
        await viewer.close()


def test_a_busy_port_gives_a_clear_message(model_file: Path, state_config: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = start(
            "serve", "--config", str(state_config), "--model", str(model_file),
            "--host", "127.0.0.1", "--port", str(port),
        )  # fmt: skip
        _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"port {port}" in err and "already in use" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("config_text", "needle"),
    [
        ("[render]\nfps = -1\n", "render.fps = -1.0: expected 1..1000"),
        ("[stream]\ncodec = 'mjpeg'\n", "stream.codec = 'mjpeg'"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_config_fails_at_start(
    tmp_path: Path, model_file: Path, config_text: str, needle: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(config_text)
    process = start("serve", "--config", str(config), "--model", str(model_file))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert needle in err and "Traceback" not in err


def test_a_model_file_that_is_not_a_model_fails_at_start(
    tmp_path: Path, state_config: Path
) -> None:
    fake = tmp_path / "fake.safetensors"
    fake.write_text("import os; os.system('echo pwned')\n")
    process = start(
        "serve", "--config", str(state_config), "--model", str(fake),
        "--host", "127.0.0.1", "--port", str(free_port()),
    )  # fmt: skip
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "fake.safetensors" in err and "Traceback" not in err
    assert "pwned" not in out + err


@pytest.mark.webrtc
def test_serve_prints_a_play_link_and_qr_that_work_from_the_lan(
    model_file: Path, tmp_path: Path, webrtc_host: str
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n[osc]\nport = 0\n')
    port = free_port(webrtc_host)
    play = f"http://{webrtc_host}:{port}/control#t="
    process = start(
        "serve", "--config", str(config), "--model", str(model_file),
        "--host", webrtc_host, "--port", str(port), "--size", "32", "--qr",
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        while not (line := process.stdout.readline()).startswith("ganvj: open"):
            assert line, "serve exited before it listened"
            lines.append(line)
        text = "".join(lines)
        tokens = json.loads((tmp_path / "state" / "tokens.json").read_text())
        assert (tmp_path / "state" / "tokens.json").stat().st_mode & 0o077 == 0
        assert f"ganvj: play     {play}{tokens['performer']}\n" in text
        assert "▀" in text and "scan to play" in text  # the QR code
        assert tokens["admin"] not in text
        url = f"http://{webrtc_host}:{port}/api/role?t={tokens['performer']}"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read()) == {"role": "performer"}
    finally:
        process.kill()
        process.communicate()


async def test_shutdown_refuses_new_connections_while_websockets_close_cleanly() -> None:
    """As uvicorn's shutdown: stop accepting first, then close open websockets with 1001."""
    server = running(server_config("127.0.0.1"), model=tiny_model())
    run = await server.__aenter__()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{run.port}/ws", autoclose=False)
        stopping = asyncio.create_task(server.__aexit__(None, None, None))
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1001
        # The server waits for our close reply (its grace period): shutdown is
        # under way, and the listener is already gone.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", run.port)
        await ws.close()
        await stopping
    assert ws.close_code == 1001 and ws.exception() is None


def _address(hex_address: str) -> tuple[str, int]:
    """A /proc/net row's "ADDR:PORT" (hex, each 32-bit word in host order) as (ip, port)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net prints each 32-bit word of the address in the host's byte order.
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, swapped), int(port, 16)


def bound_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, ip, port) of every TCP socket `pid` listens on and every UDP socket it holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        rows = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            listening = protocol.startswith("udp") or state == "0A"  # 0A: TCP LISTEN
            if inode in inodes and listening:
                found.append((protocol, *_address(local)))
    return found


def test_host_binds_http_and_osc_alike(model_file: Path, state_config: Path) -> None:
    port, osc_port = free_port(), free_port()
    process = start(
        "serve", "--config", str(state_config), "--model", str(model_file),
        "--host", "127.0.0.1", "--port", str(port), "--osc-port", str(osc_port), "--size", "32",
    )  # fmt: skip
    try:
        wait_ready(process)
        found = bound_sockets(process.pid)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert ("tcp", "127.0.0.1", port) in found
    assert ("udp", "127.0.0.1", osc_port) in found
    assert all(ip == "127.0.0.1" for _, ip, _ in found), found


def test_a_second_server_on_the_same_osc_port_names_it(
    model_file: Path, state_config: Path, tmp_path: Path
) -> None:
    osc_port = free_port()
    other_state = tmp_path / "other.toml"
    other_state.write_text(f'[server]\nstate_dir = "{tmp_path / "other"}"\n')
    first = start(
        "serve", "--config", str(state_config), "--model", str(model_file),
        "--host", "127.0.0.1", "--port", str(free_port()), "--osc-port", str(osc_port),
        "--size", "32",
    )  # fmt: skip
    try:
        wait_ready(first)
        second = start(
            "serve", "--config", str(other_state), "--model", str(model_file),
            "--host", "127.0.0.1", "--port", str(free_port()), "--osc-port", str(osc_port),
            "--size", "32",
        )  # fmt: skip
        _, err = second.communicate(timeout=60)
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert second.returncode == 2
    assert f"OSC port {osc_port} on 127.0.0.1 is already in use" in err
    assert "--osc-port" in err
    assert "None" not in err and "Traceback" not in err
