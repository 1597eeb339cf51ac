"""A `ganvj serve` subprocess for the benchmarks, with a config of their own.

Its own module so that stream, outputs, latency and soak share it without
importing one another.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from server.bench.netns import ADDRESS, REPO


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def toml_value(value: object) -> str:
    """A Python value as a TOML value (strings, numbers, booleans, lists of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A free TCP (or UDP) port on the namespace's address."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A `ganvj serve` subprocess with a config of our own (`tables` add or replace keys)."""

    def __init__(
        self,
        *,
        model: Path,
        fps: float,
        shared_encoder: bool,
        size: int | str = 0,
        tables: dict[str, dict[str, object]] | None = None,
        env: dict[str, str] | None = None,
        supervised: bool = False,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        settings: dict[str, dict[str, object]] = {
            # A state folder of its own: a benchmark never writes the performer's tokens or show.
            "server": {
                "host": ADDRESS,
                "port": self.port,
                "max_viewers": 64,
                "state_dir": self._dir.name,
                "admin_token": secrets.token_urlsafe(18),  # status() reads every section
            },
            "render": {"model": str(model), "fps": fps, "size": size, "device": "cpu"},
            "stream": {"shared_encoder": shared_encoder},
            "osc": {"enabled": False},
            # Every client of a bench comes from one address and plays a whole
            # audience: the per-address limits are lifted to the global ones.
            "limits": {
                "ws_connections_per_client": 64,
                "viewers_per_client": 64,
                "offers_per_min_per_client": 6000,
                "offers_per_min": 6000,
            },
        }
        for table, values in (tables or {}).items():
            settings.setdefault(table, {}).update(values)
        self.admin_token = str(settings["server"]["admin_token"])
        self.state_dir = Path(self._dir.name)  # its show, journal and models folder
        config = Path(self._dir.name) / "bench.toml"
        config.write_text(
            "".join(
                f"[{table}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
                for table, values in settings.items()
            )
        )
        self.process = subprocess.Popen(
            # Unsupervised unless asked: the figures are the worker's own (pid, CPU, RSS).
            [sys.executable, "-m", "server.cli", "serve", "--config", str(config)]
            + ([] if supervised else ["--no-supervisor"]),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        line = ""
        while "open http://" not in line:
            line = self.process.stdout.readline()
            if not line:
                self.close()  # never leave a server rendering behind
                raise RuntimeError("the benchmark's server did not start")

    def status(self) -> dict[str, float]:
        url = f"http://{ADDRESS}:{self.port}/api/status"
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            data: dict[str, float] = json.loads(response.read())
        return data

    def cpu(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()  # bounded: a server that will not stop is killed
            self.process.communicate(timeout=10)
        self._dir.cleanup()
