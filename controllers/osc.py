"""OSC over UDP on the running asyncio loop: messages to Commands, Changes to subscribers.

Datagrams are parsed with python-osc's packet parser in our own datagram
protocol (not its Dispatcher: that swallows parse errors, and its default
`strict_timing` sleeps on the loop for future-dated bundles). A bundle's
messages are submitted as one batch, so the engine applies them together
between two frames; bundle time tags are not waited for. Nothing here blocks:
the handler validates and hands the batch to `submit`, which must not block
either (the engine's `put_nowait` on a bounded queue).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from server.commands import REGISTRY, Command, CommandError, lookup, parse
from server.play import Change

logger = logging.getLogger(__name__)

# Limits
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # a burst of faders must not overflow the socket
MAX_BUNDLE = 64  # messages in one bundle
MAX_TARGETS = 16  # feedback subscribers
LOG_EVERY_SECONDS = 5.0  # at most one log line per kind of error in this time


@dataclass(frozen=True)
class OscOrigin:
    """An OSC sender, where a query's answer goes."""

    host: str
    port: int


@dataclass
class OscStats:
    """Counters for `/api/status`."""

    packets: int = 0
    commands: int = 0
    parse_errors: int = 0  # not OSC at all
    invalid: int = 0  # OSC, but not a valid command
    dropped: int = 0  # valid, but the engine's queue was full
    feedback_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-ready counters."""
        return dict(self.__dict__)


class RateLimitedLog:
    """Logs the first of a burst of similar warnings, then a count every interval."""

    def __init__(self, interval: float = LOG_EVERY_SECONDS) -> None:
        self._interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        """Log now, or count it for the next line."""
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (and %d more in the last %.0f s)"
            args = (*args, self._suppressed, now - self._last)
        self._last, self._suppressed = now, 0
        logger.warning(message, *args)


def encode(address: str, args: Iterable[object]) -> bytes:
    """One OSC message as a datagram."""
    builder = OscMessageBuilder(address=address)
    for value in args:
        builder.add_arg(value)  # type: ignore[arg-type]
    return builder.build().dgram


class OscFeedback:
    """Sends Changes to subscribed OSC targets (a TouchOSC tablet at its receive port)."""

    def __init__(
        self, *, targets: Iterable[tuple[str, int]] = (), max_targets: int = MAX_TARGETS
    ) -> None:
        self._max = max_targets
        self._targets: dict[tuple[str, int], None] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self.stats = OscStats()
        for host, port in targets:
            self.subscribe(host, port)

    @property
    def targets(self) -> list[tuple[str, int]]:
        """Current subscribers, oldest first."""
        return list(self._targets)

    def attach(self, transport: asyncio.DatagramTransport | None) -> None:
        """Send through this socket (the controller's, so replies come from its port)."""
        self._transport = transport

    def subscribe(self, host: str, port: int) -> bool:
        """Add a target; the oldest is dropped past the bound. True if it is new."""
        key = (host, port)
        if key in self._targets:
            return False
        if len(self._targets) >= self._max:
            oldest = next(iter(self._targets))
            del self._targets[oldest]
            logger.info("feedback: dropped %s:%d, at most %d targets", *oldest, self._max)
        self._targets[key] = None
        logger.info("feedback: sending state to %s:%d", host, port)
        return True

    def send(self, changes: Iterable[Change]) -> None:
        """Send changes (call on the event loop): broadcasts to all, answers to their asker."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for change in changes:
            if change.to is None:
                destinations = list(self._targets)
            elif isinstance(change.to, OscOrigin):
                destinations = [(change.to.host, change.to.port)]
            else:
                continue  # an answer for another transport (a websocket client)
            if not destinations:
                continue
            try:
                data = encode(change.address, change.args)
            except Exception:
                self.stats.feedback_errors += 1
                logger.exception("feedback: cannot encode %s %r", change.address, change.args)
                continue
            for destination in destinations:
                try:
                    transport.sendto(data, destination)
                except OSError as exc:
                    self.stats.feedback_errors += 1
                    logger.debug("feedback to %s failed: %s", destination, exc)


class OscController:
    """OSC control server: validates at the edge, submits batches to the engine."""

    def __init__(
        self,
        *,
        host: str = "0.0.0.0",
        port: int = 9000,
        submit: Callable[[list[Command]], bool],
        feedback: OscFeedback | None = None,
        receive_buffer: int = RECEIVE_BUFFER_BYTES,
    ) -> None:
        self._host = host
        self._port = port
        self._submit = submit
        self.feedback = feedback if feedback is not None else OscFeedback()
        self._receive_buffer = receive_buffer
        self._transport: asyncio.DatagramTransport | None = None
        self.stats = OscStats()
        self._log = RateLimitedLog()
        self._greeting = _greeting_addresses()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is real even when 0 was asked for."""
        if self._transport is None:
            raise RuntimeError("the OSC controller is not running")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    async def __aenter__(self) -> OscController:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self._host, self._port)
        )
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer)
            except OSError as exc:
                logger.warning("could not raise the OSC receive buffer: %s", exc)
        self.feedback.attach(transport)
        logger.info("OSC control on udp://%s:%d", *self.address)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.feedback.attach(None)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def receive(self, data: bytes, sender: tuple[str, int]) -> None:
        """Handle one datagram (called by the protocol; public for tests)."""
        self.stats.packets += 1
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception as exc:  # noqa: BLE001 - python-osc raises several types on garbage
            self.stats.parse_errors += 1
            self._log.warning("OSC: unreadable packet from %s:%d: %s", *sender[:2], exc)
            return
        if len(messages) > MAX_BUNDLE:
            self.stats.invalid += 1
            self._log.warning("OSC: bundle of %d messages, at most %d", len(messages), MAX_BUNDLE)
            return
        origin = OscOrigin(sender[0], sender[1])
        now = time.monotonic()
        batch: list[Command] = []
        try:
            for message in messages:
                address, params = message.address, list(message.params)
                spec, _ = lookup(address)
                if spec.owner == "controller":
                    batch.extend(self._subscribe(address, params, origin))
                    continue
                batch.append(parse(address, params, origin=origin, received=now))
        except CommandError as exc:
            # A bundle is all or nothing: one bad message refuses the whole bundle.
            self.stats.invalid += 1
            self._log.warning("OSC from %s:%d refused: %s", origin.host, origin.port, exc)
            return
        if not batch:
            return
        if self._submit(batch):
            self.stats.commands += len(batch)
        else:
            self.stats.dropped += len(batch)
            self._log.warning("OSC: engine queue full, dropped %d command(s)", len(batch))

    def _subscribe(self, address: str, params: list[object], origin: OscOrigin) -> list[Command]:
        command = parse(address, params)
        port = int(command.args[0]) if command.args else origin.port  # type: ignore[call-overload]
        target = OscOrigin(origin.host, port)
        self.feedback.subscribe(target.host, target.port)
        # Greet the new subscriber with the current state, answered through the engine.
        return [parse(a, ["?"], origin=target) for a in self._greeting]


def _greeting_addresses() -> list[str]:
    out: list[str] = []
    for spec in REGISTRY.values():
        if spec.owner != "play" or not spec.queryable:
            continue
        if not spec.path:
            out.append(spec.pattern)
            continue
        (name, (lo, hi)), *_ = spec.path.items()
        out.extend(spec.pattern.replace("{" + name + "}", str(i)) for i in range(lo, hi + 1))
    return out


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, controller: OscController) -> None:
        self._controller = controller

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        try:
            self._controller.receive(data, (str(addr[0]), int(addr[1])))
        except Exception:  # errors stop at the edge: the server lives on
            logger.exception("OSC: unexpected error handling a datagram")

    def error_received(self, exc: Exception) -> None:
        logger.debug("OSC socket error: %s", exc)
