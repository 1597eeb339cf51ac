"""Meters: event rates for /api/status, and the render-to-encoded lead for the tempo clock."""

from __future__ import annotations

import collections
import threading
import time
from typing import Protocol

from server.media.frame import Frame
from server.tempo import TempoClock


class Encoded(Protocol):
    """An encoded frame as the lead meter reads it (server.media.stream.EncodedFrame)."""

    @property
    def frame(self) -> Frame:
        """The rendered frame it encodes."""
        ...

    @property
    def encoded_at(self) -> float:
        """time.monotonic() when the encode finished."""
        ...


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


class LeadMeter:
    """Measures render-start-to-encoded time and sets the tempo clock's render lead."""

    def __init__(self, tempo: TempoClock, *, display_ms: float) -> None:
        self._tempo = tempo
        self._display = display_ms / 1000.0
        self._average: float | None = None

    def observe(self, encoded: Encoded) -> None:
        """One encoded frame (event loop)."""
        frame = encoded.frame
        started = frame.rendered_at - frame.render_ms / 1000.0
        seconds = max(0.0, encoded.encoded_at - started)
        self._average = seconds if self._average is None else 0.95 * self._average + 0.05 * seconds
        self._tempo.lead_seconds = self._average + self._display
