"""Who may play over OSC, tried as the security pass did: a stranger on the venue's network.

The server listens on the namespace address 10.77.0.1 and trusts nobody there.
The stranger is 10.77.0.2, in a network namespace of its own joined to ours by
the veth pair: were it an address of this namespace, it would be one of the
server's own addresses, which may always play. Its sockets are made inside
that namespace (by a thread that enters it) and then used from here.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from controllers.osc_packet import OscMessage, encode, parse_packet
from controllers.osc_pairing import PAIRINGS_FILE
from server.bench.peers import Viewer, connect_viewer
from server.config import Config
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model

pytestmark = pytest.mark.webrtc

STRANGER = "10.77.0.2"
CLONE_NEWNET = 0x40000000


class Stranger:
    """A host on the same network that is not this machine: sockets made in its namespace."""

    def __init__(self, name: str) -> None:
        self.netns = Path("/run/netns") / name
        self.sockets: list[socket.socket] = []  # closed when the stranger leaves

    def _inside(self, tcp_to: tuple[str, int] | None = None) -> socket.socket:
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def run() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(self.netns, os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:  # this thread only
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                kind = socket.SOCK_STREAM if tcp_to else socket.SOCK_DGRAM
                sock = socket.socket(socket.AF_INET, kind)
                sock.bind((STRANGER, 0))
                if tcp_to is not None:
                    sock.settimeout(5)
                    sock.connect(tcp_to)
                sock.setblocking(False)
                made.append(sock)
            except BaseException as exc:  # noqa: BLE001 - raised again below
                failed.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        self.sockets.append(made[0])
        return made[0]

    def udp(self) -> socket.socket:
        """A UDP socket bound to the stranger's address (non-blocking)."""
        return self._inside()

    async def websocket(self, run: Running, token: str | None = None) -> ClientConnection:
        """/ws opened from the stranger's address, with a token or without."""
        host = run.app.config.server.host
        sock = await asyncio.to_thread(self._inside, (host, run.port))
        url = f"ws://{host}:{run.port}/ws" + (f"?t={token}" if token else "")
        return await connect(url, sock=sock)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def stranger(webrtc_host: str) -> Iterator[Stranger]:
    """10.77.0.2 on the far end of the veth pair, in a namespace of its own; undone after."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the stranger's namespace needs root and `ip`: run through scripts/test")
    name = f"ganvj-stranger-{os.getpid()}"
    _ip("netns", "add", name)
    try:
        _ip("link", "set", "v1", "netns", name)
        _ip("-n", name, "addr", "add", f"{STRANGER}/24", "dev", "v1")
        _ip("-n", name, "link", "set", "v1", "up")
        host = Stranger(name)
        yield host
        for sock in host.sockets:
            sock.close()
    finally:
        # v1 comes home (its address goes with the namespace), up as scripts/test left it.
        subprocess.run(
            ["ip", "-n", name, "link", "set", "v1", "netns", str(os.getpid())],
            capture_output=True,
            timeout=10,
        )
        subprocess.run(["ip", "link", "set", "v1", "up"], capture_output=True, timeout=10)
        _ip("netns", "del", name)


def roles_config(host: str, **overrides: object) -> Config:
    """Nobody trusted on the namespace address; OSC on every address of this machine."""
    return server_config(host).with_overrides(
        {"server.trusted": [], "osc.host": "0.0.0.0", **overrides}
    )


@pytest.fixture
def tablet() -> Iterator[socket.socket]:
    """The configured feedback target (osc.feedback), on loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
async def server(webrtc_host: str, tablet: socket.socket) -> AsyncIterator[Running]:
    config = roles_config(webrtc_host, **{"osc.feedback": [f"127.0.0.1:{tablet.getsockname()[1]}"]})
    async with running(config, model=tiny_model()) as run:
        yield run


def osc_port(run: Running) -> int:
    assert run.osc is not None
    return run.osc.address[1]


def send(sock: socket.socket, run: Running, address: str, *args: object) -> None:
    """One OSC message to the server's address on the namespace (the stranger's way in)."""
    sock.sendto(encode(address, list(args)), (run.app.config.server.host, osc_port(run)))


