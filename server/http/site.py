"""The listening socket: the app's routes on one host and port, HTTP or HTTPS."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

from aiohttp import web

from server.http.app import App

SHUTDOWN_TIMEOUT_S = 2.0  # open requests get this long at shutdown, then are cancelled


class Listener:
    """A started site: its bound port, and the way to stop taking new connections."""

    def __init__(self, site: web.BaseSite, port: int) -> None:
        self._site: web.BaseSite | None = site
        self.port = port  # the bound port (useful with port 0)

    async def stop_accepting(self) -> None:
        """Close the listening socket; connections already open carry on."""
        site, self._site = self._site, None
        if site is not None:
            await site.stop()


@contextlib.asynccontextmanager
async def listening(
    app: App,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    sock: socket.socket | None = None,
) -> AsyncIterator[Listener]:
    """Serve `app` until the block exits, then cancel what is still open.

    `sock`: a socket already bound and listening (a supervisor's), used instead
    of host and port. OSError from binding (port in use, no such address) propagates.
    """
    runner = web.AppRunner(
        app.finish_routes(),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    try:
        site: web.BaseSite = (
            web.SockSite(runner, sock, ssl_context=tls)
            if sock is not None
            else web.TCPSite(runner, host, port, ssl_context=tls)
        )
        await site.start()
        bound = runner.addresses[0]
        yield Listener(site, int(bound[1]))
    finally:
        await runner.cleanup()
