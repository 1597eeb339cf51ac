"""The OSC controller on real UDP sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from controllers.osc import OscController, OscFeedback, OscOrigin
from controllers.osc_packet import encode
from server.commands import Change, Command, CommandError
from server.play import PlayState


class Inbox:
    """A submit() that records batches, optionally bounded like the engine's queue."""

    def __init__(self, maxsize: int = 0) -> None:
        self.batches: queue.Queue[list[Command]] = queue.Queue(maxsize=maxsize)

    def __call__(self, batch: list[Command]) -> bool:
        try:
            self.batches.put_nowait(batch)
        except queue.Full:
            return False
        return True

    async def next(self, timeout: float = 2.0) -> list[Command]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.batches.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.005)
        raise AssertionError("no batch arrived")


_OPEN: list[SimpleUDPClient] = []


def opened(client: SimpleUDPClient) -> SimpleUDPClient:
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop()._sock.close()


@contextlib.contextmanager
def osc_client(address: tuple[str, int]) -> Iterator[SimpleUDPClient]:
    client = SimpleUDPClient(*address)
    try:
        yield client
    finally:
        client._sock.close()


def receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def receive(sock: socket.socket, timeout: float = 2.0) -> OscMessage:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
    return OscMessage(data)


async def test_message_becomes_a_command_and_bundle_one_batch():
    inbox = Inbox()
    async with OscController(host="127.0.0.1", port=0, submit=inbox) as osc:
        client = opened(SimpleUDPClient(*osc.address))
        client.send_message("/keyframe/3/jump", 0.0)
        (command,) = await inbox.next()
        assert command.address == "/keyframe/3/jump" and command.args == (0.0,)
        assert isinstance(command.origin, OscOrigin)

        bundle = OscBundleBuilder(IMMEDIATELY)
        for address, value in [("/keyframe/interp", "lerp"), ("/keyframe/5/jump", 1.0)]:
            builder = OscMessageBuilder(address)
            builder.add_arg(value)
            bundle.add_content(builder.build())
        client.send(bundle.build())
        batch = await inbox.next()
        assert [c.address for c in batch] == ["/keyframe/interp", "/keyframe/5/jump"]
        assert osc.stats.commands == 3


async def test_bad_packets_and_bad_messages_are_counted_and_change_nothing():
    inbox = Inbox()
    async with OscController(host="127.0.0.1", port=0, submit=inbox) as osc:
        client = opened(SimpleUDPClient(*osc.address))
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.sendto(b"\x00garbage\xff", osc.address)
        client.send_message("/latent/xy", [float("nan"), 0.5])
        client.send_message("/no/such/address", 1)
        bundle = OscBundleBuilder(IMMEDIATELY)
        bundle.add_content(encode_message("/keyframe/interp", "lerp"))
        bundle.add_content(encode_message("/keyframe/ease", "bouncy"))  # bad: refuses all
        client.send(bundle.build())
        client.send_message("/latent/wander", 1)  # a good one, to know the rest arrived
        await inbox.next()
        raw.close()
        assert osc.stats.parse_errors == 1
        assert osc.stats.invalid == 3
        assert inbox.batches.empty()


def encode_message(address: str, value: object):
    builder = OscMessageBuilder(address)
    builder.add_arg(value)
    return builder.build()


async def test_query_answer_goes_back_to_the_sender():
    inbox = Inbox()
    state = PlayState(z_dim=8)
    async with OscController(host="127.0.0.1", port=0, submit=inbox) as osc:
        sock = receiver()
        sock.sendto(encode("/keyframe/interp", ["?"]), osc.address)
        (command,) = await inbox.next()
        assert command.query
        osc.feedback.send(state.apply(command, 0.0))  # what the engine does
        answer = await receive(sock)
        assert answer.address == "/keyframe/interp" and answer.params == ["slerp"]
        sock.close()