async def receive(sock: socket.socket, address: str, timeout: float = 5.0) -> OscMessage:
    """The next message to `sock` with this address (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {address} arrived"
        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), remaining)
        for message in parse_packet(data):
            if message.address == address:
                return message


async def ask(run: Running, address: str) -> tuple[object, ...]:
    """Query an address from loopback (this machine may always play)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.sendto(encode(address, ["?"]), ("127.0.0.1", osc_port(run)))
        return (await receive(sock, address)).args


def local(run: Running, address: str, *args: object) -> None:
    """Send a command from loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(encode(address, list(args)), ("127.0.0.1", osc_port(run)))


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


async def becomes(run: Running, address: str, value: object) -> None:
    """Wait until a query from loopback answers `value` first."""
    deadline = time.monotonic() + 5.0
    while (now := await ask(run, address))[0] != value:
        assert time.monotonic() < deadline, f"{address} is {now}, never {value}"
        await asyncio.sleep(0.02)


def nothing_for(sock: socket.socket) -> bool:
    try:
        sock.recv(65536)
    except BlockingIOError:
        return True
    return False


def drain(sock: socket.socket) -> None:
    while not nothing_for(sock):
        pass


async def test_a_strangers_osc_is_refused_and_changes_nothing(
    server: Running, stranger: Stranger, tablet: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    run = server
    assert run.osc is not None
    source_before = await ask(run, "/react/source")
    sock = stranger.udp()
    caplog.set_level(logging.WARNING, logger="controllers.osc")
    send(sock, run, "/output/blackout", 1)
    send(sock, run, "/react/source", "v4l2:/dev/video0")
    send(sock, run, "/record/start", "pwned")
    for port in range(40000, 40040):  # the flood that evicted the configured tablet
        send(sock, run, "/feedback/subscribe", port)
    await until(lambda: run.osc.stats.refused_packets >= 43, "43 refused packets")
    assert (await ask(run, "/output/blackout"))[0] == 0
    assert await ask(run, "/react/source") == source_before
    recordings = Path(run.app.config.server.state_dir) / "recordings"
    assert not recordings.exists() or not any(recordings.iterdir())
    assert ("127.0.0.1", tablet.getsockname()[1]) in run.osc.feedback.targets
    assert all(host != STRANGER for host, _ in run.osc.feedback.targets)
    # The configured tablet still follows the show.
    drain(tablet)
    local(run, "/output/dim", 0.5)
    assert (await receive(tablet, "/output/dim")).args == (0.5,)
    # The stranger got nothing back: no greeting, no /error, no answer.
    assert nothing_for(sock)
    sock.close()
    # One log line says how to let it play; the control page lists it with its count.
    told = [r.getMessage() for r in caplog.records if STRANGER in r.getMessage()]
    assert len(told) == 1 and f"/osc/allow {STRANGER}" in told[0]
    assert await ask(run, "/osc/refused") == (STRANGER, 43)


async def test_allow_pairs_a_host_as_a_performer_never_an_admin(
    server: Running, stranger: Stranger
) -> None:
    run = server
    assert run.osc is not None
    # From a performer's websocket (the namespace address is not trusted: the token is needed).
    host = run.app.config.server.host
    token = run.app.access.tokens.performer
    async with connect(f"ws://{host}:{run.port}/ws?t={token}") as ws:
        await ws.send(json.dumps({"address": "/osc/allow", "args": [STRANGER]}))
        await until(lambda: STRANGER in run.osc.allow.pairings, "paired over /ws")
    assert await ask(run, "/osc/paired") == (STRANGER,)
    sock = stranger.udp()
    send(sock, run, "/output/blackout", 1)
    await becomes(run, "/output/blackout", 1)
    # Still a performer: a source by name is an admin's.
    source_before = await ask(run, "/react/source")
    send(sock, run, "/react/source", "v4l2:/dev/video0")
    refusal = await receive(sock, "/error")
    assert refusal.args[0] == "/react/source" and "only an admin" in str(refusal.args[1])
    assert await ask(run, "/react/source") == source_before
    # Unpaired from loopback: refused again, silently.
    local(run, "/osc/deny", STRANGER)
    await until(lambda: STRANGER not in run.osc.allow.pairings, "unpaired")
    drain(sock)
    refused = run.osc.stats.refused_packets
    send(sock, run, "/output/blackout", 0)
    await until(lambda: run.osc.stats.refused_packets > refused, "refused again")
    assert (await ask(run, "/output/blackout"))[0] == 1
    sock.close()


async def test_opening_control_with_the_performer_link_pairs_the_host(
    server: Running, stranger: Stranger
) -> None:
    run = server
    assert run.osc is not None
    viewer = await stranger.websocket(run)  # a viewer's page pairs nothing
    await viewer.send(json.dumps({"type": "ping"}))
    await viewer.recv()
    await viewer.close()
    assert STRANGER not in run.osc.allow.pairings
    performer = await stranger.websocket(run, run.app.access.tokens.performer)
    await until(lambda: STRANGER in run.osc.allow.pairings, "paired by /control's websocket")
    sock = stranger.udp()
    send(sock, run, "/output/blackout", 1)
    await becomes(run, "/output/blackout", 1)
    sock.close()
    await performer.close()


async def test_pairings_survive_a_restart(webrtc_host: str) -> None:
    config = roles_config(webrtc_host)
    async with running(config, model=tiny_model()) as run:
        local(run, "/osc/allow", STRANGER)
        assert run.osc is not None
        await until(lambda: STRANGER in run.osc.allow.pairings, "paired")
    stored = Path(config.server.state_dir) / PAIRINGS_FILE
    assert json.loads(stored.read_text()) == {"hosts": [STRANGER]}
    async with running(config, model=tiny_model()) as run:
        assert await ask(run, "/osc/paired") == (STRANGER,)


def many_arguments() -> bytes:
    """The security pass's packet: 64 KB, one message of 12,900 empty strings."""
    data = encode("/latent/xy", [""] * 12_900)
    assert 60_000 < len(data) < 65_507
    return data


