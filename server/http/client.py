"""One websocket client of /ws, as the rest of the server sees it."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from server.http.auth import Role
from server.ratelimit import TokenBucket

logger = logging.getLogger(__name__)


class ClientGone(ConnectionError):
    """The client's websocket closed while something was being sent to it."""


class Client:
    """A /ws connection: where to send, who it is, and what it may do."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        remote: str,
        role: Role,
        messages_per_s: float = 200.0,
        offers_per_min: float = 12.0,
    ) -> None:
        self.ws = ws
        self.remote = remote  # the peer's IP address
        self.role = role  # decided once, at the handshake
        # Limits: a flood from this client is dropped here, nobody else notices.
        self.messages = TokenBucket(rate=messages_per_s, burst=max(1.0, messages_per_s))
        self.offers = TokenBucket(rate=offers_per_min / 60.0, burst=min(4.0, offers_per_min))
        self._warned_at = -1.0

    def may_warn_throttled(self) -> bool:
        """Whether to tell this client it is throttled (at most once a second)."""
        now = time.monotonic()
        if now - self._warned_at < 1.0:
            return False
        self._warned_at = now
        return True

    @property
    def closed(self) -> bool:
        """Whether the websocket has closed."""
        return self.ws.closed

    async def send(self, text: str) -> None:
        """Send one text message; ClientGone if the connection is closing or gone."""
        if self.ws.closed:
            raise ClientGone("the websocket is closed")
        try:
            await self.ws.send_str(text)
        except ConnectionError as exc:  # aiohttp raises ConnectionResetError and kin
            raise ClientGone(str(exc)) from exc

    async def close(self, code: int = 1001, reason: str = "") -> None:
        """Close the websocket (1001: the server is going away)."""
        await self.ws.close(code=code, message=reason.encode())

    def __repr__(self) -> str:
        return f"Client({self.remote}, {self.role})"