async def test_feedback_arrives_at_a_subscribed_port():
    inbox = Inbox()
    async with OscController(host="127.0.0.1", port=0, submit=inbox) as osc:
        tablet = receiver()  # TouchOSC's receive port
        client = opened(SimpleUDPClient(*osc.address))
        client.send_message("/feedback/subscribe", tablet.getsockname()[1])
        greeting = await inbox.next()  # queries for the current state, for the tablet
        assert greeting and all(c.query for c in greeting)
        assert osc.feedback.targets == [("127.0.0.1", tablet.getsockname()[1])]
        osc.feedback.send([Change("/latent/xy", (0.25, 0.5))])
        message = await receive(tablet)
        assert message.address == "/latent/xy" and message.params == [0.25, 0.5]
        tablet.close()


async def test_configured_target_and_target_bound():
    feedback = OscFeedback(targets=[("127.0.0.1", 9)], max_targets=3, per_host=2)
    assert feedback.subscribe("127.0.0.1", 10) and feedback.subscribe("127.0.0.1", 11)
    # A host's third port replaces its own oldest; the configured target stays.
    assert feedback.subscribe("127.0.0.1", 12)
    assert feedback.targets == [("127.0.0.1", 9), ("127.0.0.1", 11), ("127.0.0.1", 12)]
    assert feedback.subscribe("10.0.0.2", 10)
    # Past the total a new host is refused: it cannot push out anyone else.
    with pytest.raises(CommandError, match="subscriptions already"):
        feedback.subscribe("10.0.0.3", 10)
    assert feedback.targets[0] == ("127.0.0.1", 9)
    feedback.forget("10.0.0.2")
    assert ("10.0.0.2", 10) not in feedback.targets


async def test_ten_thousand_messages_in_a_burst_do_not_crash():
    inbox = Inbox(maxsize=256)  # bounded, as in the engine
    async with OscController(host="127.0.0.1", port=0, submit=inbox) as osc:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        data = encode("/latent/xy", [0.5, 0.5])
        start = time.monotonic()
        for i in range(10_000):
            sock.sendto(data, osc.address)
            if i % 500 == 0:
                await asyncio.sleep(0)  # the controller shares this loop with the sender
        sent = time.monotonic() - start
        sock.close()
        seen = -1
        while osc.stats.packets != seen:  # until the socket buffer is drained
            seen = osc.stats.packets
            await asyncio.sleep(0.2)
        assert sent < 2.0
        stats = osc.stats
        assert stats.commands + stats.dropped + stats.invalid <= 10_000
        assert stats.commands == 256 and stats.dropped > 0
        # Still alive: a later message gets through once the queue has room.
        while not inbox.batches.empty():
            inbox.batches.get_nowait()
        with osc_client(osc.address) as client:
            client.send_message("/latent/wander", 0)
            addresses = set()
            while "/latent/wander" not in addresses:
                addresses.add((await inbox.next())[0].address)


async def test_within_two_frames_the_latent_equals_keyframe_3():
    """A toy render thread shaped like the engine: drain batches, apply, then latent()."""
    commands: queue.Queue[list[Command]] = queue.Queue(maxsize=64)
    state = PlayState(z_dim=32)
    frames: list[tuple[int, torch.Tensor]] = []
    received = threading.Event()
    stop = threading.Event()

    def submit(batch: list[Command]) -> bool:
        try:
            commands.put_nowait(batch)
        except queue.Full:
            return False
        return True

    def render() -> None:
        frame, last = 0, time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            while True:
                try:
                    batch = commands.get_nowait()
                except queue.Empty:
                    break
                for command in batch:
                    state.apply(command, now)
                received.set()
                frames.clear()
            frames.append((frame, state.latent(now, now - last)))
            frame, last = frame + 1, now
            time.sleep(1 / 60)

    thread = threading.Thread(target=render)
    thread.start()
    try:
        async with OscController(host="127.0.0.1", port=0, submit=submit) as osc:
            with osc_client(osc.address) as client:
                client.send_message("/keyframe/3/jump", 0)
            for _ in range(200):
                if received.is_set() and len(frames) >= 2:
                    break
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert torch.equal(frames[0][1], state.bank[2])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=200))
def test_random_bytes_change_nothing(data):
    inbox = Inbox()
    osc = OscController(host="127.0.0.1", port=0, submit=inbox)
    osc.receive(data, ("127.0.0.1", 9))
    # Random bytes are almost never a valid command; if one is, it was validated.
    while not inbox.batches.empty():
        for command in inbox.batches.get_nowait():
            assert command.name
