"""`ganvj bench soak`: the show under hostile input, viewer churn, a long run and disk faults.

A real `ganvj serve` subprocess in a private network and mount namespace, a
real aiortc viewer watching it, and sender processes that attack it: OSC
fuzzing, websocket fuzzing, 200 viewers coming and going (some killed in the
middle of the handshake), a steady fader flood for minutes, and the show's
disk filling up or turning read-only. One table: the frame rate the viewer
held against the unloaded rate, the worst gap between its frames, whether
stored state changed only as the valid commands said, the server's file
descriptors, threads and memory, and crashes. Every phase is bounded in count
and time; the server is stopped at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection
from websockets.asyncio.client import ClientConnection, connect

from controllers.osc_packet import encode
from models.catalog import default_model_path
from server.bench.faults import can_mount, fill, set_read_only, tmpfs
from server.bench.netns import ADDRESS, REPO, in_namespace, reexec_in_namespace
from server.bench.peers import Viewer, connect_viewer
from server.bench.server_process import ServerProcess, free_port

RSS_GROWTH_LIMIT_MB = 50.0
# The bench's own tokens: its admin reads /api/show, half the websocket fuzzers are
# performers (garbage from a client that may play), half are nobody (refused at the edge).
PERFORMER_TOKEN = "soak-performer-" + secrets.token_urlsafe(12)
ADMIN_TOKEN = "soak-admin-" + secrets.token_urlsafe(12)


@dataclass
class Row:
    """One line of the table."""

    phase: str
    load: str
    fps_held: float | None = None  # viewer fps during the phase / unloaded fps
    worst_gap_ms: float | None = None
    state: str = ""
    resources: str = ""
    crashes: int = 0


@dataclass(frozen=True)
class Resources:
    """What the server process holds."""

    fds: int
    threads: int
    rss_mb: float

    @classmethod
    def of(cls, pid: int) -> Resources:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return cls(
            fds=len(list(Path(f"/proc/{pid}/fd").iterdir())),
            threads=int(fields["Threads"]),
            rss_mb=int(fields["VmRSS"].split()[0]) / 1024.0,
        )

    def growth(self, before: Resources) -> str:
        return (
            f"fds {before.fds}->{self.fds}, threads {before.threads}->{self.threads}, "
            f"RSS {self.rss_mb - before.rss_mb:+.1f} MB"
        )


class Soak:
    """The server under test, its watching viewer, and the senders."""

    def __init__(self, server: ServerProcess, osc_port: int, state: Path, models: Path) -> None:
        self.server = server
        self.osc_port = osc_port
        self.state = state
        self.models = models
        self.viewer: Viewer | None = None
        self.unloaded_fps = 0.0
        self.crashes = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{ADDRESS}:{self.server.port}/ws"

    def get(self, path: str) -> dict[str, object]:
        url = f"http://{ADDRESS}:{self.server.port}{path}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, object] = json.loads(response.read())
        return data

    def alive(self) -> bool:
        return self.server.process.poll() is None

    def osc(self, address: str, *args: object) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(encode(address, args), (ADDRESS, self.osc_port))

    async def watch(self, seconds: float) -> tuple[float, float]:
        """The viewer's fps and worst gap between frames (ms) over the next `seconds`."""
        viewer = self.viewer
        assert viewer is not None
        count0, started = viewer.count, time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        arrivals = [t for t in viewer.arrival if t >= started]
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        edge = max(arrivals[0] - started, time.monotonic() - arrivals[-1]) if arrivals else elapsed
        worst = max([*gaps, edge]) * 1000.0
        return (viewer.count - count0) / elapsed, worst

    async def during(self, sender: subprocess.Popen[str], limit: float) -> tuple[float, float]:
        """Watch while a sender process runs (at most `limit` seconds); held fps and worst gap."""
        fps_samples: list[float] = []
        worst = 0.0
        deadline = time.monotonic() + limit
        while sender.poll() is None and time.monotonic() < deadline:
            fps, gap = await self.watch(1.0)
            fps_samples.append(fps)
            worst = max(worst, gap)
        if sender.poll() is None:
            sender.kill()
        sender.communicate(timeout=10)
        held = (sum(fps_samples) / len(fps_samples)) if fps_samples else 0.0
        return held / self.unloaded_fps, worst


