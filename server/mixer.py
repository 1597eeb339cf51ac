"""The mixer: crossfader, curve, blend mode, each deck's fader, and beat-quantized cuts and fades.

Pure and clock-driven, like the master output: the render thread applies
`/mix/*` and `/deck/X/dim`, and asks `position(now)` for this frame's
crossfade. The pictures are mixed on the device by models.mixing, just before
the one colour conversion that applies the master grade.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.commands import DECKS, Change, Command, CommandError, deck_address
from server.tempo import TempoClock

MIX_ADDRESSES = ("/mix/crossfade", "/mix/curve", "/mix/blend")


@dataclass(frozen=True)
class _Fade:
    """A scheduled move of the crossfader: from `start` (monotonic s) to `end`, toward `to`."""

    start: float
    end: float
    to: float


class Mixer:
    """The mixer's state; the render thread is its only user."""

    def __init__(self, tempo: TempoClock) -> None:
        self.tempo = tempo
        self.crossfade = 0.0
        self.curve = "linear"
        self.mode = "normal"
        self.dims = dict.fromkeys(DECKS, 1.0)
        self._fade: _Fade | None = None
        self._from = 0.0
        self._events: list[Change] = []

    def position(self, now: float) -> float:
        """The crossfade at `now`, moving a scheduled cut or fade along (and ending it)."""
        fade = self._fade
        if fade is None:
            return self.crossfade
        if now < fade.start:
            return self._from
        if now >= fade.end:
            self._fade = None
            self.crossfade = fade.to
            self._events.append(Change("/mix/crossfade", (self.crossfade,)))
            return self.crossfade
        t = (now - fade.start) / (fade.end - fade.start)
        return self._from + (fade.to - self._from) * t

    def take_changes(self) -> list[Change]:
        """Changes that happened with time (a cut or fade landing)."""
        events, self._events = self._events, []
        return events

    def apply(self, command: Command, now: float) -> list[Change]:
        """Apply one `/mix/*` or deck `/dim` command; the feedback to send."""
        name, args = command.name, command.args
        if command.query:
            return [Change(command.address, self.query(name, command.deck), command.origin)]
        if name == "/mix/crossfade":
            self._fade = None
            self.crossfade = float(args[0])  # type: ignore[arg-type]
        elif name == "/mix/curve":
            self.curve = str(args[0])
        elif name == "/mix/blend":
            self.mode = str(args[0])
        elif name in ("/mix/cut", "/mix/fade"):
            beats = float(args[0]) if args else 0.0  # type: ignore[arg-type]
            self._schedule(now, beats)
            return []  # reported when it lands
        elif name == "/dim":
            self.dims[command.deck] = float(args[0])  # type: ignore[arg-type]
            return [Change(command.address, (self.dims[command.deck],))]
        else:
            raise CommandError(f"{command.address}: not a mixer command")
        return [Change(name, self.query(name, command.deck))]

    def _schedule(self, now: float, beats: float) -> None:
        """Toward the other deck, starting on the next beat, over `beats` (0: a cut)."""
        current = self.position(now)
        start = self.tempo.next_beat(now)
        self._from = current
        self._fade = _Fade(
            start=start,
            end=start + self.tempo.beats_to_seconds(beats),
            to=0.0 if current >= 0.5 else 1.0,
        )

    def query(self, name: str, deck: str = "a") -> tuple[object, ...]:
        """The current value of a mixer address (`/dim`: of that deck)."""
        if name == "/mix/crossfade":
            return (self.crossfade,)
        if name == "/mix/curve":
            return (self.curve,)
        if name == "/mix/blend":
            return (self.mode,)
        if name == "/dim":
            return (self.dims[deck],)
        raise CommandError(f"{name}: not a mixer address")

    def state(self) -> list[Change]:
        """Every mixer value, to greet a controller."""
        changes = [Change(name, self.query(name)) for name in MIX_ADDRESSES]
        changes += [Change(deck_address(d, "/dim"), (self.dims[d],)) for d in DECKS]
        return changes
