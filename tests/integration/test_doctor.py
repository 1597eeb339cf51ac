"""`ganvj doctor`: every row present on this machine, as a subprocess and on /api/doctor."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import aiohttp

from server.config import Config
from server.doctor import offline_row
from server.lifecycle import Running

ROWS = [
    "device",
    "fast path",
    "frame rate",
    "encoder vp8",
    "encoder h264",
    "encoder nvenc",
    "HTTP port",
    "OSC port",
    "LAN addresses",
    "UDP (ICE)",
    "NDI",
    "Ableton Link",
    "MIDI",
    "audio input",
    "display",
    "TLS",
    "tokens",
    "state dir",
    "disk",
    "offline",
]


def test_doctor_json_has_every_row_and_passes_udp_here(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[server]\n"
        f'state_dir = "{tmp_path / "state"}"\n'
        "port = 0\n"
        "[osc]\nport = 0\n"
        '[render]\nsize = 64\ndevice = "cpu"\n'
        '[audio]\ndevice = "no-such-sound-card"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "doctor", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    data = json.loads(done.stdout)
    rows = {row["name"]: row for row in data["rows"]}
    assert list(rows) == ROWS, done.stderr
    assert all(set(r) == {"name", "status", "detail", "fix"} for r in data["rows"])
    assert rows["device"]["detail"].startswith("cpu:")
    assert rows["UDP (ICE)"]["status"] == "ok", rows["UDP (ICE)"]
    assert rows["HTTP port"]["status"] == "ok" and rows["state dir"]["status"] == "ok"
    audio = rows["audio input"]
    assert audio["status"] != "ok"
    assert "no-such-sound-card" in audio["detail"] or "no audio" in audio["detail"]
    assert audio["fix"]
    assert "fp32" in rows["fast path"]["detail"]
    assert done.returncode == (0 if data["ok"] else 1)


async def test_api_doctor_answers_performers_with_the_live_figures(
    live_server: Running,
) -> None:
    base = f"http://{live_server.app.config.server.host}:{live_server.port}"
    timeout = aiohttp.ClientTimeout(60)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/doctor", timeout=timeout) as reply,
    ):
        assert reply.status == 200
        data = await reply.json()
    rows = {row["name"]: row for row in data["rows"]}
    assert list(rows) == ROWS
    assert "this server listens there" in rows["HTTP port"]["detail"]
    assert "rendering now" in rows["frame rate"]["detail"]
    assert "fp32" in rows["fast path"]["detail"]


def test_the_offline_row_names_what_needs_the_internet(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    online = Config().with_overrides({"server.ice_servers": ["stun:stun.example.org:3478"]})
    row = offline_row(online, repo=tmp_path)
    assert row.status == "warn" and "stun.example.org" in row.detail and "PyPI" in row.detail
    digest = hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest()
    (tmp_path / ".venv" / ".ganvj-install").write_text(f"{digest} test\n")
    assert offline_row(Config(), repo=tmp_path).status == "ok"
