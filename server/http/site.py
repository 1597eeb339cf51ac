"""The listening socket: the app's routes on one host and port, HTTP or HTTPS."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

from aiohttp import web

from server.http.app import App

SHUTDOWN_TIMEOUT_S = 2.0  # open requests get this long at shutdown, then are cancelled


@contextlib.asynccontextmanager
async def listening(
    app: App,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    sock: socket.socket | None = None,
) -> AsyncIterator[int]:
    """Serve `app` until the block exits; yields the bound port (useful with port 0).

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
        yield int(bound[1])
    finally:
        await runner.cleanup()
