"""`/record/start` and `/record/stop`: the set's video and its performance log together.

The commands run on the render thread between frames, like every engine
command; they only start or stop threads, never wait for a disk. The video
(video_file.Recording) takes the shared encoder's packets from the event loop;
the log (perflog.PerfLog) takes every frame from the render thread, starting
with the state after the frame that applied `/record/start`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from server.commands import Change, Command, error
from server.engine import Engine
from server.media.stream import EncodedFrame
from server.outputs.perflog import PerfLog
from server.outputs.video_file import CONTAINERS, RecordError, Recording, check_name, unused_path

logger = logging.getLogger(__name__)

STATE = "/record/state"


class Recorder:
    """Owns the current recording; its commands are registered with the engine."""

    def __init__(
        self,
        *,
        engine: Engine,
        folder: Path,
        codec: str,
        request_keyframe: Callable[[], None] | None,
    ) -> None:
        self.engine = engine
        self.folder = folder
        self.codec = codec
        # None: no shared encoder (per-viewer encoding), so only the log is kept.
        self._request_keyframe = request_keyframe
        self.video: Recording | None = None
        self.log: PerfLog | None = None
        self.name = ""
        self.last_error = ""
        self._log_pending = False
        self._lock = threading.Lock()
        engine.serve("/record/start", self._start)
        engine.serve("/record/stop", self._stop)
        engine.serve(STATE, self._state)

    # -- event loop -----------------------------------------------------------

    def offer(self, encoded: EncodedFrame) -> None:
        """A PacketHub listener: every encoded frame (event loop)."""
        video = self.video
        if video is not None:
            video.offer(encoded)

    def status(self) -> dict[str, object]:
        """Numbers for /api/status."""
        video, log = self.video, self.log
        return {
            "recording": self.recording,
            "name": self.name,
            "frames": video.frames if video else 0,
            "bytes": video.bytes if video else 0,
            "dropped": video.dropped if video else 0,
            "logged_frames": log.frames if log else 0,
            "error": self.last_error,
        }

    @property
    def recording(self) -> bool:
        """True while a recording runs."""
        return self.log is not None or (self.video is not None and self.video.active)

    # -- render thread -----------------------------------------------------------

    def _start(self, command: Command, now: float) -> list[Change]:
        if self.recording:
            return [error(command, f"already recording {self.name}; send /record/stop first")]
        stem = str(command.args[0]) if command.args else time.strftime("set-%Y%m%d-%H%M%S")
        try:
            check_name(stem)
            self.folder.mkdir(parents=True, exist_ok=True)
        except (RecordError, OSError) as exc:
            return [error(command, str(exc))]
        _, suffix, _ = CONTAINERS[self.codec]
        path = unused_path(self.folder, stem, suffix)
        self.name = path.stem
        self.last_error = ""
        if self._request_keyframe is not None:
            self.video = Recording(
                path=path,
                codec=self.codec,
                request_keyframe=self._request_keyframe,
                on_end=self._video_ended,
            )
        self.log = PerfLog(path.with_suffix(".perf.jsonl"))
        self._log_pending = True
        self.engine.log_steps(self._step)
        logger.info("recording %s", path)
        return [self._change()]

    def _stop(self, command: Command, now: float) -> list[Change]:
        if not self.recording:
            return [Change(STATE, self._state_args(), command.origin)]
        self.finish()
        return [self._change()]

    def _state(self, command: Command, now: float) -> list[Change]:
        return [Change(STATE, self._state_args(), command.origin)]

    def _step(
        self, index: int, now: float, dt: float, batches: Sequence[Sequence[Command]]
    ) -> None:
        log = self.log
        if log is None:
            return
        if self._log_pending:
            self._log_pending = False
            log.start(self.engine, index, now)
        else:
            log.step(self.engine, index, now, dt, batches)
        if log.error is not None and not self.last_error:
            self.last_error = log.error
            self._report()

    # -- any thread ----------------------------------------------------------------

    def finish(self) -> None:
        """Stop the recording without waiting for the disk."""
        with self._lock:
            video, log = self.video, self.log
            self.log = None
            self.engine.log_steps(None)
        if log is not None:
            log.close()
        if video is not None:
            video.stop(timeout=0.0)

    def close(self, timeout: float = 5.0) -> None:
        """Stop and wait for the files (shutdown)."""
        video, log = self.video, self.log
        self.finish()
        if video is not None:
            video.stop(timeout)
        if log is not None:
            log.join(timeout)

    def _video_ended(self, video: Recording) -> None:
        # The writer thread: a full disk or a failed write ends the whole recording.
        if video.error is not None:
            self.last_error = video.error
            self.finish()
        self._report()

    def _state_args(self) -> tuple[object, ...]:
        return (int(self.recording), self.name, self.last_error)

    def _change(self) -> Change:
        return Change(STATE, self._state_args())

    def _report(self) -> None:
        self.engine.report([self._change()])
