"""OSC as real controllers send it: liblo's oscsend/oscdump and python-osc against the real server.

Each type tag lands as docs/osc.md says; a refused message changes no state and
is answered with /error; answers reach a sender's subscribed receive port;
senders outside osc.allow are refused and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from controllers.osc_packet import encode
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model

# Values the tests read back with "?" to tell whether anything changed.
WATCHED = (
    "/latent/wander",
    "/latent/speed",
    "/latent/seed",
    "/sequence/play",
    "/sequence/length",
    "/keyframe/interp",
    "/tempo/bpm",
)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: scripts/install --test installs Debian's liblo-tools")
    return path


class Controller:
    """A python-osc style controller: one UDP socket that sends and hears its answers."""

    def __init__(self, server: tuple[str, int], bind: str = "127.0.0.1") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.sock.setblocking(False)

    def send(self, address: str, *args: object) -> None:
        self.sock.sendto(encode(address, args), self.server)

    def send_typed(self, address: str, *typed: tuple[str | list[str], object]) -> None:
        builder = OscMessageBuilder(address)
        for tag, value in typed:
            builder.add_arg(value, tag)  # type: ignore[arg-type]
        self.sock.sendto(builder.build().dgram, self.server)

    async def receive(self, timeout: float = 3.0) -> OscMessage:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        return OscMessage(data)

    async def drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            while True:
                await self.receive(timeout=0.2)

    async def state(self) -> dict[str, list[object]]:
        """Every watched value, asked with "?" and read from the answers."""
        await self.drain()
        for address in WATCHED:
            self.send(address, "?")
        out: dict[str, list[object]] = {}
        while len(out) < len(WATCHED):
            message = await self.receive()
            if message.address in WATCHED:
                out[message.address] = list(message.params)
        return out

    async def error(self) -> list[object]:
        """The next /error reply's arguments."""
        while True:
            message = await self.receive()
            if message.address == "/error":
                return list(message.params)

    def close(self) -> None:
        self.sock.close()


async def oscsend(port: int, address: str, types: str = "", *values: str) -> None:
    process = await asyncio.create_subprocess_exec(
        need("oscsend"), "127.0.0.1", str(port), address, types, *values
    )
    assert await asyncio.wait_for(process.wait(), timeout=10) == 0


@pytest.fixture
async def osc_server() -> AsyncIterator[Running]:
    config = server_config("127.0.0.1").with_overrides({"osc.host": "127.0.0.1"})
    async with running(config, model=tiny_model()) as run:
        yield run


@pytest.fixture
async def controller(osc_server: Running) -> AsyncIterator[Controller]:
    assert osc_server.osc is not None
    client = Controller(osc_server.osc.address)
    try:
        yield client
    finally:
        client.close()


async def test_each_tag_from_oscsend_and_python_osc_lands_as_documented(
    osc_server: Running, controller: Controller
) -> None:
    assert osc_server.osc is not None
    port = osc_server.osc.address[1]
    # T/F: toggles, from liblo and from python-osc.
    await oscsend(port, "/latent/wander", "F")
    assert (await controller.state())["/latent/wander"] == [0]
    await oscsend(port, "/latent/wander", "T")
    assert (await controller.state())["/latent/wander"] == [1]
    controller.send("/latent/wander", False)
    assert (await controller.state())["/latent/wander"] == [0]
    await oscsend(port, "/sequence/play", "T")
    assert (await controller.state())["/sequence/play"] == [1]
    # I and N: triggers for commands without arguments.
    await oscsend(port, "/sequence/stop", "I")
    assert (await controller.state())["/sequence/play"] == [0]
    await oscsend(port, "/sequence/play", "N")
    assert (await controller.state())["/sequence/play"] == [1]
    controller.send("/sequence/stop", None)  # python-osc sends None as N
    assert (await controller.state())["/sequence/play"] == [0]
    # d and h are coerced; S is a string.
    await oscsend(port, "/latent/speed", "d", "2.5")
    assert (await controller.state())["/latent/speed"] == [2.5]
    controller.send_typed("/latent/speed", ("d", 0.75))
    assert (await controller.state())["/latent/speed"] == [0.75]
    await oscsend(port, "/sequence/length", "h", "5")
    assert (await controller.state())["/sequence/length"] == [5]
    controller.send_typed("/latent/seed", ("h", 12345))
    await oscsend(port, "/keyframe/interp", "S", "lerp")
    state = await controller.state()
    assert state["/latent/seed"] == [12345] and state["/keyframe/interp"] == ["lerp"]
    # i and f, as ever.
    await oscsend(port, "/tempo/bpm", "f", "133")
    await oscsend(port, "/sequence/length", "i", "7")
    state = await controller.state()
    assert state["/tempo/bpm"] == [133.0] and state["/sequence/length"] == [7]