def sender(*args: object) -> subprocess.Popen[str]:
    """A fuzz/flood sender in a process of its own (it does not share our event loop)."""
    return subprocess.Popen(
        [sys.executable, "-m", "server.bench.fuzz", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def show_changes(before: dict[str, object], after: dict[str, object]) -> set[str]:
    """Paths that differ between two /api/show documents: `model/keyframe N`, `model/setting`."""
    changed: set[str] = set()
    models_before = before.get("models", {})
    models_after = after.get("models", {})
    assert isinstance(models_before, dict) and isinstance(models_after, dict)
    for name in set(models_before) | set(models_after):
        old, new = models_before.get(name, {}), models_after.get(name, {})
        for n, (a, b) in enumerate(
            zip(old.get("keyframes", []), new.get("keyframes", []), strict=False), start=1
        ):
            if any(not math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a, b, strict=True)):
                changed.add(f"{name}/keyframe {n}")
        settings_old, settings_new = old.get("settings", {}), new.get("settings", {})
        for address in set(settings_old) | set(settings_new):
            if settings_old.get(address) != settings_new.get(address):
                changed.add(f"{name}/{address}")
    return changed


def interp_of(show: dict[str, object]) -> str:
    """The playing model's /keyframe/interp setting in a show document."""
    models = show.get("models", {})
    assert isinstance(models, dict)
    for model in models.values():
        value = model.get("settings", {}).get("/keyframe/interp")
        if value:
            return str(value[0])
    return "slerp"


async def valid_then_compare(soak: Soak, before: dict[str, object]) -> str:
    """Send the phase's valid commands; the show must differ by exactly what they change."""
    await asyncio.sleep(1.0)  # what the fuzzers queued is applied
    soak.osc("/keyframe/3/reshuffle")
    soak.osc("/keyframe/interp", "slerp" if interp_of(before) == "lerp" else "lerp")
    expected = {"keyframe 3", "/keyframe/interp"}
    deadline = time.monotonic() + 15.0  # a socket's backlog of fuzz is drained first
    changed: set[str] = set()
    while time.monotonic() < deadline and changed != expected:
        await asyncio.sleep(0.5)
        after = soak.get("/api/show")
        changed = {path.split("/", 1)[1] for path in show_changes(before, after)}
    return "only the valid commands" if changed == expected else f"UNEXPECTED {sorted(changed)}"


async def osc_fuzz(soak: Soak, count: int, rate: float) -> Row:
    before = soak.get("/api/show")
    status0 = soak.get("/api/status")
    started = time.monotonic()
    held, worst = await soak.during(sender("osc", ADDRESS, soak.osc_port, count, rate, 1), 600)
    achieved = count / (time.monotonic() - started)
    state = await valid_then_compare(soak, before)
    osc = soak.get("/api/status").get("osc") or {}
    osc0 = status0.get("osc") or {}
    assert isinstance(osc, dict) and isinstance(osc0, dict)
    refused = {k: int(v) - int(osc0.get(k, 0)) for k, v in osc.items() if isinstance(v, int)}
    return Row(
        "OSC fuzzing",
        f"{count} packets at {achieved:.0f}/s",
        held,
        worst,
        state,
        "counted " + ", ".join(f"{k} {v}" for k, v in refused.items() if v),
    )


async def ws_fuzz(soak: Soak, count: int, connections: int) -> Row:
    before = soak.get("/api/show")
    bad0 = int(str(soak.get("/api/status").get("bad_messages", 0)))
    fuzz = sender("ws", soak.ws_url, count, connections, 2, PERFORMER_TOKEN)
    held, worst = await soak.during(fuzz, 600)
    state = await valid_then_compare(soak, before)
    bad = int(str(soak.get("/api/status").get("bad_messages", 0))) - bad0
    return Row(
        "websocket fuzzing",
        f"{count} messages, {connections} connections",
        held,
        worst,
        state,
        f"{bad} counted as bad",
    )


async def churn_one(soak: Soak, index: int) -> None:
    """One viewer: most connect fully and leave; every fourth dies mid-handshake."""
    if index % 4 == 3:
        async with connect(soak.ws_url) as ws:  # offer, then vanish before the answer
            await offer_and_vanish(ws)
        return
    with contextlib.suppress(TimeoutError, ConnectionError, OSError):
        viewer = await asyncio.wait_for(connect_viewer(soak.ws_url, keep=2, pixels=False), 20)
        try:
            await viewer.wait_frames(1, 10)
        finally:
            await viewer.close()


async def offer_and_vanish(ws: ClientConnection) -> None:
    """Send a real recvonly offer on `ws` and hang up without waiting for the answer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
    await pc.close()


async def churn(soak: Soak, cycles: int, parallel: int = 4) -> Row:
    await asyncio.sleep(2.0)
    before = Resources.of(soak.server.process.pid)
    started = time.monotonic()
    fps_samples: list[float] = []
    worst = 0.0
    for first in range(0, cycles, parallel):
        batch = [churn_one(soak, i) for i in range(first, min(first + parallel, cycles))]
        watched = asyncio.ensure_future(soak.watch(0.5))
        await asyncio.gather(*batch)
        fps, gap = await watched
        fps_samples.append(fps)
        worst = max(worst, gap)
    await asyncio.sleep(5.0)  # closed peers release their sockets and threads
    after = Resources.of(soak.server.process.pid)
    viewers = soak.get("/api/status").get("viewers")
    ok = after.rss_mb - before.rss_mb < RSS_GROWTH_LIMIT_MB
    return Row(
        "viewer churn",
        f"{cycles} viewers in {time.monotonic() - started:.0f} s",
        sum(fps_samples) / len(fps_samples) / soak.unloaded_fps,
        worst,
        f"{viewers} viewer(s) left (the watcher)",
        after.growth(before) + ("" if ok else f" OVER {RSS_GROWTH_LIMIT_MB:g} MB"),
    )


async def long_run(soak: Soak, minutes: float, rate: float) -> Row:
    second = await connect_viewer(soak.ws_url, keep=2, pixels=False)
    try:
        await second.wait_frames(5, 30)
        before = Resources.of(soak.server.process.pid)
        flood = sender("faders", ADDRESS, soak.osc_port, minutes * 60, rate)
        held, worst = await soak.during(flood, minutes * 60 + 30)
        after = Resources.of(soak.server.process.pid)
    finally:
        await second.close()
    return Row(
        "soak",
        f"{minutes:g} min, faders at {rate:g}/s, 2 viewers",
        held,
        worst,
        "",
        after.growth(before),
    )


async def disk_fault(soak: Soak, fault: str) -> Row:
    """Fill the show's tmpfs (or make it read-only), store a keyframe, then heal it."""
    show_path = soak.state / "show.json"
    soak.osc("/keyframe/7/reshuffle")
    await asyncio.sleep(1.0)
    on_disk = show_path.read_text()
    filler = fill(soak.state) if fault == "full" else None
    if filler is None:
        set_read_only(soak.state, True)
    try:
        soak.osc("/keyframe/8/reshuffle")
        await asyncio.sleep(0.5)
        held, worst = await soak.watch(3.0)
        show_status = soak.get("/api/status").get("show") or {}
        assert isinstance(show_status, dict)
        error = str(show_status.get("error") or "NO ERROR REPORTED")
        intact = show_path.read_text() == on_disk
    finally:
        if filler is not None:
            filler.unlink()
        else:
            set_read_only(soak.state, False)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and show_path.read_text() == on_disk:
        await asyncio.sleep(0.2)
    kept = show_path.read_text() != on_disk
    state = (
        f"old file {'intact' if intact else 'DAMAGED'}; "
        f"{'saved after healing' if kept else 'NOT SAVED after healing'}"
    )
    short = error.split(";")[0].split(": ")[-1]
    held /= soak.unloaded_fps
    return Row(f"disk {fault}", "reshuffle a keyframe", held, worst, state, short)


async def model_vanishes(soak: Soak) -> Row:
    """/model/load of a file deleted as it loads: a clear error, the picture plays on."""
    folder = soak.models
    outcomes: list[str] = []
    headers = {"Authorization": f"Bearer {PERFORMER_TOKEN}"}
    async with connect(soak.ws_url, additional_headers=headers) as ws:
        for attempt in range(3):
            name = f"vanishing{attempt}"
            path = folder / f"{name}.safetensors"
            path.write_bytes(default_model_path("unconditional").read_bytes())
            await ws.send(json.dumps({"address": "/model/load", "args": [name]}))
            await asyncio.sleep(0.001 * attempt)
            path.unlink()
            outcome = "NO ANSWER in 30 s"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):  # a loaded machine reads 7 MB slowly
                    while True:
                        message = json.loads(await ws.recv())
                        if message.get("address") == "/model/load":
                            outcome = "error" if message.get("type") == "error" else "loaded"
                            break
            outcomes.append(outcome)
    held, worst = await soak.watch(2.0)
    return Row(
        "model deleted as it loads",
        "3 loads",
        held / soak.unloaded_fps,
        worst,
        ", ".join(outcomes),
    )


