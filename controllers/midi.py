"""MIDI controllers: knobs and pads in, LEDs out, MIDI clock as a tempo source.

`MidiDecoder` is the pure core: a MIDI message and the patch's tables (the
bindings, the address being learned) in, Commands out. A CC drives a
continuous command (7-bit, or 14-bit as an MSB on 0..31 plus its LSB on +32);
a note fires a trigger. In learn mode the first control moved becomes a
`/midi/bind` command, so a mapping is made, saved and restored like any other
state. `MidiClock` turns 24-per-beat clock ticks into beat samples for the
tempo clock. `leds()` says which pads light for the current keyframe.

`MidiPorts` is the I/O: mido over python-rtmidi (ALSA, or JACK MIDI), ports
opened by name. rtmidi calls back on a thread of its own; the decoder's
commands go to the engine's queue from there.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.commands import Change, Command, CommandError, parse
from server.patch import Tables, continuous_arg, scaled, trigger_command
from server.tempo import BeatSample

logger = logging.getLogger(__name__)

TICKS_PER_BEAT = 24
CLOCK_AVERAGE_TICKS = 48  # two beats of ticks average the tempo
CLOCK_TIMEOUT_S = 1.0  # no tick for this long: the clock has stopped
_JUMP = re.compile(r"^/keyframe/(\d+)/jump$")


@dataclass(frozen=True)
class Event:
    """One MIDI message, reduced to what mapping needs (channel is 1-based)."""

    kind: str  # cc | note_on | note_off
    channel: int
    number: int
    value: int  # CC value or velocity


def event_of(message: Any) -> Event | None:
    """A mido message as an Event, or None for messages that map to nothing."""
    kind = getattr(message, "type", None)
    if kind == "control_change":
        return Event("cc", message.channel + 1, message.control, message.value)
    if kind in ("note_on", "note_off"):
        velocity = message.velocity if kind == "note_on" else 0
        return Event(
            "note_on" if velocity else "note_off", message.channel + 1, message.note, velocity
        )
    return None


@dataclass
class MidiDecoder:
    """MIDI events -> Commands, through the patch's bindings; learn mode binds."""

    origin: object = None
    _msb: dict[tuple[int, int], int] = field(default_factory=dict)  # (channel, cc) -> MSB
    _lsb: dict[tuple[int, int], int] = field(default_factory=dict)
    _learned: tuple[int, int, str] | None = None  # (channel, cc, target) of a 7-bit learn

    def decode(self, event: Event, tables: Tables, received: float | None = None) -> list[Command]:
        """The commands one event sends now (often none)."""
        if event.kind == "cc" and self._learned is not None:
            learned = self._learned
            self._learned = None
            # The LSB right after a learned MSB: the control is 14-bit.
            if event.channel == learned[0] and event.number == learned[1] + 32:
                ch, msb, target = learned
                return [
                    parse("/midi/bind", ["cc", ch, msb, ""]),
                    parse("/midi/bind", ["cc14", ch, msb, target]),
                ]
        if tables.learning:
            return self._learn(event, tables.learning)
        try:
            return self._map(event, tables, received)
        except CommandError as exc:
            logger.debug("MIDI %s: %s", event, exc)
            return []

    def _learn(self, event: Event, target: str) -> list[Command]:
        if event.kind == "cc":
            self._learned = (event.channel, event.number, target) if event.number < 32 else None
            return [parse("/midi/bind", ["cc", event.channel, event.number, target])]
        if event.kind == "note_on":
            self._learned = None
            return [parse("/midi/bind", ["note", event.channel, event.number, target])]
        return []

    def _map(self, event: Event, tables: Tables, received: float | None) -> list[Command]:
        bindings = tables.bindings
        if event.kind == "cc":
            key = (event.channel, event.number)
            target = bindings.get(("cc", event.channel, event.number))
            if target is not None:
                return [self._set(target, event.value / 127.0, received)]
            if event.number < 32:
                target = bindings.get(("cc14", event.channel, event.number))
                if target is not None:
                    self._msb[key] = event.value
                    value = (event.value << 7) | self._lsb.get(key, 0)
                    return [self._set(target, value / 16383.0, received)]
            elif event.number < 64:
                msb_key = (event.channel, event.number - 32)
                target = bindings.get(("cc14", event.channel, event.number - 32))
                if target is not None:
                    self._lsb[msb_key] = event.value
                    value = (self._msb.get(msb_key, 0) << 7) | event.value
                    return [self._set(target, value / 16383.0, received)]
            return []
        target = bindings.get(("note", event.channel, event.number))
        if target is None:
            return []
        try:
            arg = continuous_arg(target)
        except CommandError:
            arg = None
        if arg is not None:
            # A held note drives a level (velocity) or a switch (on while held).
            level = event.value / 127.0 if arg.type == "f" else float(event.kind == "note_on")
            return [self._set(target, level, received)]
        if event.kind != "note_on":
            return []
        return [trigger_command(target, origin=self.origin, received=received)]

    def _set(self, target: str, fraction: float, received: float | None) -> Command:
        arg = continuous_arg(target)
        return parse(target, [scaled(arg, fraction)], origin=self.origin, received=received)


