"""OSC over UDP on the running asyncio loop: messages to Commands, Changes to subscribers.

Datagrams are parsed by our own parser (`osc_packet`: python-osc misreads the
`c` tag, and its Dispatcher swallows parse errors and, with its default
`strict_timing`, sleeps on the loop for future-dated bundles).

Who may play (`osc_access`): a sender that is not this machine, not in
`osc.allow` or `server.trusted`, and not paired by a performer is refused
before its datagram is parsed, counted, logged once, listed on the control
page (`/osc/refused`), and sent nothing back. Every accepted sender is a
performer: admin-only commands (the registry's `admin` flag) are refused
unless they come from loopback or `server.trusted`. With `osc.token` set,
every message starts with it.

A refused message from an accepted sender is answered with
`/error address reason` (rate-limited), by the same route as a query's
answer: the sender's source port and that host's subscribed feedback ports.
A bundle's messages are submitted as one batch, so the engine applies them
together between two frames; bundle time tags are not waited for. Nothing
here blocks: the handler validates and hands the batch to `submit`, which must
not block either (the engine's `put_nowait` on a bounded queue).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from controllers.osc_access import AllowList
from controllers.osc_packet import (
    IMPULSE,
    Char,
    Midi,
    OscMessage,
    OscParseError,
    Rgba,
    TimeTag,
    encode,
    parse_packet,
)
from controllers.osc_pairing import normalise_host
from server.commands import (
    ERROR_ADDRESS,
    QUERY,
    REGISTRY,
    Change,
    Command,
    CommandError,
    CommandSpec,
    error,
    lookup,
    opens_by_path,
    parse,
)
from server.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

# Limits
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # a burst of faders must not overflow the socket
MAX_TARGETS = 16  # feedback subscriptions in all (the configured osc.feedback targets apart)
MAX_TARGETS_PER_HOST = 4  # feedback subscriptions of one host; a fifth replaces its oldest
GREET_EVERY_SECONDS = 5.0  # a re-subscription is greeted with the state at most this often
REFUSED_SHOWN = 8  # hosts /osc/refused lists, the latest first
REFUSED_RECENT_SECONDS = 600.0  # a refused host is listed this long after its last message
REFUSED_PUBLISH_SECONDS = 1.0  # /osc/refused is sent to the control pages at most this often
LOG_EVERY_SECONDS = 5.0  # at most one log line per kind of error in this time
ERROR_REPLIES_PER_SECOND = 10  # /error replies to one host
MAX_REASON_CHARS = 200
MAX_REFUSED_SENDERS = 1024  # distinct refused addresses remembered for the count
PACKETS_PER_SECOND_PER_HOST = 2000.0  # more from one host is a flood, dropped unparsed
MAX_RATE_HOSTS = 1024  # sending hosts whose packet rate is remembered

# How each OSC type tag reaches a command: (tag, OSC type, what ganvj does with it).
TYPE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("i", "int32", "a number (a whole number where an integer is expected)"),
    ("f", "float32", "a number; a whole float such as TouchOSC's 1.0 also fills an integer"),
    ("h", "int64", "a number, as `i`"),
    ("d", "float64", "a number, as `f`"),
    (
        "s",
        "string",
        'text for text arguments, or `"?"` to query; a number sent as text (`"0.5"`) is refused',
    ),
    ("S", "symbol", "as `s`"),
    ("T", "true", "1 (toggles: `/latent/wander T`, `/sequence/play T`)"),
    ("F", "false", "0"),
    (
        "I",
        "impulse",
        "a trigger: the message counts as sent with no argument "
        "(`/sequence/stop I`); refused where an argument is required",
    ),
    ("N", "nil", "as `I`"),
    ("c", "char", "parsed, refused: no command takes a character"),
    ("r", "RGBA colour", "parsed, refused: no command takes a colour"),
    ("m", "MIDI message", "parsed, refused: no command takes MIDI bytes"),
    ("b", "blob", "parsed, refused: no command takes bytes"),
    ("t", "time tag", "parsed, refused as an argument (a bundle's time tag is not waited for)"),
    ("[ ]", "array", "parsed, refused: no command takes an array"),
)
_TAG_NAMES = {tag: name for tag, name, _ in TYPE_TABLE}


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
    refused_packets: int = 0  # from a sender outside osc.allow
    refused_senders: int = 0  # distinct such addresses (up to MAX_REFUSED_SENDERS)
    refused_token: int = 0  # messages without the right osc.token
    error_replies: int = 0  # /error replies sent
    error_replies_suppressed: int = 0  # over the rate limit
    rate_limited: int = 0  # packets dropped unparsed: one host sent too many

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


class OscFeedback:
    """Sends Changes to OSC targets: the configured ones (a TouchOSC tablet) and subscribers.

    Configured targets are never dropped. Subscriptions are bounded per host and
    in all: a host's fifth replaces its own oldest, and past the total a new
    host is refused, so nobody's subscriptions can push out anyone else's.
    """

    def __init__(
        self,
        *,
        targets: Iterable[tuple[str, int]] = (),
        max_targets: int = MAX_TARGETS,
        per_host: int = MAX_TARGETS_PER_HOST,
    ) -> None:
        self._max = max_targets
        self._per_host = per_host
        self._configured: dict[tuple[str, int], None] = dict.fromkeys(targets)
        self._subscribed: dict[tuple[str, int], None] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._error_replies = TokenBucket(rate=ERROR_REPLIES_PER_SECOND, max_keys=MAX_TARGETS * 4)
        self.stats = OscStats()
        for host, port in self._configured:
            logger.info("feedback: sending state to %s:%d (osc.feedback)", host, port)

    @property
    def targets(self) -> list[tuple[str, int]]:
        """Current targets: the configured ones, then subscribers, oldest first."""
        return [*self._configured, *(t for t in self._subscribed if t not in self._configured)]

    def attach(self, transport: asyncio.DatagramTransport | None) -> None:
        """Send through this socket (the controller's, so replies come from its port)."""
        self._transport = transport

    def subscribe(self, host: str, port: int) -> bool:
        """Add a subscriber; True if it is new, CommandError if every place is taken."""
        key = (host, port)
        if key in self._configured or key in self._subscribed:
            return False
        own = [t for t in self._subscribed if t[0] == host]
        if len(own) >= self._per_host:
            del self._subscribed[own[0]]
            logger.info("feedback: dropped %s:%d, at most %d ports a host", *own[0], self._per_host)
        elif len(self._subscribed) >= self._max:
            raise CommandError(
                f"/feedback/subscribe: {self._max} subscriptions already; "
                "configure this tablet in osc.feedback instead"
            )
        self._subscribed[key] = None
        logger.info("feedback: sending state to %s:%d", host, port)
        return True

    def forget(self, host: str) -> None:
        """End every subscription of `host` (it was unpaired); configured targets stay."""
        for target in [t for t in self._subscribed if t[0] == host]:
            del self._subscribed[target]
            logger.info("feedback: stopped sending state to %s:%d", *target)

    def route(self, origin: OscOrigin) -> list[tuple[str, int]]:
        """Where an answer to `origin` goes: its source port, and its host's subscribed ports.

        liblo's oscsend, Max's udpsend and TouchOSC send from one port and
        listen on another, so the source port alone may reach nobody.
        """
        here = (origin.host, origin.port)
        return [here, *(t for t in self.targets if t[0] == origin.host and t != here)]

    def reply_error(self, origin: OscOrigin, address: str, reason: str) -> bool:
        """Send `/error address reason` back to a refused sender, at most a few a second."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        if not self._error_replies.take(origin.host):
            self.stats.error_replies_suppressed += 1
            return False
        data = encode("/error", [address, reason[:MAX_REASON_CHARS]])
        for destination in self.route(origin):
            try:
                transport.sendto(data, destination)
            except OSError as exc:
                self.stats.feedback_errors += 1
                logger.debug("error reply to %s failed: %s", destination, exc)
        self.stats.error_replies += 1
        return True

    def send(self, changes: Iterable[Change]) -> None:
        """Send changes (call on the event loop): broadcasts to all, answers to their asker."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for change in changes:
            if change.to is None:
                destinations = self.targets
            elif isinstance(change.to, OscOrigin):
                destinations = self.route(change.to)
                if change.address == ERROR_ADDRESS:
                    self.stats.error_replies += 1  # refused while it ran (an unknown model, say)
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


@dataclass
class _Refused:
    """A host whose OSC was refused: how many messages, and when the last came."""

    count: int
    last: float


class OscController:
    """OSC control server: decides who may play, validates at the edge, submits batches."""

    def __init__(
        self,
        *,
        host: str = "0.0.0.0",
        port: int = 9000,
        submit: Callable[[list[Command]], bool],
        feedback: OscFeedback | None = None,
        receive_buffer: int = RECEIVE_BUFFER_BYTES,
        allow: AllowList | None = None,
        token: str = "",
        packets_per_second: float = PACKETS_PER_SECOND_PER_HOST,
        publish: Callable[[Sequence[Change]], None] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sock = sock  # already bound (a supervisor's): host and port are ignored
        self._submit = submit
        self.feedback = feedback if feedback is not None else OscFeedback()
        # Where this controller's own changes go (/osc/paired, /osc/refused): every
        # controller's clients, through the control hub, when the wiring passes it.
        self._publish = publish if publish is not None else self.feedback.send
        self._receive_buffer = receive_buffer
        self._transport: asyncio.DatagramTransport | None = None
        self.stats = self.feedback.stats  # one set of counters for /api/status
        self.allow = allow if allow is not None else AllowList()
        self._token = token
        # A flood from one host is dropped before it is parsed (the cheapest
        # place), and counted; other hosts are unaffected. The default is far
        # above what a performer's controllers send (a TouchOSC page of faders
        # moving at once is a few hundred messages a second).
        self._rate = TokenBucket(rate=packets_per_second, max_keys=MAX_RATE_HOSTS)
        self._refused: dict[str, _Refused] = {}
        self._refused_due: asyncio.TimerHandle | None = None
        self._greetings = TokenBucket(
            rate=1 / GREET_EVERY_SECONDS, burst=1, max_keys=MAX_TARGETS * 4
        )
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
        if self._sock is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=self._sock
            )
        else:
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
        self.close()

    def close(self) -> None:
        """Stop receiving and sending (shutdown: the first thing to stop); idempotent."""
        if self._refused_due is not None:
            self._refused_due.cancel()
            self._refused_due = None
        self.feedback.attach(None)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def receive(self, data: bytes, sender: tuple[str, int]) -> None:
        """Handle one datagram (called by the protocol; public for tests)."""
        self.stats.packets += 1
        origin = OscOrigin(sender[0], sender[1])
        if not self.allow.allows(origin.host):
            self._refuse_sender(origin)
            return
        if not self._rate.take(origin.host):
            self.stats.rate_limited += 1
            self._log.warning(
                "OSC: %s sends more than %g packets/s: dropping", origin.host, self._rate.rate
            )
            return
        try:
            messages = parse_packet(data)
        except OscParseError as exc:
            self.stats.parse_errors += 1
            self._log.warning("OSC: unreadable packet from %s:%d: %s", *sender[:2], exc)
            self.feedback.reply_error(origin, "", f"unreadable OSC packet: {exc}")
            return
        now = time.monotonic()
        batch: list[Command] = []
        local: list[Command] = []
        address = ""
        try:
            for message in messages:
                address = message.address
                spec, _ = lookup(address)
                if spec.admin and not self.allow.admin(origin.host):
                    raise CommandError(
                        f"{address}: only an admin may send this; over OSC that is this "
                        "machine or a server.trusted address"
                    )
                params = command_args(self._unlock(message), spec)
                if spec.owner == "controller":
                    batch.extend(self._subscribe(address, params, origin))
                    continue
                if opens_by_path(address, params) and not self.allow.admin(origin.host):
                    raise CommandError(
                        f"{address}: a model path is for an admin (over OSC, this machine or "
                        "a server.trusted address); give a model's name from the models folder"
                    )
                command = parse(address, params, origin=origin, received=now)
                (local if spec.owner == "osc" else batch).append(command)
        except CommandError as exc:
            # A bundle is all or nothing: one bad message refuses the whole bundle.
            self.stats.invalid += 1
            self._log.warning("OSC from %s:%d refused: %s", origin.host, origin.port, exc)
            self.feedback.reply_error(origin, address, str(exc))
            return
        for command in local:
            self._publish(self.apply(command))
        if not batch:
            return
        if self._submit(batch):
            self.stats.commands += len(batch)
        else:
            self.stats.dropped += len(batch)
            self._log.warning("OSC: engine queue full, dropped %d command(s)", len(batch))
            self.feedback.reply_error(origin, address, "the server is busy: command dropped")

    # -- who may play -----------------------------------------------------------

    def apply(self, command: Command) -> list[Change]:
        """Apply an /osc/... command from any transport (the control hub calls it too)."""
        name = command.name
        if command.query:
            return [Change(command.address, self._state(name), command.origin)]
        host = str(command.args[0])
        try:
            host = normalise_host(host)
        except ValueError:
            return [error(command, f"{host[:60]!r} is not an IP address (e.g. 10.0.0.23)")]
        if name == "/osc/allow":
            if self.allow.fixed(host):
                # Accepted anyway (this machine, osc.allow): the asker gets the list.
                return [Change("/osc/paired", self._state("/osc/paired"), command.origin)]
            self.pair(host, "by /osc/allow")
            return []  # pair() published the new lists
        if not self.allow.pairings.unpair(host):
            return [error(command, f"{host} is not paired")]
        self.feedback.forget(host)
        logger.info("OSC: unpaired %s: its messages are refused again", host)
        return [self._changed("/osc/paired")]

    def pair(self, host: str, how: str = "opened /control with the performer's link") -> None:
        """Accept OSC from `host` as a performer's (no-op for a host accepted anyway)."""
        try:
            key = normalise_host(host)
        except ValueError:
            return
        if self.allow.fixed(key) or not self.allow.pairings.pair(key):
            return
        logger.info("OSC: paired %s (%s): its messages are accepted", key, how)
        self._refused.pop(key, None)
        self._publish([self._changed("/osc/paired"), self._changed("/osc/refused")])

    def _state(self, name: str) -> tuple[object, ...]:
        if name == "/osc/paired":
            return self.allow.pairings.hosts
        now = time.monotonic()
        recent = sorted(
            ((h, r) for h, r in self._refused.items() if now - r.last < REFUSED_RECENT_SECONDS),
            key=lambda item: -item[1].last,
        )[:REFUSED_SHOWN]
        return tuple(value for host, refused in recent for value in (host, refused.count))

    def _changed(self, address: str) -> Change:
        return Change(address, self._state(address))

    def _refuse_sender(self, origin: OscOrigin) -> None:
        # No reply: a sender we do not know gets nothing to learn from.
        self.stats.refused_packets += 1
        now = time.monotonic()
        refused = self._refused.get(origin.host)
        if refused is None:
            if len(self._refused) >= MAX_REFUSED_SENDERS:
                return  # counted above; the list stays bounded
            refused = self._refused[origin.host] = _Refused(0, now)
            self.stats.refused_senders = len(self._refused)
            logger.warning(
                "OSC from %s refused: not paired. To let it play, open the control page "
                "on that device with the performer's link, press Allow beside it on the "
                "control page, or send /osc/allow %s",
                origin.host,
                origin.host,
            )
        refused.count += 1
        refused.last = now
        self._publish_refused_soon()

    def _publish_refused_soon(self) -> None:
        """Send /osc/refused within REFUSED_PUBLISH_SECONDS: once however many arrive."""
        if self._refused_due is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop (a unit test): now
            self._publish([self._changed("/osc/refused")])
            return

        def publish() -> None:
            self._refused_due = None
            self._publish([self._changed("/osc/refused")])

        self._refused_due = loop.call_later(REFUSED_PUBLISH_SECONDS, publish)

    def _unlock(self, message: OscMessage) -> OscMessage:
        """The message without its leading osc.token, or CommandError if it lacks it."""
        if not self._token:
            return message
        if not message.args or message.args[0] != self._token:
            self.stats.refused_token += 1
            raise CommandError(
                f"{message.address}: the first argument must be the OSC token (osc.token)"
            )
        return OscMessage(message.address, message.tags[1:], message.args[1:])

    def _subscribe(self, address: str, params: list[object], origin: OscOrigin) -> list[Command]:
        command = parse(address, params)
        port = int(command.args[0]) if command.args else origin.port  # type: ignore[call-overload]
        target = OscOrigin(origin.host, port)
        new = self.feedback.subscribe(target.host, target.port)
        # Greet the subscriber with the current state, answered through the engine;
        # a repeated subscribe is greeted at most every GREET_EVERY_SECONDS, so one
        # small packet never returns dozens again and again.
        if not self._greetings.take(target) and not new:
            return []
        return [parse(a, ["?"], origin=target) for a in self._greeting]


def command_args(message: OscMessage, spec: CommandSpec) -> list[object]:
    """OSC values as command arguments (see TYPE_TABLE), or CommandError saying why not."""
    args = list(message.args)
    required = sum(1 for arg in spec.args if not arg.optional)
    if args and all(value is None or value is IMPULSE for value in args):
        if required:
            raise CommandError(
                f"{message.address}: {_tag_name(message.tags[0])} is a trigger, "
                f"but this address needs {required} argument(s)"
            )
        return []  # a trigger-style controller's "press"
    out: list[object] = []
    for position, value in enumerate(args):
        if isinstance(value, bool):
            out.append(int(value))  # T/F: toggles
        elif isinstance(value, str):
            expected = spec.args[position] if position < len(spec.args) else None
            if expected is not None and expected.type != "s" and value != QUERY:
                raise CommandError(
                    f"{message.address} {expected.name}: expected a number, got the string "
                    f"{value[:40]!r}: send it as an OSC float (f) or int (i), not a string"
                )
            out.append(value)
        elif isinstance(value, int | float):
            out.append(value)
        else:
            raise CommandError(
                f"{message.address}: argument {position + 1} is an OSC {_value_name(value)}, "
                "which no command takes (send f, i, T/F or s)"
            )
    return out


def _tag_name(tag: str) -> str:
    return f"{_TAG_NAMES.get(tag, 'value')} ({tag})"


def _value_name(value: object) -> str:
    kinds = {Char: "c", Rgba: "r", Midi: "m", bytes: "b", TimeTag: "t"}
    tag = kinds.get(type(value))
    return _tag_name(tag) if tag else "array ([ ])"


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
