"""The patch bay: modulation routes, event triggers and MIDI mappings.

Pure state, changed only by commands on the render thread (`/mod/*`,
`/midi/*`), so it is saved in the show file as the commands that rebuild it.
Other threads (the audio callback, the MIDI input) read immutable snapshots
that the render thread swaps whole, and turn their events into Commands for
the engine's queue: nothing here touches a device or a socket.

A route adds `amount x source` (a source is 0..1) to the performer's own
value of a continuous command, so a fader keeps working under modulation and
the route never overwrites it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from server.commands import ArgSpec, Change, Command, CommandError, lookup, parse

# Limits
MAX_ROUTES = 64
MAX_TRIGGERS = 64
MAX_BINDINGS = 256

CONTINUOUS_SOURCES = (
    "audio/rms",
    "audio/bass",
    "audio/mid",
    "audio/high",
    "audio/onset",  # an envelope: 1 at each onset, decaying
    "tempo/phase",  # 0..1 through each beat
    "tempo/bar",  # 0..1 through each bar
)
EVENT_SOURCES = ("audio/onset", "tempo/beat", "tempo/bar")
# Addresses the patch never drives: itself, and tempo (a route would fight the clock).
_UNPATCHABLE = ("/mod/", "/midi/", "/tempo/bpm", "/tempo/link", "/feedback/")


def continuous_arg(address: str) -> ArgSpec:
    """The one ranged argument of a command a route or a CC may drive, or CommandError."""
    spec, _ = lookup(address)
    if address.startswith(_UNPATCHABLE):
        raise CommandError(f"{address}: cannot be patched")
    required = [arg for arg in spec.args if not arg.optional]
    if (
        not spec.settable
        or len(required) != 1
        or required[0].type == "s"
        or required[0].min is None
        or required[0].max is None
    ):
        raise CommandError(f"{address}: is not a continuous control (one number with a range)")
    return required[0]


def trigger_command(
    address: str, *, origin: object = None, received: float | None = None
) -> Command:
    """The command an event fires: `address` with no arguments, or CommandError."""
    if address.startswith(_UNPATCHABLE):
        raise CommandError(f"{address}: cannot be patched")
    return parse(address, [], origin=origin, received=received)


def scaled(arg: ArgSpec, fraction: float) -> float | int:
    """A 0..1 control position as a value of `arg` (a switch is on from one half)."""
    lo, hi = float(arg.min or 0.0), float(arg.max or 0.0)
    fraction = min(max(fraction, 0.0), 1.0)
    if arg.type == "i":
        if lo == 0.0 and hi == 1.0:
            return int(fraction >= 0.5)
        return round(lo + fraction * (hi - lo))
    return lo + fraction * (hi - lo)


@dataclass(frozen=True)
class Binding:
    """One MIDI control mapped to an address."""

    kind: str  # cc | cc14 | note
    channel: int  # 1..16
    number: int  # 0..127 (for cc14 the MSB controller, 0..31)
    target: str


@dataclass(frozen=True)
class Tables:
    """What other threads read: swapped whole by the render thread."""

    triggers: Mapping[str, tuple[str, ...]]
    bindings: Mapping[tuple[str, int, int], str]
    learning: str


class Sources:
    """The newest value of every continuous source; written by any thread, read per frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def update(self, values: Mapping[str, float]) -> None:
        """Set several sources at once (an audio block's features)."""
        with self._lock:
            merged = dict(self._values)
            merged.update({k: float(v) for k, v in values.items() if math.isfinite(v)})
            self._values = merged

    def snapshot(self) -> dict[str, float]:
        """A copy of every value now."""
        with self._lock:
            return dict(self._values)


