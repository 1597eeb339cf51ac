"""The beat grid: tempo, tap tempo, quantization, and an optional Ableton Link source.

`TempoClock` is pure and clock-driven (times are monotonic seconds passed in),
so it is tested with a simulated clock. `LinkSource` is the only part with
I/O: an asyncio task that samples an `aalink.Link` session and hands the grid
to the clock; without `aalink` installed it reports Link unavailable and the
clock keeps its own tempo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

# Limits
MIN_BPM = 20.0
MAX_BPM = 300.0
TAP_GAP_SECONDS = 2.0  # a pause longer than this starts a new tap sequence
TAP_HISTORY = 8  # intervals averaged
MAX_LEAD_SECONDS = 1.0


@dataclass(frozen=True)
class BeatSample:
    """A reading of an external beat clock: at monotonic `time`, it was at `beat`."""

    time: float
    beat: float
    bpm: float


@dataclass(frozen=True)
class BeatGrid:
    """Where beat 0 fell and how long a beat lasts: the whole tempo, swapped as one value."""

    origin: float  # monotonic time of beat 0
    period: float  # seconds per beat


class TempoClock:
    """Tempo and beat phase; answers "when is the next beat or bar" in monotonic seconds."""

    def __init__(self, *, bpm: float = 120.0, beats_per_bar: int = 4, origin: float = 0.0) -> None:
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise ValueError(f"bpm {bpm} is out of range {MIN_BPM:g}..{MAX_BPM:g}")
        if beats_per_bar < 1:
            raise ValueError(f"beats_per_bar must be at least 1, got {beats_per_bar}")
        self.beats_per_bar = beats_per_bar
        # One immutable grid, swapped whole: the Link task (event loop) and the
        # render thread never see half an update.
        self._grid = BeatGrid(origin=origin, period=60.0 / bpm)
        self._lead = 0.0
        self._taps: list[float] = []
        self.link_available = False  # set by LinkSource when aalink is running
        self.link_wanted = False  # /tempo/link: follow Link when it is available
        self.link_request_bpm: float | None = None  # a /tempo/bpm for LinkSource to push

    # Tempo

    @property
    def bpm(self) -> float:
        """Beats per minute."""
        return 60.0 / self._grid.period

    @property
    def following_link(self) -> bool:
        """True when the grid comes from Ableton Link."""
        return self.link_available and self.link_wanted

    def set_bpm(self, bpm: float, now: float) -> None:
        """Change tempo keeping the beat position at `now` (no jump in phase)."""
        bpm = min(max(bpm, MIN_BPM), MAX_BPM)
        if self.following_link:
            self.link_request_bpm = bpm
            return
        beat = self.beat_at(now)
        period = 60.0 / bpm
        self._grid = BeatGrid(origin=now - beat * period, period=period)

    def tap(self, now: float) -> float | None:
        """Register a tap; the new bpm once two taps are close enough, else None."""
        if self._taps and (now - self._taps[-1] > TAP_GAP_SECONDS or now <= self._taps[-1]):
            self._taps.clear()
        self._taps.append(now)
        del self._taps[: -(TAP_HISTORY + 1)]
        if len(self._taps) < 2:
            return None
        interval = (self._taps[-1] - self._taps[0]) / (len(self._taps) - 1)
        bpm = min(max(60.0 / interval, MIN_BPM), MAX_BPM)
        if self.following_link:
            self.link_request_bpm = bpm
            return bpm
        # The last tap is on a beat.
        period = 60.0 / bpm
        beat = round(self.beat_at(now))
        self._grid = BeatGrid(origin=now - beat * period, period=period)
        return bpm

    def follow(self, sample: BeatSample) -> None:
        """Take the grid from an external clock (Ableton Link)."""
        if not (math.isfinite(sample.bpm) and math.isfinite(sample.beat)):
            return
        period = 60.0 / min(max(sample.bpm, MIN_BPM), MAX_BPM)
        self._grid = BeatGrid(origin=sample.time - sample.beat * period, period=period)

    def grid(self) -> tuple[float, float]:
        """The beat grid: (monotonic time of beat 0, seconds per beat)."""
        grid = self._grid
        return grid.origin, grid.period

    def set_grid(self, origin: float, period: float) -> None:
        """Put back a grid read by `grid()` (an offline replay of a performance)."""
        if not (math.isfinite(origin) and math.isfinite(period) and period > 0.0):
            raise ValueError(
                f"a beat grid needs a finite origin and period, got {origin}, {period}"
            )
        self._grid = BeatGrid(origin=origin, period=period)

    # Output latency

    @property
    def lead_seconds(self) -> float:
        """How far ahead of the beat a frame is rendered, to land on it on screen."""
        return self._lead

    @lead_seconds.setter
    def lead_seconds(self, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"lead_seconds must be finite, got {value}")
        self._lead = min(max(value, 0.0), MAX_LEAD_SECONDS)

    # Grid

    def beat_at(self, now: float) -> float:
        """Beat position (fractional) at monotonic time `now`."""
        grid = self._grid
        return (now - grid.origin) / grid.period

    def time_of_beat(self, beat: float) -> float:
        """Monotonic time of a beat position."""
        grid = self._grid
        return grid.origin + beat * grid.period

    def next_beat(self, now: float) -> float:
        """Render time of the next beat at or after `now`, moved earlier by the lead."""
        return self._next_multiple(now, 1)

    def next_bar(self, now: float) -> float:
        """Render time of the next bar line at or after `now`, moved earlier by the lead."""
        return self._next_multiple(now, self.beats_per_bar)

    def beats_to_seconds(self, beats: float) -> float:
        """Duration of this many beats at the current tempo."""
        return beats * self._grid.period

    def seconds_to_beats(self, seconds: float) -> float:
        """How many beats last this long at the current tempo."""
        return seconds / self._grid.period

    def _next_multiple(self, now: float, every: int) -> float:
        lead = self._lead
        # The frame rendered at t is on screen at t + lead: find the first grid
        # line whose screen time is not already past.
        position = self.beat_at(now + lead) / every
        index = math.ceil(position - 1e-9)
        return self.time_of_beat(index * every) - lead


class LinkSource:
    """Feeds a TempoClock from an Ableton Link session (aalink), when installed."""

    def __init__(self, clock: TempoClock, *, poll_seconds: float = 0.02) -> None:
        self._clock = clock
        self._poll = poll_seconds
        self._link: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        """True when aalink is installed and the session is running."""
        return self._link is not None

    @property
    def peers(self) -> int:
        """How many other Link peers are in the session (for `/api/status`)."""
        return int(self._link.num_peers) if self._link is not None else 0

    async def __aenter__(self) -> LinkSource:
        try:
            from aalink import Link  # optional dependency
        except ImportError:
            logger.info("aalink is not installed: Ableton Link is off, tempo from /tempo/bpm")
            return self
        try:
            self._link = Link(self._clock.bpm)  # binds to the running loop
            self._link.quantum = self._clock.beats_per_bar
        except Exception:
            logger.exception("Ableton Link could not start; tempo from /tempo/bpm")
            self._link = None
            return self
        self._clock.link_available = True
        self._task = asyncio.create_task(self._run(), name="link-source")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._clock.link_available = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._link is not None:
            self._link.enabled = False
            self._link = None

    async def _run(self) -> None:
        link = self._link
        while True:
            try:
                if link.enabled != self._clock.link_wanted:
                    link.enabled = self._clock.link_wanted
                request = self._clock.link_request_bpm
                if request is not None:
                    self._clock.link_request_bpm = None
                    link.tempo = request
                if link.enabled:
                    self._clock.follow(
                        BeatSample(time=time.monotonic(), beat=link.beat, bpm=link.tempo)
                    )
            except Exception:
                logger.exception("Ableton Link poll failed")
            await asyncio.sleep(self._poll)
