"""The supervisor's own start: main's bind messages, and no torch in its process."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "state.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    # -X importtime lists every module the supervisor's process imports, on stderr.
    command = [sys.executable, "-X", "importtime", "-m", "server.cli", "serve"]
    return subprocess.run(
        [*command, "--config", str(config), *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def imported(stderr: str) -> set[str]:
    return {
        line.split("|")[-1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_busy_port_stops_the_supervisor_before_any_torch(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = serve(tmp_path, "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "--port" in done.stderr
    modules = imported(done.stderr)
    assert "server.supervisor" in modules
    assert "torch" not in modules and "server.engine" not in modules


def test_an_address_not_of_this_machine_names_the_flag(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
    done = serve(tmp_path, "--host", "192.0.2.7", "--port", "8123")
    assert done.returncode == 2
    assert "cannot listen on 192.0.2.7:8123" in done.stderr
    assert "pass --host with an address of this machine" in done.stderr
    assert "Traceback" not in done.stderr
