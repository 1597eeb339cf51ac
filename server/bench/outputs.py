"""The outputs' rows of `ganvj bench stream`: Janus fan-out, and what NDI and recording cost.

Each figure is the `ganvj serve` subprocess's CPU seconds per wall second,
measured side by side in one run:
- one viewer connected to ganvj directly against 1, 10 and 50 viewers
  watching through a real Janus (Debian's, in the namespace): with Janus,
  ganvj sends one RTP stream whatever the audience, so the figure stays flat;
- no output, NDI out (with a receiver connected, so frames are really sent),
  and recording, at 512 px and 30 fps: the difference is each output's cost.
The viewers and the NDI receiver run in this process, not in the server's.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from server.bench.janus import ADMIN_KEY, janus_missing, running_janus, watch
from server.bench.netns import ADDRESS
from server.bench.peers import connect_viewer
from server.bench.server_process import ServerProcess

NDI_FIRST_SOURCE_PORT = 5961
CONNECT_SECONDS = 120.0  # every viewer connected within this, or the row is skipped


async def measure(server: ServerProcess, seconds: float) -> float:
    """Server CPU seconds per wall second over `seconds`."""
    cpu0, t0 = server.cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    return (server.cpu() - cpu0) / (time.monotonic() - t0)


async def janus_rows(
    model: Path, counts: Sequence[int], seconds: float, fps: float, size: int
) -> list[tuple[str, float, float]]:
    """(label, CPU s/s, min viewer fps): one direct viewer, then `counts` through Janus."""
    rows: list[tuple[str, float, float]] = []
    server = ServerProcess(model=model, fps=fps, shared_encoder=True, size=size)
    try:
        viewer = await connect_viewer(f"ws://{ADDRESS}:{server.port}/ws", keep=2, pixels=False)
        try:
            await viewer.wait_frames(5, 60)
            await asyncio.sleep(1.0)
            count0 = viewer.count
            cpu = await measure(server, seconds)
            rows.append(("1 viewer, direct", cpu, (viewer.count - count0) / seconds))
        finally:
            await viewer.close()
    finally:
        server.close()
    why = janus_missing()
    if why is not None:
        print(f"(Janus rows skipped: {why})")
        return rows
    async with running_janus(ADDRESS) as janus:
        tables: dict[str, dict[str, object]] = {
            "output": {"janus": janus.url, "janus_admin_key": ADMIN_KEY}
        }
        server = ServerProcess(model=model, fps=fps, shared_encoder=True, size=size, tables=tables)
        try:
            mountpoint = int(server.status()["outputs"]["janus"]["mountpoint"])  # type: ignore[index]
            viewers: list[Any] = []
            try:
                for count in counts:
                    deadline = time.monotonic() + CONNECT_SECONDS
                    while len(viewers) < count and time.monotonic() < deadline:
                        viewers.append(await watch(janus.url, mountpoint, keep=1, pixels=False))
                    if len(viewers) < count:
                        print(f"(only {len(viewers)} of {count} Janus viewers connected in time)")
                        break
                    await asyncio.gather(*(v.wait_frames(v.count + 5, 60) for v in viewers))
                    await asyncio.sleep(1.0)
                    counts0 = [v.count for v in viewers]
                    cpu = await measure(server, seconds)
                    fps_min = min(
                        (v.count - c) / seconds for v, c in zip(viewers, counts0, strict=True)
                    )
                    rows.append((f"{count} viewers via Janus", cpu, fps_min))
            finally:
                for viewer in viewers:
                    await viewer.close()
        finally:
            server.close()
    return rows


async def send_command(port: int, address: str, *args: object) -> None:
    """One control message over the server's /ws."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://{ADDRESS}:{port}/ws") as ws,
    ):
        await ws.send_str(json.dumps({"address": address, "args": list(args)}))
        await asyncio.sleep(0.5)


