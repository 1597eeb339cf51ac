"""A small progress bar on stderr, with rate and ETA (no tqdm dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """12:34 or 1:02:03."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Counts work done out of a total and redraws at most every `interval` seconds."""

    def __init__(
        self,
        *,
        total: int,
        desc: str,
        unit: str = "it",
        stream: TextIO | None = None,
        interval: float = 0.5,
        initial: int = 0,
    ) -> None:
        self.total = max(0, total)
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.done = initial
        self.initial = initial
        self.postfix = ""
        self.start = time.monotonic()
        self.last_draw = 0.0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, n: int = 1, *, postfix: str | None = None) -> None:
        """Add n to the count and redraw when due."""
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        now = time.monotonic()
        if now - self.last_draw >= self.interval or self.done >= self.total:
            self.last_draw = now
            self.draw(now)

    def line(self, now: float) -> str:
        """The bar as text: desc, bar, count, rate, elapsed < ETA, postfix."""
        elapsed = now - self.start
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        width = 24
        filled = int(width * min(frac, 1.0))
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta_text = format_seconds(eta) if eta == eta else "?"
        bar = "#" * filled + "-" * (width - filled)
        text = (
            f"{self.desc} [{bar}] {self.done}/{self.total} {rate:.1f} {self.unit}/s "
            f"{format_seconds(elapsed)}<{eta_text}"
        )
        return f"{text} {self.postfix}".rstrip()

    def draw(self, now: float | None = None) -> None:
        """Write the bar: in place on a terminal, one line per draw otherwise."""
        text = self.line(time.monotonic() if now is None else now)
        if self.tty:
            self.stream.write("\r" + text + "\033[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        self.draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
