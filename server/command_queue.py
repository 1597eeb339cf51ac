"""The one bounded queue between every controller and the render thread.

Controllers (on the event loop) put validated batches in; the render thread
takes them all between two frames. A full queue refuses a batch at once (the
caller says "busy") rather than letting commands pile up behind a slow model.
The queue exists before the engine and the control hub, so each is given the
other's end through its constructor: the hub submits here, the engine drains.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence

from server.commands import Command

Batch = Sequence[Command]  # commands applied together, between two frames


class CommandQueue:
    """Batches of commands with their arrival time; wakes the render thread on each."""

    def __init__(self, size: int = 256) -> None:
        self._queue: queue.Queue[tuple[Batch, float]] = queue.Queue(maxsize=size)
        self.wake = threading.Event()  # set by submit(): render the change now
        self.dropped = 0  # batches refused because the queue was full

    def submit(self, batch: Batch) -> bool:
        """Queue commands to apply together before the next frame; False if the queue is full."""
        # Latency is measured from the packet's arrival where the controller noted it.
        received = [c.received for c in batch if c.received is not None]
        arrived = min(received) if received else time.monotonic()
        try:
            self._queue.put_nowait((batch, arrived))
        except queue.Full:
            self.dropped += 1
            return False
        self.wake.set()
        return True

    def drain(self) -> list[tuple[Batch, float]]:
        """Every batch queued so far, oldest first (the render thread, between frames)."""
        drained: list[tuple[Batch, float]] = []
        while True:
            try:
                drained.append(self._queue.get_nowait())
            except queue.Empty:
                return drained