class Patch:
    """Routes, triggers and MIDI bindings; the render thread is its only writer."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], float] = {}
        self.triggers: dict[tuple[str, str], None] = {}  # ordered set
        self.bindings: dict[tuple[str, int, int], str] = {}
        self.learning = ""
        self.tables = Tables(triggers={}, bindings={}, learning="")

    # Commands (render thread)

    def apply(self, command: Command, sources: Mapping[str, float] | None = None) -> list[Change]:
        """Apply one `/mod/*` or `/midi/*` command; the feedback to send."""
        name = command.name
        if command.query:
            return [Change(command.address, self.query(name, sources), command.origin)]
        if name == "/mod/route":
            source, target = str(command.args[0]), str(command.args[1])
            amount = float(command.args[2])  # type: ignore[arg-type]
            if source not in CONTINUOUS_SOURCES:
                raise CommandError(
                    f"/mod/route: unknown source {source!r}: one of {', '.join(CONTINUOUS_SOURCES)}"
                )
            if continuous_arg(target).type != "f":
                raise CommandError(f"/mod/route: {target} is a switch; route to a float control")
            if amount == 0.0:
                self.routes.pop((source, target), None)
            else:
                if (source, target) not in self.routes and len(self.routes) >= MAX_ROUTES:
                    raise CommandError(f"/mod/route: at most {MAX_ROUTES} routes")
                self.routes[(source, target)] = amount
        elif name == "/mod/trigger":
            source, target = str(command.args[0]), str(command.args[1])
            on = bool(command.args[2]) if len(command.args) > 2 else True
            if source not in EVENT_SOURCES:
                raise CommandError(
                    f"/mod/trigger: unknown source {source!r}: one of {', '.join(EVENT_SOURCES)}"
                )
            trigger_command(target)
            if not on:
                self.triggers.pop((source, target), None)
            else:
                if (source, target) not in self.triggers and len(self.triggers) >= MAX_TRIGGERS:
                    raise CommandError(f"/mod/trigger: at most {MAX_TRIGGERS} triggers")
                self.triggers[(source, target)] = None
        elif name == "/mod/clear":
            self.routes.clear()
            self.triggers.clear()
            self._swap()
            return [Change("/mod/route", self.query("/mod/route")), self._trigger_change()]
        elif name == "/midi/learn":
            target = str(command.args[0])
            if target:
                _check_midi_target(target)
            self.learning = target
        elif name == "/midi/bind":
            kind, target = str(command.args[0]), str(command.args[3])
            channel, number = int(command.args[1]), int(command.args[2])  # type: ignore[call-overload]
            key = (kind, channel, number)
            if kind == "cc14" and number > 31:
                raise CommandError("/midi/bind: a 14-bit CC is sent on controllers 0..31 (+32)")
            if not target:
                self.bindings.pop(key, None)
            else:
                if kind == "note":
                    _check_midi_note_target(target)
                else:
                    _check_midi_target(target)
                if key not in self.bindings and len(self.bindings) >= MAX_BINDINGS:
                    raise CommandError(f"/midi/bind: at most {MAX_BINDINGS} mappings")
                self.bindings[key] = target
                if self.learning == target:
                    self.learning = ""  # learned: learn mode ends
            self._swap()
            return [
                Change("/midi/bind", self.query("/midi/bind")),
                Change("/midi/learn", (self.learning,)),
            ]
        elif name == "/midi/clear":
            self.bindings.clear()
            self._swap()
            return [Change("/midi/bind", ())]
        else:
            raise CommandError(f"{command.address}: not a patch command")
        self._swap()
        if name == "/mod/trigger":
            return [self._trigger_change()]
        return [Change(name, self.query(name))]

    def query(self, name: str, sources: Mapping[str, float] | None = None) -> tuple[object, ...]:
        """The current value of a patch address, flattened (e.g. source, target, amount, ...)."""
        if name == "/mod/route":
            return tuple(v for (s, t), a in self.routes.items() for v in (s, t, a))
        if name == "/mod/trigger":
            return tuple(v for (s, t) in self.triggers for v in (s, t))
        if name == "/mod/sources":
            values = sources or {}
            return tuple(v for s in CONTINUOUS_SOURCES for v in (s, round(values.get(s, 0.0), 4)))
        if name == "/midi/learn":
            return (self.learning,)
        if name == "/midi/bind":
            return tuple(v for (k, c, n), t in self.bindings.items() for v in (k, c, n, t))
        raise CommandError(f"{name}: not a patch address")

    def state(self) -> list[Change]:
        """Every patch value, to greet a controller."""
        names = ("/mod/route", "/midi/learn", "/midi/bind")
        return [*(Change(name, self.query(name)) for name in names), self._trigger_change()]

    def commands(self) -> list[list[object]]:
        """The patch as [address, args] commands that rebuild it (the show file keeps these)."""
        out: list[list[object]] = []
        out += [["/mod/route", [s, t, a]] for (s, t), a in self.routes.items()]
        out += [["/mod/trigger", [s, t, 1]] for (s, t) in self.triggers]
        out += [["/midi/bind", [k, c, n, t]] for (k, c, n), t in self.bindings.items()]
        return out

    # Per frame (render thread)

    def offsets(self, values: Mapping[str, float]) -> dict[str, float]:
        """Target address -> the sum of amount x source over its routes."""
        out: dict[str, float] = {}
        for (source, target), amount in self.routes.items():
            value = values.get(source, 0.0)
            if value:
                out[target] = out.get(target, 0.0) + amount * value
        return out

    # Events (any thread: reads the swapped tables only)

    def fire(self, source: str, *, received: float | None = None) -> list[Command]:
        """The commands an event fires, e.g. /keyframe/next on each audio onset."""
        return [
            trigger_command(target, received=received)
            for target in self.tables.triggers.get(source, ())
        ]

    def _swap(self) -> None:
        triggers: dict[str, tuple[str, ...]] = {}
        for source, target in self.triggers:
            triggers[source] = (*triggers.get(source, ()), target)
        self.tables = Tables(
            triggers=triggers, bindings=dict(self.bindings), learning=self.learning
        )

    def _trigger_change(self) -> Change:
        return Change("/mod/trigger", self.query("/mod/trigger"))


def _check_midi_target(target: str) -> None:
    try:
        continuous_arg(target)
    except CommandError:
        _check_midi_note_target(target)  # a button: a CC above half fires it


def _check_midi_note_target(target: str) -> None:
    try:
        trigger_command(target)
    except CommandError:
        arg = continuous_arg(target)  # a note held as a switch, or velocity as a level
        if arg.type == "s":
            raise
