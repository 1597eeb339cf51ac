"""The outputs as one layer of the server's stack: recorder, NDI sender, Janus forwarder.

Started after the engine and the shared encoder, stopped before them. Each
output takes frames from the latest-frame slot or packets from the PacketHub
and works on a thread of its own, so none can slow the render loop, the
encoder or the WebRTC viewers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType

from server.config import Config
from server.engine import Engine
from server.media.stream import PacketHub, StreamEncoder
from server.outputs.recorder import Recorder

logger = logging.getLogger(__name__)


class Outputs:
    """Every place frames go besides the viewers; an async context manager."""

    def __init__(
        self,
        *,
        config: Config,
        engine: Engine,
        hub: PacketHub | None,
        encoder: StreamEncoder | None,
        folder: Path,
    ) -> None:
        self.config = config
        self.engine = engine
        self.hub = hub
        self.encoder = encoder
        self.recorder = Recorder(
            engine=engine,
            folder=folder,
            codec=config.stream.codec,
            request_keyframe=encoder.request_keyframe if encoder is not None else None,
        )
        if hub is not None:
            hub.listeners.append(self.recorder.offer)

    async def __aenter__(self) -> Outputs:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.recorder.close)

    def status(self) -> dict[str, object]:
        """The /api/status section."""
        return {"recording": self.recorder.status()}