async def frame_rate(viewer: Viewer, seconds: float) -> float:
    """Frames a second the viewer decodes, measured over `seconds` from now."""
    start_count, start = viewer.count, time.monotonic()
    await asyncio.sleep(seconds)
    return (viewer.count - start_count) / (time.monotonic() - start)


def flood(
    sock: socket.socket, address: tuple[str, int], seconds: float, stop: threading.Event
) -> int:
    """100 many-argument packets a second for `seconds` (a thread: the stranger's own machine)."""
    data = many_arguments()
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        try:
            sock.sendto(data, address)
            sent += 1
        except BlockingIOError:
            pass
        time.sleep(0.01)
    return sent


@pytest.mark.timeout(120)
async def test_a_many_argument_flood_leaves_the_viewer_its_frame_rate(
    webrtc_host: str, stranger: Stranger
) -> None:
    async with running(roles_config(webrtc_host), model=tiny_model()) as run:
        assert run.osc is not None
        url = f"ws://{run.app.config.server.host}:{run.port}/ws"
        viewer = await connect_viewer(url, pixels=False)
        try:
            await viewer.wait_frames(10, timeout=20)
            unloaded = await frame_rate(viewer, 3.0)
            assert unloaded > 5
            target = (run.app.config.server.host, osc_port(run))
            for paired in (False, True):
                if paired:
                    local(run, "/osc/allow", STRANGER)
                    await until(lambda: STRANGER in run.osc.allow.pairings, "paired")
                sock = stranger.udp()
                stop = threading.Event()
                sender = asyncio.ensure_future(asyncio.to_thread(flood, sock, target, 4.0, stop))
                try:
                    await asyncio.sleep(0.5)  # the flood under way
                    loaded = await frame_rate(viewer, 3.0)
                finally:
                    stop.set()
                    sent = await sender
                    sock.close()
                assert sent > 100
                assert loaded >= 0.8 * unloaded, (paired, loaded, unloaded)
        finally:
            await viewer.close()
        # Refused unread: a stranger's by its address, the paired host's by the argument cap.
        stats = run.osc.stats
        assert stats.refused_packets > 100 and stats.parse_errors > 100 and stats.commands == 0
