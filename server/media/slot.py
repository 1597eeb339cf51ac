"""A latest-value slot: the hand-off between pipeline stages.

Never a FIFO. A writer replaces the value; a reader asks for anything newer
than what it last saw and skips straight to the newest, so a slow stage drops
frames instead of building latency.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds the newest value and its sequence number; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: T | None = None
        self._seq = 0
        self._closed = False

    def put(self, value: T) -> int:
        """Replace the value and wake every waiter; returns the new sequence number."""
        with self._cond:
            self._value = value
            self._seq += 1
            self._cond.notify_all()
            return self._seq

    def latest(self) -> tuple[int, T | None]:
        """The newest value and its sequence number (0, None before the first put)."""
        with self._cond:
            return self._seq, self._value

    def wait_newer(self, seen: int, timeout: float) -> tuple[int, T | None]:
        """Block until a value newer than `seen` arrives, the timeout passes, or close().

        Returns the newest (seq, value); seq == seen means nothing newer came.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq <= seen and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._seq, self._value

    def close(self) -> None:
        """Wake every waiter for good (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        with self._cond:
            return self._closed
