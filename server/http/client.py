"""One websocket client of /ws, as the rest of the server sees it."""

from __future__ import annotations

import logging

from aiohttp import web

logger = logging.getLogger(__name__)


class ClientGone(ConnectionError):
    """The client's websocket closed while something was being sent to it."""


class Client:
    """A /ws connection: where to send, who it is, and what it may do."""

    def __init__(self, ws: web.WebSocketResponse, *, remote: str) -> None:
        self.ws = ws
        self.remote = remote  # the peer's IP address

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
        return f"Client({self.remote})"
