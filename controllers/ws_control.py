"""Websocket control: JSON messages to Commands (pure; the `/ws` handler does the I/O).

A control message is `{"address": "/keyframe/3/jump", "args": [2.0]}` or
`{"bundle": [{"address": ...}, ...]}` (applied together, between two frames).
Feedback to every websocket client is `state_message(change)`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from server.commands import Change, Command, CommandError, lookup, parse

logger = logging.getLogger(__name__)

# Limits
MAX_BUNDLE = 64


def parse_control(
    message: Mapping[str, object], *, origin: object = None, received: float | None = None
) -> list[Command]:
    """The commands of one control message, validated; CommandError if any is bad."""
    if not isinstance(message, Mapping):
        raise CommandError("a control message must be a JSON object")
    if "bundle" in message:
        items = message["bundle"]
        if not isinstance(items, list) or not items:
            raise CommandError("'bundle' must be a non-empty list of messages")
        if len(items) > MAX_BUNDLE:
            raise CommandError(f"a bundle holds at most {MAX_BUNDLE} messages")
        return [_one(item, origin, received) for item in items]
    return [_one(message, origin, received)]


def _one(item: object, origin: object, received: float | None) -> Command:
    if not isinstance(item, Mapping):
        raise CommandError("each message must be an object with 'address' and 'args'")
    unknown = set(item) - {"address", "args"}
    if unknown:
        raise CommandError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    address = item.get("address")
    if not isinstance(address, str):
        raise CommandError("'address' must be a string")
    args = item.get("args", [])
    if not isinstance(args, list):
        raise CommandError(f"{address}: 'args' must be a list")
    spec, _ = lookup(address)
    if spec.owner == "controller":
        raise CommandError(f"{address}: websocket clients always receive feedback")
    return parse(address, args, origin=origin, received=received)


def state_message(change: Change) -> dict[str, object]:
    """The feedback message for one change."""
    return {"type": "state", "address": change.address, "args": list(change.args)}


def error_message(error: CommandError) -> dict[str, object]:
    """The reply to a message that was refused."""
    return {"type": "error", "error": str(error)}
