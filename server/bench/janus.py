"""A real Janus for the tests and the stream bench, and aiortc viewers that watch it.

Janus (Debian's `janus` package) runs with a config written to a temporary
folder: only the Streaming plugin and the HTTP transport, ICE on the private
namespace's veth address (Janus skips loopback for ICE), RTP ports from a
fixed range. Viewers speak Janus's HTTP API as janus.js would: attach the
Streaming plugin, `watch` the mountpoint, answer Janus's offer, `start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server.bench.peers import Receiver, collect_frames
from server.outputs.janus import JanusError, JanusSession

JANUS = "/usr/bin/janus"
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
ADMIN_KEY = "ganvj-test"


def janus_missing() -> str | None:
    """None if Debian's janus is installed, else why not."""
    if shutil.which("janus") is None or not (LIB / "plugins/libjanus_streaming.so").is_file():
        return "Debian's janus package is not installed (scripts/install --test adds it)"
    return None


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _others(folder: Path, keep: str) -> str:
    """Every library in `folder` but `keep`, for a config's `disable` list."""
    return ",".join(sorted(p.name for p in folder.glob("*.so") if p.name != keep))


def write_config(folder: Path, *, address: str, port: int) -> Path:
    """janus.jcfg and the plugin and transport configs; returns the main file."""
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{LIB}/plugins"
    transports_folder = "{LIB}/transports"
    events_folder = "{LIB}/events"
    loggers_folder = "{LIB}/loggers"
    debug_level = 3
    log_to_stdout = true
}}
media: {{ rtp_port_range = "30000-30999" }}
nat: {{ ice_enforce_list = "{address}" }}
plugins: {{ disable = "{_others(LIB / "plugins", "libjanus_streaming.so")}" }}
transports: {{ disable = "{_others(LIB / "transports", "libjanus_http.so")}" }}
events: {{ broadcast = false }}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {port}
    ip = "{address}"
    https = false
}}
admin: {{ admin_http = false }}
"""
    )
    (folder / "janus.plugin.streaming.jcfg").write_text(
        f"""general: {{
    admin_key = "{ADMIN_KEY}"
    rtp_port_range = "31000-31999"
}}
"""
    )
    return folder / "janus.jcfg"


@dataclass
class JanusProcess:
    """A running Janus and the URL of its HTTP API."""

    process: subprocess.Popen[bytes]
    url: str
    folder: Path


@contextlib.asynccontextmanager
async def running_janus(address: str) -> AsyncIterator[JanusProcess]:
    """Start Janus on `address` and wait until its HTTP API answers."""
    with tempfile.TemporaryDirectory(prefix="ganvj-janus-") as name:
        folder = Path(name)
        port = free_port(address)
        config = write_config(folder, address=address, port=port)
        log = (folder / "janus.log").open("wb")
        process = subprocess.Popen(
            [JANUS, "-C", str(config), "-F", str(folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{address}:{port}/janus"
        try:
            await _wait_ready(url, process, folder)
            yield JanusProcess(process=process, url=url, folder=folder)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            log.close()


async def _wait_ready(url: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (folder / "janus.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"janus exited with {process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{url}/info") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError("janus did not answer within 20 s")


@dataclass(kw_only=True)
class JanusViewer(Receiver):
    """An aiortc viewer of one Janus mountpoint."""

    janus: JanusSession
    http: aiohttp.ClientSession

    async def close(self) -> None:
        """Hang up."""
        await self._stop()
        await self.janus.close()
        await self.http.close()


async def watch(url: str, mountpoint: int, *, keep: int = 60, pixels: bool = True) -> JanusViewer:
    """Watch a mountpoint: Janus offers, we answer, frames are decoded and kept."""
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    janus = JanusSession(url, http)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = JanusViewer(janus=janus, http=http, pc=pc)
    try:
        await janus.attach()
        await janus.message({"request": "watch", "id": mountpoint})
        event = await janus.event()
        while "jsep" not in event:
            data = event.get("plugindata", {}).get("data", {})
            if "error" in data:
                raise JanusError(f"watch {mountpoint}: {data['error']} ({data.get('error_code')})")
            event = await janus.event()
        offer = event["jsep"]

        collect_frames(viewer, keep=keep, pixels=pixels)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        await janus.message({"request": "start"}, jsep=answer)
    except BaseException:
        await viewer.close()
        raise
    return viewer
