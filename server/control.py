"""Commands in from every controller, state changes out to all of them.

Websocket control messages are parsed here (by the codec the wiring passes
in: `controllers.ws_control`) and submitted to the engine; the engine's changes
come back from the render thread and go, on the event loop, to every sink (OSC
feedback targets, MIDI LEDs) and every websocket client, so a tablet, a laptop
and a phone stay in sync. This module knows no controller and no HTTP: what it
talks to comes in through its constructor.

Each websocket client has a coalescing outbox: only the newest value of an
address waits to be sent, so a slow client lags in time but never in memory
and never holds anyone else up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from server.commands import ERROR_ADDRESS, Change, Command, CommandError

logger = logging.getLogger(__name__)

ChangeSink = Callable[[Sequence[Change]], None]  # OSC feedback, MIDI LEDs: event loop
# A command an edge applies itself, on the event loop, instead of the engine
# (OSC pairings): the command in, its changes out.
LocalHandler = Callable[[Command], Sequence[Change]]


class Connection(Protocol):
    """A websocket client as the hub needs it (server.http.client.Client)."""

    async def send(self, text: str) -> None:
        """Send one text message; a ConnectionError once the client is gone."""
        ...


@dataclass(frozen=True)
class Codec:
    """How websocket control messages read and write (controllers.ws_control)."""

    parse: Callable[..., list[Command]]  # (message, *, origin, received) -> commands
    state: Callable[[Change], dict[str, object]]
    error: Callable[[CommandError], dict[str, object]]


class Outbox:
    """One websocket client's pending messages: the newest per address, in order."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._pending: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._errors = 0
        self.task = asyncio.ensure_future(self._run())

    def put(self, message: dict[str, Any]) -> None:
        """Queue a message; a newer state for the same address replaces the older."""
        if message.get("type") == "state":
            key = f"state {message['address']}"
            self._pending.pop(key, None)  # re-insert at the end: keep change order
        else:
            self._errors += 1
            key = f"{message.get('type')} {self._errors}"
        self._pending[key] = message
        self._wake.set()

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client is gone
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    key = next(iter(self._pending))
                    message = self._pending.pop(key)
                    await self.connection.send(json.dumps(message))

    def close(self) -> None:
        """Stop sending (the connection is gone)."""
        self.task.cancel()


class ControlHub:
    """Routes commands to the engine and changes back to every controller."""

    def __init__(
        self,
        *,
        submit: Callable[[Sequence[Command]], bool],
        loop: asyncio.AbstractEventLoop,
        codec: Codec,
        sinks: Sequence[ChangeSink] = (),
        local: Mapping[str, LocalHandler] | None = None,
    ) -> None:
        self._submit = submit
        self._local: Mapping[str, LocalHandler] = local or {}
        self._loop = loop
        self._codec = codec
        self._sinks: list[ChangeSink] = list(sinks)
        self.clients: dict[Connection, Outbox] = {}
        # Clients that hear only some addresses (a projector page: its outputs' mapping).
        self._topics: dict[Connection, tuple[str, ...]] = {}
        self.rejected = 0  # websocket commands refused, when parsed or when run

    def subscribe(self, sink: ChangeSink) -> None:
        """Send every later change to this sink too (a controller opened after the hub)."""
        self._sinks.append(sink)

    def join(self, connection: Connection, prefixes: tuple[str, ...] = ()) -> None:
        """A websocket client that receives feedback: all of it, or of addresses with
        these prefixes only; a client already hearing everything stays so."""
        if connection in self.clients:
            if connection in self._topics and prefixes:
                self._topics[connection] = (*self._topics[connection], *prefixes)
            elif not prefixes:
                self._topics.pop(connection, None)
            return
        self.clients[connection] = Outbox(connection)
        if prefixes:
            self._topics[connection] = prefixes

    def leave(self, connection: Connection) -> None:
        """Forget a closed websocket client."""
        self._topics.pop(connection, None)
        outbox = self.clients.pop(connection, None)
        if outbox is not None:
            outbox.close()

    def reply(self, connection: Connection, message: dict[str, Any]) -> None:
        """Send one message to one client, in order with its feedback."""
        outbox = self.clients.get(connection)
        if outbox is not None:
            outbox.put(message)

    async def handle(self, connection: Connection, message: dict[str, Any]) -> None:
        """A websocket control message (no "type"): parse, submit, or say why not."""
        try:
            commands = self._codec.parse(message, origin=connection, received=time.monotonic())
        except CommandError as exc:
            self.rejected += 1
            self.reply(connection, self._codec.error(exc))
            return
        if self._local:
            engine_commands = []
            for command in commands:
                handler = self._local.get(command.name)
                if handler is None:
                    engine_commands.append(command)
                else:
                    self.broadcast(handler(command))
            if not engine_commands:
                return
            commands = engine_commands
        if not self._submit(commands):
            self.reply(
                connection,
                {
                    "type": "error",
                    "error": "the engine is busy: the command queue is full, try again",
                },
            )

    def changes_threadsafe(self, changes: list[Change]) -> None:
        """Called on the render thread: hand changes to the event loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self.broadcast, changes)

    def broadcast(self, changes: Sequence[Change]) -> None:
        """Send changes to everyone (answers and errors only to their asker)."""
        for sink in self._sinks:
            sink(changes)
        for change in changes:
            if change.address == ERROR_ADDRESS:
                address, text = change.args
                message: dict[str, Any] = {"type": "error", "address": address, "error": text}
            else:
                message = self._codec.state(change)
            if change.to is None:
                for connection, outbox in self.clients.items():
                    topics = self._topics.get(connection)
                    if topics is None or change.address.startswith(topics):
                        outbox.put(message)
            elif isinstance(change.to, Hashable) and change.to in self.clients:
                if change.address == ERROR_ADDRESS:
                    self.rejected += 1  # refused while it ran (an unknown model, say)
                self.reply(change.to, message)
