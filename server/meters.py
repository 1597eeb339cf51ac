"""Rates for /api/status: events per second over a sliding window."""

from __future__ import annotations

import collections
import threading
import time


class RateMeter:
    """Events per second over a sliding window; thread-safe enough for stats."""

    def __init__(self, window: float = 2.0) -> None:
        self._window = window
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        """Record one event."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        """Events per second over the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-6)
            return (
                (len(self._times) - 1) / span
                if span < self._window
                else len(self._times) / self._window
            )

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()
