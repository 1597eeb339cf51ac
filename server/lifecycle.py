"""Start and stop the server as a stack: config, engine, encoder, network.

Each layer is an async context manager; a stop event set by SIGINT/SIGTERM
unwinds them in reverse, peers first, within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.server import Server, serve

from models.checkpoint import LoadedModel, default_model_path, load_model
from server.app import App
from server.config import Config
from server.engine import Engine, pick_device
from server.media import PacketHub, StreamEncoder
from server.tls import TlsError, server_context

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The server cannot start; the message says why and what to do."""


@dataclass
class Running:
    """Handles to a started server (tests and the benchmark use them)."""

    app: App
    engine: Engine
    server: Server

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        sockets = list(self.server.sockets)
        return int(sockets[0].getsockname()[1])


def state_dir(config: Config) -> Path:
    """Where show files and the self-signed certificate are kept."""
    return Path(config.server.state_dir).expanduser()


def resolve_model(config: Config, device_name: str) -> LoadedModel:
    """Load the configured model, or the shipped default."""
    path = Path(config.render.model) if config.render.model else default_model_path("unconditional")
    return load_model(path, device=device_name)


@contextlib.asynccontextmanager
async def running(config: Config, model: LoadedModel | None = None) -> AsyncIterator[Running]:
    """Run engine, encoder and web server until the block exits, then stop them."""
    try:
        device = pick_device(config.render.device)
    except RuntimeError as exc:
        raise StartupError(str(exc)) from exc
    if model is None:
        model = resolve_model(config, str(device))
    engine = Engine(
        model=model, config=config.render, device=device, queue_size=config.limits.command_queue
    )
    loop = asyncio.get_running_loop()
    encoder: StreamEncoder | None = None
    hub: PacketHub | None = None
    if config.stream.shared_encoder:
        hub = PacketHub(
            loop=loop,
            queue_size=config.limits.viewer_packet_queue,
            request_keyframe=lambda: encoder.request_keyframe() if encoder else None,
        )
        encoder = StreamEncoder(
            frames=engine.frames,
            config=config.stream,
            fps=config.render.fps,
            on_encoded=hub.publish_threadsafe,
        )
    app = App(config=config, engine=engine, encoder=encoder, hub=hub, inputs=engine.inputs)
    tls = None
    if config.server.tls:
        try:
            tls, _ = server_context(
                cert=config.server.tls_cert, key=config.server.tls_key, state_dir=state_dir(config)
            )
        except TlsError as exc:
            raise StartupError(str(exc)) from exc
    engine.start()
    if encoder is not None:
        encoder.start()
    try:
        try:
            server = await serve(
                app.handle,
                config.server.host,
                config.server.port,
                process_request=app.process_request,
                ssl=tls,
                # Limits
                max_size=config.limits.ws_max_message_bytes,
                max_queue=16,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {config.server.port} on {config.server.host} is already in use: "
                    "stop the other server or pass --port"
                ) from exc
            raise StartupError(
                f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}"
            ) from exc
        try:
            yield Running(app=app, engine=engine, server=server)
        finally:
            await app.close()
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=2.0)
    finally:
        engine.stop()
        if encoder is not None:
            encoder.stop()


async def serve_forever(config: Config) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(config) as run:
        model = run.engine.model
        logger.info(
            "serving %s (%s, %d px) on %s, rendering at %d px on %s",
            model.name,
            model.arch,
            model.resolution,
            run.engine.device,
            run.engine.output_size,
            run.engine.device,
        )
        host = config.server.host
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        scheme = "https" if config.server.tls else "http"
        print(f"ganvj: open {scheme}://{shown}:{run.port}/ (Ctrl-C stops)", flush=True)
        await stop.wait()
        print("ganvj: stopping", flush=True)
