"""The supervisor: `ganvj serve` holds the ports and runs the instrument as a worker.

Like nginx's master and worker: the supervisor binds the HTTP (TCP) and OSC
(UDP) sockets once and hands them to each worker by file descriptor
inheritance, so the ports never change and a restart never races another
process for them. A worker that dies for any reason (kill -9, a segfault in a
C extension, an out-of-memory kill, an exit) is started again at once; the
write-ahead journal and the show file bring back what it played.

Three deaths within CRASH_WINDOW_S start the worker on safe settings (the CPU,
the shipped default model, its native size) and say why; a worker that dies
as often on safe settings too ends the supervisor with the reason.

A standby worker is kept warm beside the playing one: started ahead, it has
imported torch and the server (most of a start) and waits on a pipe, so a
death costs the model load and the first frame, not the imports.

The supervisor imports no torch and waits in waitpid(): idle, it costs nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from server.bind_errors import http_bind_message, osc_bind_message
from server.config import Config

logger = logging.getLogger(__name__)

# Set by the supervisor for its worker; read by `ganvj serve` in the worker.
ENV_SOCKETS = "GANVJ_WORKER_SOCKETS"  # "http=FD,osc=FD"
ENV_SAFE = "GANVJ_SAFE_MODE"  # why the worker runs on safe settings
ENV_RESTARTS = "GANVJ_RESTARTS"  # how many times the worker was started again
ENV_NO_SUPERVISOR = "GANVJ_NO_SUPERVISOR"  # "1": `ganvj serve` runs the worker directly
ENV_STANDBY = "GANVJ_STANDBY_FD"  # a standby worker waits to read its go on this fd

CRASH_DEATHS = 3
CRASH_WINDOW_S = 30.0
STARTUP_REFUSED = 2  # the worker's exit code for a start its settings refuse (`ganvj serve`)
STOP_GRACE_S = 10.0  # a stopping worker gets this long before SIGKILL
SAFE_SETTINGS = {"render.device": "cpu", "render.model": "", "render.size": 0}
_PR_SET_PDEATHSIG = 1


class SupervisorError(RuntimeError):
    """The supervisor cannot start; the message names the port and the way out."""


@dataclass(frozen=True)
class Survival:
    """What a supervised worker is handed: its sockets, and why it runs safe (if it does)."""

    http: socket.socket | None = None
    osc: socket.socket | None = None
    safe_reason: str | None = None
    restarts: int = 0

    def status(self) -> dict[str, object]:
        """For /api/status: supervised, restarts, and the safe mode's reason (or None)."""
        return {
            "supervised": self.http is not None,
            "worker_pid": os.getpid(),
            "restarts": self.restarts,
            "safe_mode": self.safe_reason,
        }


def wait_for_go() -> None:
    """In a standby worker, after the heavy imports: block until the supervisor says go.

    The go message carries the settings of this start (safe mode, restarts),
    decided when the previous worker died rather than when this one was started.
    """
    fd = os.environ.pop(ENV_STANDBY, "")
    if not fd:
        return
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = os.read(int(fd), 4096)
        except KeyboardInterrupt:  # Ctrl-C reaches the whole terminal's group
            raise SystemExit(0) from None
        if not chunk:  # the supervisor is gone
            raise SystemExit(0)
        data += chunk
    os.close(int(fd))
    for line in data.decode().splitlines():
        key, _, value = line.partition("=")
        if key in (ENV_SAFE, ENV_RESTARTS):
            os.environ[key] = value
    if os.environ.get(ENV_SAFE) == "":
        del os.environ[ENV_SAFE]


def inherited() -> Survival:
    """The sockets and settings the supervisor passed to this worker (none if unsupervised)."""
    spec = os.environ.get(ENV_SOCKETS, "")
    fds = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    http = socket.socket(fileno=int(fds["http"])) if "http" in fds else None
    osc = socket.socket(fileno=int(fds["osc"])) if "osc" in fds else None
    return Survival(
        http=http,
        osc=osc,
        safe_reason=os.environ.get(ENV_SAFE) or None,
        restarts=int(os.environ.get(ENV_RESTARTS, "0") or 0),
    )


def wanted(no_supervisor: bool) -> bool:
    """True when `ganvj serve` should supervise (not asked not to, and not a worker itself)."""
    if no_supervisor or os.environ.get(ENV_NO_SUPERVISOR, "") not in ("", "0"):
        return False
    return ENV_SOCKETS not in os.environ


def bind(config: Config) -> tuple[socket.socket, socket.socket | None]:
    """The HTTP listening socket and the OSC socket (None with OSC off), bound."""
    http = _bound(socket.SOCK_STREAM, config.server.host, config.server.port)
    if isinstance(http, OSError):
        raise SupervisorError(http_bind_message(config, http))
    http.listen(128)
    if not config.osc.enabled:
        return http, None
    osc = _bound(socket.SOCK_DGRAM, config.osc.host, config.osc.port)
    if isinstance(osc, OSError):
        http.close()
        raise SupervisorError(osc_bind_message(config, osc))
    return http, osc