def print_table(rows: Sequence[Row], unloaded: float) -> None:
    print(f"unloaded: {unloaded:.1f} fps at the viewer")
    header = (
        f"| {'phase':<26} | {'load':<34} | fps held | worst gap | state | resources | crashes |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        held = f"{r.fps_held:.2f}" if r.fps_held is not None else "-"
        gap = f"{r.worst_gap_ms:.0f} ms" if r.worst_gap_ms is not None else "-"
        print(
            f"| {r.phase:<26} | {r.load:<34} | {held:>8} | {gap:>9} | {r.state} | "
            f"{r.resources} | {r.crashes} |"
        )


async def run(args: argparse.Namespace) -> int:
    why = can_mount()
    with contextlib.ExitStack() as stack:
        if why is None:
            state = stack.enter_context(tmpfs(Path(tempfile.mkdtemp()) / "state", 2048))
        else:
            state = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            print(f"(disk faults skipped: {why})")
        models = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        osc_port = free_port(socket.SOCK_DGRAM)
        server = ServerProcess(
            model=args.model or default_model_path("unconditional"),
            fps=args.fps,
            shared_encoder=True,
            size=args.size,
            tables={
                "server": {
                    "state_dir": str(state),
                    "performer_token": PERFORMER_TOKEN,
                    "admin_token": ADMIN_TOKEN,
                },
                "osc": {"enabled": True, "host": ADDRESS, "port": osc_port},
            },
            env={"GANVJ_MODELS_DIR": str(models)},
        )
        soak = Soak(server, osc_port, state, models)
        rows: list[Row] = []
        try:
            soak.viewer = await connect_viewer(soak.ws_url, keep=4000, pixels=False)
            await soak.viewer.wait_frames(10, 60)
            soak.osc("/latent/wander", 0)  # fuzzed moves then change nothing stored
            soak.unloaded_fps, _ = await soak.watch(args.baseline)
            phases = [
                lambda: osc_fuzz(soak, args.osc_packets, args.osc_rate),
                lambda: ws_fuzz(soak, args.ws_messages, args.ws_connections),
                lambda: churn(soak, args.churn),
                lambda: long_run(soak, args.minutes, args.fader_rate),
            ]
            if why is None:
                phases += [lambda: disk_fault(soak, "full"), lambda: disk_fault(soak, "read-only")]
            phases.append(lambda: model_vanishes(soak))
            for phase in phases:
                try:
                    row = await phase()
                except Exception as exc:  # noqa: BLE001 -- a failed phase is a row, not a lost table
                    row = Row(getattr(phase, "name", "phase"), "", state=f"BENCH ERROR {exc!r}")
                row.crashes = 0 if soak.alive() else 1
                rows.append(row)
                print(f"  done: {row.phase}", flush=True)
                if not soak.alive():
                    break
        finally:
            if soak.viewer is not None:
                await soak.viewer.close()
            server.close()
    print_table(rows, soak.unloaded_fps)
    return 0 if all(r.crashes == 0 for r in rows) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `ganvj bench soak`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ganvj bench soak", description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=256, help="output size (px)")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds unloaded")
    parser.add_argument("--osc-packets", type=int, default=100_000)
    parser.add_argument("--osc-rate", type=float, default=5000.0, help="packets per second")
    parser.add_argument("--ws-messages", type=int, default=10_000)
    parser.add_argument("--ws-connections", type=int, default=20)
    parser.add_argument("--churn", type=int, default=200, help="viewers that come and go")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the soak")
    parser.add_argument("--fader-rate", type=float, default=200.0, help="OSC faders per second")
    parser.add_argument(
        "--quick", action="store_true", help="CI's short version: few packets, 20 churn cycles"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.osc_packets, args.ws_messages, args.churn = 3000, 1000, 20
        args.minutes, args.baseline = 0.25, 3.0
    if not in_namespace():
        limit = 900 + 60 * args.minutes + args.osc_packets / args.osc_rate
        return reexec_in_namespace(argv, module="server.bench.soak", limit_s=limit)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
