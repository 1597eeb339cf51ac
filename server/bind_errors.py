"""Why the HTTP or OSC socket would not bind, in words that name the flag to change.

One wording for `ganvj serve` alone and under its supervisor (which binds the
sockets itself and hands them to each worker).
"""

from __future__ import annotations

import errno
import os

from server.config import Config


def bind_errno(exc: OSError) -> int | None:
    """The errno of a failed bind, also where uvloop keeps it only in the cause."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


def bind_reason(exc: OSError) -> str:
    """Why a bind failed, in words: never "None" (uvloop's UDP errors carry no strerror)."""
    code = bind_errno(exc)
    return os.strerror(code) if code is not None else str(exc) or type(exc).__name__


def http_bind_message(config: Config, exc: OSError) -> str:
    """The HTTP port would not bind: which port, why, and the flag to change."""
    host, port = config.server.host, config.server.port
    if bind_errno(exc) == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use: "
            "stop the other server or pass --port (server.port in config.toml)"
        )
    return (
        f"cannot listen on {host}:{port}: {bind_reason(exc)}: "
        "pass --host with an address of this machine (server.host in config.toml)"
    )


def osc_bind_message(config: Config, exc: OSError) -> str:
    """The OSC port would not bind: which port, why, and the flag to change."""
    host, port = config.osc.host, config.osc.port
    if bind_errno(exc) == errno.EADDRINUSE:
        return (
            f"OSC port {port} on {host} is already in use: "
            "stop the other server, pass --osc-port (osc.port in config.toml), "
            "or set osc.enabled = false"
        )
    return (
        f"cannot listen for OSC on {host}:{port}: {bind_reason(exc)}: "
        "pass --osc-host with an address of this machine (osc.host in config.toml)"
    )