def _bound(kind: int, host: str, port: int) -> socket.socket | OSError:
    try:
        info = socket.getaddrinfo(host or None, port, type=kind, flags=socket.AI_PASSIVE)
        family, _, _, _, address = info[0]
        sock = socket.socket(family, kind)
    except (socket.gaierror, IndexError) as exc:
        # Not an address of this machine (or of any): its errno is getaddrinfo's own.
        return OSError(errno.EADDRNOTAVAIL, str(exc))
    except OSError as exc:
        return exc
    try:
        if kind == socket.SOCK_STREAM:
            # As aiohttp does: a restart may bind while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        return exc
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Starts the worker, waits for it, starts it again; forwards SIGINT/SIGTERM to it."""

    def __init__(
        self,
        argv: Sequence[str],
        http: socket.socket,
        osc: socket.socket | None,
        *,
        deaths: int = CRASH_DEATHS,
        window_s: float = CRASH_WINDOW_S,
    ) -> None:
        self.argv = list(argv)
        self.http = http
        self.osc = osc
        self.deaths = deaths
        self.window_s = window_s
        self.restarts = 0
        self.safe_reason: str | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._standby: tuple[subprocess.Popen[bytes], int] | None = None  # (process, go fd)
        self._stopping = False
        self._died: deque[float] = deque(maxlen=deaths)

    def run(self) -> int:
        """Supervise until SIGINT/SIGTERM, or a crash loop on safe settings (then 1)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._forward)
        while True:
            started = time.monotonic()
            child = self._child = self._start()
            if not self._stopping:
                self._standby = self._spawn(standby=True)
            code = child.wait()  # blocks in waitpid(): no polling
            if self._stopping:
                self._end_standby()
                return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else 1
            if code == STARTUP_REFUSED and self.restarts == 0:
                # The first start refused its settings (a bad model file, config, TLS
                # or audio device): said on stderr by the worker; nothing to restart.
                self._end_standby()
                return STARTUP_REFUSED
            cause = _cause(code)
            now = time.monotonic()
            self._died.append(now)
            logger.error(
                "ganvj: the worker (pid %d) %s after %.1f s; starting it again",
                child.pid,
                cause,
                now - started,
            )
            print(f"ganvj: the worker {cause}; starting it again", file=sys.stderr, flush=True)
            if len(self._died) == self.deaths and now - self._died[0] <= self.window_s:
                if self.safe_reason is not None:
                    print(
                        f"ganvj: the worker keeps dying on safe settings too ({cause}); "
                        "giving up: see the log above",
                        file=sys.stderr,
                        flush=True,
                    )
                    self._end_standby()
                    return 1
                self.safe_reason = (
                    f"the worker died {self.deaths} times in {self.window_s:.0f} s "
                    f"(last: {cause}); running on safe settings: CPU, the default model, "
                    "native size"
                )
                print(f"ganvj: {self.safe_reason}", file=sys.stderr, flush=True)
                self._died.clear()
            self.restarts += 1

    def _start(self) -> subprocess.Popen[bytes]:
        """The standby told to go, if it is alive; else a worker started cold."""
        standby, self._standby = self._standby, None
        if standby is not None:
            process, go = standby
            message = f"{ENV_SAFE}={self.safe_reason or ''}\n{ENV_RESTARTS}={self.restarts}\n"
            try:
                if process.poll() is None:
                    os.write(go, message.encode())
                    return process
            except OSError:
                pass  # it died waiting: start one cold
            finally:
                os.close(go)
            _kill(process)
            process.wait()
        process, _ = self._spawn(standby=False)
        return process

    def _spawn(self, *, standby: bool) -> tuple[subprocess.Popen[bytes], int]:
        fds = {"http": self.http.fileno()}
        if self.osc is not None:
            fds["osc"] = self.osc.fileno()
        env = dict(os.environ)
        env[ENV_SOCKETS] = ",".join(f"{k}={v}" for k, v in fds.items())
        env[ENV_RESTARTS] = str(self.restarts)
        if self.safe_reason is not None:
            env[ENV_SAFE] = self.safe_reason
        passed = list(fds.values())
        go = -1
        if standby:
            read, go = os.pipe()
            env[ENV_STANDBY] = str(read)
            passed.append(read)
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *self.argv],
            env=env,
            pass_fds=tuple(passed),
            preexec_fn=_die_with_parent,
        )
        if standby:
            os.close(read)
        return process, go

    def _end_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None:
            process, go = standby
            os.close(go)
            # It holds no state; it may still be importing, so it is not asked but told.
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_GRACE_S)
            _kill(process)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        child = self._child
        if child is None or child.poll() is not None:
            self._end_standby()
            raise SystemExit(0)
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)
        # The standby goes at once: it would only take CPU from the worker's stop.
        standby = self._standby
        if standby is not None:
            with contextlib.suppress(ProcessLookupError):
                standby[0].terminate()
        signal.signal(signal.SIGALRM, lambda *_: _kill(child))
        signal.alarm(int(STOP_GRACE_S))


def _kill(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.kill()


def _cause(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _die_with_parent() -> None:
    """In the child: a supervisor killed outright takes its worker with it (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(config: Config, argv: Sequence[str]) -> int:
    """`ganvj serve` under a supervisor: bind, then run workers with `argv` until stopped."""
    http, osc = bind(config)
    print(
        f"ganvj: supervisor pid {os.getpid()} holds port {http.getsockname()[1]}"
        + (f" and OSC port {osc.getsockname()[1]}" if osc is not None else ""),
        flush=True,
    )
    return Supervisor(argv, http, osc).run()
