"""The outputs as one layer of the server's stack: recorder, NDI senders, Janus forwarder,
and the projector rig's commands (`/out/NAME/...`, `/output/testcard`).

Started after the engine and the shared encoder, stopped before them. Each
output takes frames from the latest-frame slot or packets from the PacketHub
and works on a thread of its own, so none can slow the render loop, the
encoder or the WebRTC viewers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from server.commands import Change, Command, error, owned_by
from server.config import Config
from server.engine import Engine
from server.media.frame import Frame
from server.media.stream import PacketHub, StreamEncoder
from server.outputs.janus import JanusError, JanusForwarder
from server.outputs.ndi import NdiSender
from server.outputs.recorder import Recorder
from server.outputs.rig import OutputRig
from server.outputs.testcard import CardCache
from server.outputs.warp import Warper

logger = logging.getLogger(__name__)


class OutputError(RuntimeError):
    """A configured output that cannot start; the message says why."""


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
        rig: OutputRig | None = None,
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
        self.ndi = NdiSender(
            frames=engine.frames, fps=config.render.fps, name=config.output.ndi_name
        )
        engine.serve("/output/ndi", self._ndi_command)
        self.janus: JanusForwarder | None = None
        # Projector outputs: the rig answers their commands on the render thread;
        # an output with ndi = true is also sent as its own source, warped here.
        self.rig = rig if rig is not None else OutputRig(config.outputs)
        for pattern in owned_by("outputs"):
            if pattern.startswith("/out/") or pattern == "/output/testcard":
                engine.serve(pattern, self._rig_command)
        self.output_ndi: dict[str, NdiSender] = {}
        self._ndi_lock = threading.Lock()
        self._started = False
        self.rig.listen(lambda rig: self._sync_output_ndi())

    async def __aenter__(self) -> Outputs:
        if self.config.output.ndi:
            why = await asyncio.to_thread(self.ndi.start)
            if why is not None:
                logger.error("output.ndi: %s", why)
        if self.config.output.janus:
            await self._start_janus()
        self._started = True
        await asyncio.to_thread(self._sync_output_ndi)
        return self

    async def _start_janus(self) -> None:
        if self.hub is None:
            raise OutputError("output.janus needs the shared encoder (stream.shared_encoder)")
        forwarder = JanusForwarder(config=self.config, hub=self.hub)
        try:
            await forwarder.start()
        except JanusError as exc:
            await forwarder.close()
            # A configured Janus that cannot be reached stops the start, with the reason.
            raise OutputError(f"output.janus: {exc}") from exc
        self.janus = forwarder

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.janus is not None:
            await self.janus.close()
        await asyncio.to_thread(self.recorder.close)
        await asyncio.to_thread(self.ndi.stop, 2.0)
        self._started = False
        with self._ndi_lock:
            senders, self.output_ndi = list(self.output_ndi.values()), {}
        for sender in senders:
            await asyncio.to_thread(sender.stop, 2.0)

    def status(self) -> dict[str, object]:
        """The /api/status section."""
        return {
            "recording": self.recorder.status(),
            "ndi": self.ndi.status(),
            "janus": self.janus.status() if self.janus is not None else None,
            "projectors": {
                "outputs": sorted(self.rig.outputs),
                "testcard": self.rig.testcard,
                "ndi": {name: s.status() for name, s in self.output_ndi.items()},
            },
        }

    def viewer_route(self) -> dict[str, object]:
        """GET /api/viewer: where the / page plays from (a Janus mountpoint, or here)."""
        public = self.config.output.janus_public_url
        mount = self.janus.mountpoint if self.janus is not None else None
        if public and mount is not None:
            return {"janus": public, "mountpoint": mount.id}
        return {"janus": None}

    def _ndi_command(self, command: Command, now: float) -> list[Change]:
        """/output/ndi (render thread): loading the NDI runtime happens off it."""
        if command.query:
            return [Change(command.address, (int(self.ndi.running),), command.origin)]
        if not command.args[0]:
            self.ndi.stop()
            return [Change(command.address, (0,))]

        def start() -> None:
            why = self.ndi.start()
            change = error(command, why) if why else Change(command.address, (1,))
            self.engine.report([change])

        self.engine.start_io(start)
        return []

    def _rig_command(self, command: Command, now: float) -> list[Change]:
        """/out/NAME/... and /output/testcard (render thread): the rig's answer."""
        return self.rig.apply(command)

    def _sync_output_ndi(self) -> None:
        """Start an NDI sender for each output with ndi on; stop the others (any thread)."""
        if not self._started:
            return
        wanted = {name for name, m in self.rig.outputs.items() if m.ndi}
        with self._ndi_lock:
            stale = [n for n in self.output_ndi if n not in wanted]
            stopped = [self.output_ndi.pop(n) for n in stale]
            fresh = []
            for name in sorted(wanted - set(self.output_ndi)):
                sender = NdiSender(
                    frames=self.engine.frames,
                    fps=self.config.render.fps,
                    name=f"{self.ndi.name} {name}",
                    transform=self._warp_for(name),
                )
                self.output_ndi[name] = sender
                fresh.append(sender)
        for sender in stopped:
            sender.stop()
        for sender in fresh:

            def start(sender: NdiSender = sender) -> None:
                why = sender.start()
                if why is not None:
                    logger.error("NDI output %s: %s", sender.name, why)

            # Loading the NDI runtime may take a moment: never on the render thread.
            self.engine.start_io(start)

    def _warp_for(self, name: str) -> Callable[[Frame], Frame | None]:
        warper = Warper()
        cards = CardCache()

        def warp(frame: Frame) -> Frame | None:
            mapping = self.rig.get(name)
            if mapping is None:
                return None
            if self.rig.testcard:  # drawn here, on the sender's thread, then warped alike
                frame = cards.frame(mapping, frame)
            return warper.warp(frame, mapping)

        return warp