async def output_rows(
    model: Path, seconds: float, fps: float, size: int
) -> list[tuple[str, float, str]]:
    """(label, CPU s/s, note): no output, NDI out with a receiver, recording."""
    rows: list[tuple[str, float, str]] = []

    async def run_one(
        label: str,
        tables: dict[str, dict[str, object]],
        start: Callable[[ServerProcess], Awaitable[str]] | None = None,
    ) -> None:
        server = ServerProcess(model=model, fps=fps, shared_encoder=True, size=size, tables=tables)
        try:
            note = await start(server) if start is not None else ""
            await asyncio.sleep(1.0)
            cpu = await measure(server, seconds)
            status: dict[str, Any] = dict(server.status())
            outputs: dict[str, Any] = status.get("outputs") or {}
            if label == "recording":
                recorded = outputs.get("recording", {})
                note = note or f"{recorded.get('frames', 0)} frames written"
            elif "NDI" in label:
                sent = outputs.get("ndi", {})
                note = note or f"{sent.get('frames', 0)} frames sent, {ndi_frames()} received"
            rows.append((label, cpu, note))
        finally:
            server.close()

    ndi = ndi_receiver()

    def ndi_frames() -> int:
        return ndi.frames if ndi is not None else 0

    await run_one("no output", {})
    if ndi is None:
        rows.append(("NDI out", float("nan"), "skipped: the ndi-python wheel is not installed"))
    else:
        try:
            await run_one("NDI out (one receiver)", {"output": {"ndi": True}}, ndi.connect)
        finally:
            ndi.close()

    async def record(server: ServerProcess) -> str:
        await send_command(server.port, "/record/start", "bench")
        return ""

    with tempfile.TemporaryDirectory(prefix="ganvj-bench-") as folder:
        # The bench sends /record/start from the namespace's address: trust it.
        tables: dict[str, dict[str, object]] = {
            "server": {"state_dir": folder, "trusted": [ADDRESS]}
        }
        await run_one("recording", tables, record)
    return rows


class NdiReceiver:
    """An NDI receiver in this process, so the server's sender really sends."""

    def __init__(self, ndi: Any) -> None:
        self.ndi = ndi
        self.receiver: Any = None
        self.frames = 0
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    async def connect(self, server: ServerProcess) -> str:
        ndi = self.ndi
        settings = ndi.FindCreate()
        settings.extra_ips = "127.0.0.1"
        finder = ndi.find_create_v2(settings)
        source = None
        deadline = time.monotonic() + 15
        while source is None and time.monotonic() < deadline:
            await asyncio.to_thread(ndi.find_wait_for_sources, finder, 500)
            found = ndi.find_get_current_sources(finder)
            source = next((s for s in found if "(ganvj)" in s.ndi_name), None)
        if source is None:
            # No mDNS responder in the namespace: connect to the sender's first
            # source port directly (5961 on a machine with one NDI sender).
            source = ndi.Source()
            source.url_address = f"127.0.0.1:{NDI_FIRST_SOURCE_PORT}"
        options = ndi.RecvCreateV3()
        options.color_format = ndi.RECV_COLOR_FORMAT_UYVY_BGRA  # the cheapest for this side
        self.receiver = ndi.recv_create_v3(options)
        ndi.recv_connect(self.receiver, source)
        ndi.find_destroy(finder)
        self._task = asyncio.create_task(asyncio.to_thread(self._pump))
        return ""

    def _pump(self) -> None:
        ndi = self.ndi
        while not self._stop:
            kind, video, _, _ = ndi.recv_capture_v2(self.receiver, 200)
            if kind == ndi.FRAME_TYPE_VIDEO:
                self.frames += 1
                ndi.recv_free_video_v2(self.receiver, video)

    def close(self) -> None:
        self._stop = True
        if self.receiver is not None:
            time.sleep(0.3)  # let the pump's capture return
            self.ndi.recv_destroy(self.receiver)


def ndi_receiver() -> NdiReceiver | None:
    """A receiver, or None without the ndi-python wheel."""
    from server.outputs.ndi import load

    ndi, _ = load()
    return None if ndi is None else NdiReceiver(ndi)
