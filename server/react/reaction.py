"""When, how and how strongly the picture reacts to incoming video.

Pure and clock-driven, like the play state: the render thread passes `now`.
A reaction fades in when triggered and fades back to latent play when its
time is up, when it is stopped, or when its source stops, stalls or
disconnects: the show never cuts to black, and `reason` says why it ended.
"""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("pix2pix", "mirror", "feedback")


@dataclass(frozen=True)
class Ramp:
    """A straight fade of the reaction level from one value to another."""

    start: float
    end: float
    at: float
    seconds: float

    def value(self, now: float) -> float:
        """The level at `now`: exact at both ends."""
        if self.seconds <= 0.0 or now >= self.at + self.seconds:
            return self.end
        if now <= self.at:
            return self.start
        return self.start + (self.end - self.start) * (now - self.at) / self.seconds


class Reaction:
    """The reaction's mode, mix and fade envelope."""

    def __init__(
        self, *, fade_seconds: float = 0.5, stall_seconds: float = 1.0, mode: str = "pix2pix"
    ) -> None:
        self.fade_seconds = fade_seconds
        self.stall_seconds = stall_seconds
        self.mode = mode
        self.mix = 1.0  # how much of the reaction shows at full level
        self.smoothing = 0.0  # blend of each output frame with the previous one
        self.inject = 0.0  # feedback: share of fresh picture entering the loop each frame
        self.active = False
        self.reason: str | None = None  # why the last reaction ended
        self.ends_at: float | None = None
        self._ramp = Ramp(0.0, 0.0, 0.0, 0.0)

    def level(self, now: float) -> float:
        """0 = pure latent play, 1 = full reaction (before `mix`)."""
        return self._ramp.value(now)

    def weight(self, now: float) -> float:
        """How much of the reaction shows in the frame at `now`."""
        return self.level(now) * self.mix

    def set_mode(self, mode: str) -> None:
        """Switch mode (takes effect on the running reaction too)."""
        if mode not in MODES:
            raise ValueError(f"unknown reaction mode {mode!r}: expected {', '.join(MODES)}")
        self.mode = mode

    def trigger(self, now: float, seconds: float | None = None) -> None:
        """Start (or restart) the reaction; after `seconds`, fade back (None: until stopped)."""
        self._ramp = Ramp(self.level(now), 1.0, now, self.fade_seconds)
        self.active = True
        self.reason = None
        self.ends_at = None if not seconds else now + seconds

    def stop(self, now: float, reason: str = "stopped") -> None:
        """Fade back to latent play from wherever the level is."""
        if not self.active:
            return
        self._ramp = Ramp(self.level(now), 0.0, now, self.fade_seconds)
        self.active = False
        self.ends_at = None
        self.reason = reason

    def needs_input(self) -> bool:
        """Pix2pix and mirror follow the source; feedback only seeds from it."""
        return self.mode in ("pix2pix", "mirror")

    def update(self, now: float, *, input_age: float | None, source_ended: str | None) -> None:
        """Once per frame: end on time, or when the source is gone or stalled."""
        if not self.active:
            return
        if self.ends_at is not None and now >= self.ends_at:
            self.stop(self.ends_at, "finished")
        elif self.needs_input():
            if input_age is None:
                self.stop(now, f"no input: {source_ended}" if source_ended else "no input")
            elif input_age > self.stall_seconds:
                self.stop(now, f"input stalled for {input_age:.1f} s")

    def status(self, now: float) -> dict[str, object]:
        """The reaction's state for /api/status and queries."""
        return {
            "mode": self.mode,
            "active": self.active,
            "level": round(self.level(now), 3),
            "mix": self.mix,
            "inject": self.inject,
            "smoothing": self.smoothing,
            "reason": self.reason,
            "ends_in_s": None if self.ends_at is None else round(self.ends_at - now, 2),
        }