async def test_refused_messages_change_nothing_and_get_an_error(
    osc_server: Running, controller: Controller
) -> None:
    assert osc_server.osc is not None
    port = osc_server.osc.address[1]
    before = await controller.state()
    from_oscsend: list[tuple[str, str, tuple[str, ...]]] = [
        ("/latent/speed", "cf", ("a", "3.0")),  # python-osc read this as 1.36e-43
        ("/latent/speed", "c", ("a",)),
        ("/latent/speed", "s", ("3.0",)),  # a number as a string
        ("/latent/speed", "m", ("00904000",)),
        ("/latent/wander", "I", ()),  # a trigger where a value is needed
        ("/latent/speed", "f", ("99",)),  # out of range
        ("/no/such/address", "i", ("1",)),
    ]
    for address, types, values in from_oscsend:
        await oscsend(port, address, types, *values)
    await asyncio.sleep(1.1)  # past the /error rate limit's window for this host
    from_python_osc: list[tuple[str, tuple[tuple[str | list[str], object], ...]]] = [
        ("/latent/speed", (("r", 0x11223344),)),
        ("/latent/speed", (("b", b"\x01\x02"),)),
        ("/latent/xy", ((["f", "f"], [0.1, 0.2]),)),  # an array
        ("/latent/speed", (("s", "0.5"),)),
        ("/latent/wander", (("N", None),)),
    ]
    for address, typed in from_python_osc:
        controller.send_typed(address, *typed)
        address_back, reason = await controller.error()
        assert address_back == address and reason, reason
    assert await controller.state() == before
    stats = osc_server.app.status()["osc"]
    assert stats["invalid"] == len(from_oscsend) + len(from_python_osc)
    assert stats["error_replies"] == len(from_oscsend) + len(from_python_osc)
    # A flood of bad messages gets a few replies a second, not one each.
    await asyncio.sleep(1.1)
    for _ in range(50):
        controller.send("/latent/speed", "fast")
    await asyncio.sleep(0.5)
    stats = osc_server.app.status()["osc"]
    assert stats["error_replies_suppressed"] >= 30
    assert await controller.state() == before


async def test_error_reply_names_the_address_and_the_reason(controller: Controller) -> None:
    controller.send("/latent/speed", "0.5")
    assert await controller.error() == [
        "/latent/speed",
        "/latent/speed speed: expected a number, got the string '0.5': "
        "send it as an OSC float (f) or int (i), not a string",
    ]


@contextlib.contextmanager
def oscdump() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """liblo's oscdump on a free port, line-buffered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [need("oscdump"), "-L", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


async def read_until(process: subprocess.Popen[str], prefix: str, timeout: float = 5.0) -> str:
    """The first message oscdump prints that starts with `prefix` (its time tag dropped)."""
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        line = await asyncio.wait_for(
            loop.run_in_executor(None, process.stdout.readline), deadline - loop.time()
        )
        message = line.strip().partition(" ")[2]
        if message.startswith(prefix):
            return message
    raise AssertionError(f"oscdump printed no {prefix!r}")


async def test_a_query_from_oscsend_is_answered_on_the_subscribed_oscdump_port(
    osc_server: Running,
) -> None:
    assert osc_server.osc is not None
    port = osc_server.osc.address[1]
    with oscdump() as (dump_port, dump):
        await asyncio.sleep(0.3)  # oscdump binds its port
        await oscsend(port, "/feedback/subscribe", "i", str(dump_port))
        await oscsend(port, "/latent/speed", "f", "1.5")
        await read_until(dump, "/latent/speed f 1.5")
        # oscsend's own source port is gone by the time the answer leaves: the
        # answer must also reach this host's subscribed port.
        await oscsend(port, "/keyframe/interp", "s", "?")
        assert await read_until(dump, "/keyframe/interp") == '/keyframe/interp s "slerp"'
        await oscsend(port, "/latent/speed", "s", "fast")
        line = await read_until(dump, "/error")
        assert "/latent/speed" in line and "expected a number" in line


async def test_osc_token_is_the_first_argument(tmp_path: object) -> None:
    config = server_config("127.0.0.1").with_overrides({"osc.token": "s3cret"})
    async with running(config, model=tiny_model()) as run:
        assert run.osc is not None
        client = Controller(run.osc.address)
        try:
            client.send("/latent/speed", 2.0)
            address, reason = await client.error()
            assert address == "/latent/speed" and "token" in reason
            client.send("/latent/speed", "wrong", 2.0)
            await client.error()
            client.send("/latent/speed", "s3cret", 3.0)
            client.send("/latent/speed", "s3cret", "?")
            answer = await client.receive()
            assert answer.address == "/latent/speed" and answer.params == [3.0]
            assert run.app.status()["osc"]["refused_token"] == 2
        finally:
            client.close()


@contextlib.contextmanager
def extra_address(address: str) -> Iterator[None]:
    """A second address on the namespace's veth: another machine's source address."""
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "v1"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "v1"], check=True)


@pytest.mark.webrtc
@pytest.mark.parametrize("allow", [(), ("10.77.0.1",)], ids=["default", "configured"])
async def test_osc_from_a_sender_outside_the_allow_list_is_refused_and_counted(
    webrtc_host: str, allow: tuple[str, ...]
) -> None:
    # Default: loopback and the veth's 10.77.0.0/24 are ours, 10.99.0.5 is not.
    stranger = "10.99.0.5" if not allow else "10.77.0.9"
    config = server_config(webrtc_host).with_overrides({"osc.host": "0.0.0.0", "osc.allow": allow})
    async with running(config, model=tiny_model()) as run:
        assert run.osc is not None
        server = (webrtc_host, run.osc.address[1])
        with extra_address(stranger):
            friend = Controller(server, bind=webrtc_host)
            outsider = Controller(server, bind=stranger)
            try:
                before = await friend.state()
                for _ in range(3):
                    outsider.send("/latent/speed", 7.0)
                    outsider.send("/latent/speed", "?")
                with pytest.raises(TimeoutError):
                    await outsider.receive(timeout=1.0)  # no answer, no /error
                assert await friend.state() == before
                stats = run.app.status()["osc"]
                assert stats["refused_packets"] == 6
                assert stats["refused_senders"] == 1
                friend.send("/latent/speed", 7.0)
                assert (await friend.state())["/latent/speed"] == [7.0]
            finally:
                friend.close()
                outsider.close()