class MidiClock:
    """24 clock ticks a beat -> BeatSamples for the tempo clock; start resets beat 0."""

    def __init__(self) -> None:
        self._ticks = 0
        self._times: list[float] = []
        self.running = False

    def message(self, kind: str, now: float) -> BeatSample | None:
        """Feed a realtime message (clock, start, stop, continue); a sample on each beat."""
        if kind == "start":
            self._ticks = 0
            self._times.clear()
            self.running = True
            return None
        if kind == "stop":
            self.running = False
            return None
        if kind == "continue":
            self.running = True
            return None
        if kind != "clock":
            return None
        if self._times and now - self._times[-1] > CLOCK_TIMEOUT_S:
            self._times.clear()
        self._times.append(now)
        del self._times[: -(CLOCK_AVERAGE_TICKS + 1)]
        tick = self._ticks
        self._ticks += 1
        if len(self._times) < TICKS_PER_BEAT + 1 or tick % TICKS_PER_BEAT:
            return None
        interval = (self._times[-1] - self._times[0]) / (len(self._times) - 1)
        if interval <= 0:
            return None
        return BeatSample(
            time=now, beat=tick / TICKS_PER_BEAT, bpm=60.0 / (interval * TICKS_PER_BEAT)
        )


def leds(change: Change, tables: Tables) -> list[tuple[int, int, int]]:
    """(channel, note, velocity) for each keyframe pad when the current keyframe changes."""
    if change.address != "/keyframe/current" or not change.args:
        return []
    current = int(change.args[0])  # type: ignore[call-overload]
    out = []
    for (kind, channel, number), target in tables.bindings.items():
        match = _JUMP.match(target)
        if kind == "note" and match is not None:
            out.append((channel, number, 127 if int(match.group(1)) == current else 0))
    return out


def find_port(names: Sequence[str], wanted: str) -> str | None:
    """The port called `wanted`, else the first whose name contains it."""
    if wanted in names:
        return wanted
    return next((name for name in names if wanted.lower() in name.lower()), None)


class MidiError(RuntimeError):
    """A MIDI port that cannot be opened; the message says which and what exists."""


class MidiPorts:
    """Opens MIDI inputs and LED outputs by name and connects them to the engine."""

    def __init__(
        self,
        *,
        inputs: Sequence[str],
        outputs: Sequence[str],
        api: str,
        tables: Callable[[], Tables],
        submit: Callable[[Sequence[Command]], bool],
        follow_clock: Callable[[BeatSample], None] | None = None,
    ) -> None:
        self.wanted_inputs = list(inputs)
        self.wanted_outputs = list(outputs)
        self.api = api
        self._tables = tables
        self._submit = submit
        self._follow_clock = follow_clock
        self.decoder = MidiDecoder(origin="midi")
        self.clock = MidiClock()
        self._inputs: list[Any] = []
        self._outputs: list[Any] = []
        self._lock = threading.Lock()  # rtmidi may call back from one thread per port
        self.messages = 0
        self.commands = 0
        self.dropped = 0

    def backend(self) -> Any:
        """The mido backend for the configured rtmidi API."""
        import mido

        name = {
            "jack": "mido.backends.rtmidi/UNIX_JACK",
            "alsa": "mido.backends.rtmidi/LINUX_ALSA",
        }.get(self.api, "mido.backends.rtmidi")
        return mido.Backend(name, load=True)

    def __enter__(self) -> MidiPorts:
        if not (self.wanted_inputs or self.wanted_outputs):
            return self
        try:
            backend = self.backend()
            available_in = backend.get_input_names()
            available_out = backend.get_output_names()
        except Exception as exc:  # rtmidi raises its own types per API
            raise MidiError(f"MIDI ({self.api}) is not available: {exc}") from exc
        try:
            for wanted in self.wanted_inputs:
                name = find_port(available_in, wanted)
                if name is None:
                    raise MidiError(
                        f"no MIDI input {wanted!r}; there are: {', '.join(available_in) or 'none'}"
                    )
                # No client_name: mido then makes a virtual port instead of connecting.
                self._inputs.append(backend.open_input(name, callback=self._receive))
                logger.info("MIDI in: %s", name)
            for wanted in self.wanted_outputs:
                name = find_port(available_out, wanted)
                if name is None:
                    there = ", ".join(available_out) or "none"
                    raise MidiError(f"no MIDI output {wanted!r}; there are: {there}")
                self._outputs.append(backend.open_output(name))
                logger.info("MIDI LEDs: %s", name)
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for port in [*self._inputs, *self._outputs]:
            try:
                port.close()
            except Exception as error:  # noqa: BLE001 - closing is best effort
                logger.debug("closing a MIDI port failed: %s", error)
        self._inputs.clear()
        self._outputs.clear()

    def _receive(self, message: Any) -> None:
        """rtmidi's thread: decode and queue; never raises into rtmidi."""
        now = time.monotonic()
        try:
            with self._lock:
                self.messages += 1
                if message.type in ("clock", "start", "stop", "continue"):
                    sample = self.clock.message(message.type, now)
                    if sample is not None and self._follow_clock is not None:
                        self._follow_clock(sample)
                    return
                event = event_of(message)
                if event is None:
                    return
                commands = self.decoder.decode(event, self._tables(), received=now)
            if commands:
                if self._submit(commands):
                    self.commands += len(commands)
                else:
                    self.dropped += len(commands)
        except Exception:
            logger.exception("MIDI: a message could not be handled")

    def on_change(self, change: Change) -> None:
        """Event loop: light the current keyframe's pad on every LED output."""
        if not self._outputs:
            return
        import mido

        for channel, note, velocity in leds(change, self._tables()):
            message = mido.Message("note_on", channel=channel - 1, note=note, velocity=velocity)
            for port in self._outputs:
                try:
                    port.send(message)
                except Exception as exc:  # noqa: BLE001 - an unplugged controller is not fatal
                    logger.warning("MIDI LEDs: %s", exc)

    def status(self) -> dict[str, Any]:
        """Numbers for /api/status."""
        return {
            "inputs": [port.name for port in self._inputs],
            "outputs": [port.name for port in self._outputs],
            "messages": self.messages,
            "commands": self.commands,
            "dropped": self.dropped,
            "clock": self.clock.running,
        }
