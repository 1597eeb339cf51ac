"""Presets: named snapshots of every value a performer set, recalled by name.

A preset is generic over the registry: it holds the answer to "?" of every
value-bearing command (queryable and settable, with arguments) at every
concrete address, so a control added to the registry is in every preset
stored after it, with no code here. Besides those values it keeps the
modulation routes and triggers (the patch's own commands) and each deck's
latent position, which no single command sets.

Recalling cuts the stored values in as one batch, between two frames, and
morphs what can morph over `seconds`: the latent position, and every
continuous fader (a coalescing command with one ranged number). This module
is pure data and checks; server/preset_control.py captures and applies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.bend_ops import at_rest
from server.commands import (
    COMMANDS,
    NAME_CHARS,
    CommandError,
    CommandSpec,
    Owner,
    addresses,
    deck_address,
    opens_by_path,
    parse,
)
from server.patch import continuous_arg

# Limits
MAX_PRESETS = 128
MAX_PRESET_COMMANDS = 2048  # values in one preset (the registry has a few hundred addresses)
MAX_POSITION = 8192  # floats in one stored latent position
MAX_DECKS = 2

NAME = re.compile(f"^{NAME_CHARS}\\Z")
# Owners whose values are not a performer's picture: where frames go (the venue's
# rig of outputs, recordings, NDI), what a controller hears, who may send OSC.
# The patch is kept whole as its own commands (routes are keyed by source and
# target, not one value per address); MIDI mappings are the controller's wiring.
_NOT_PERFORMANCE: frozenset[Owner] = frozenset({"outputs", "controller", "osc", "patch", "preset"})
BEND_PREFIX = "/bend/"
BEND_RESET = "/bend/reset"  # first in a preset: the bends it does not name go to rest
PATCH_PREFIX = "/mod/"  # the patch commands a preset keeps: routes and triggers
CLEAR_PATCH = "/mod/clear"


class PresetError(ValueError):
    """A preset, or a preset name, that cannot be used; the message says why."""


def check_name(name: object) -> str:
    """A valid preset name (1..32 of A-Z a-z 0-9 _ -), or PresetError."""
    if not isinstance(name, str) or NAME.match(name) is None:
        raise PresetError(f"a preset name is 1..32 of A-Z a-z 0-9 _ -, not {str(name)[:40]!r}")
    return name


def value_bearing(spec: CommandSpec) -> bool:
    """Whether a preset keeps this command: it has a value ("?" answers what setting sets)."""
    return (
        spec.queryable
        and spec.settable
        and bool(spec.args)
        and not spec.admin  # opens files or devices on the server: an admin's choice
        and spec.owner not in _NOT_PERFORMANCE
    )


def value_addresses() -> list[str]:
    """Every concrete address a preset captures, in registry order (the order of recall)."""
    bare = [(spec, a) for spec in COMMANDS if value_bearing(spec) for a in addresses(spec)]
    # Deck b's values too: a deck with nothing loaded answers "?" with /error, and
    # capture() leaves those out.
    return [a for _, a in bare] + [deck_address("b", a) for spec, a in bare if spec.deck]


# The XY pad moves the latent position, which a recall glides as a whole (Position):
# gliding the pad too would pull the position two ways at once.
_GLIDES_WITH_THE_POSITION = ("/latent/xy",)


def circle(address: str) -> tuple[float, float] | None:
    """(lowest value, period) for a value on a circle, which a recall glides the short way
    round: the hue in turns, a rotation in degrees; None for any other."""
    name = parse(address, ["?"]).name
    if name == "/output/hue":
        return (0.0, 1.0)
    if name.endswith("/rotate"):  # /transform/rotate, /bend/LAYER[/cluster/K]/rotate
        return (-180.0, 360.0)
    return None


def morphable(address: str) -> bool:
    """Whether a recall glides this value (a continuous fader: one ranged number, or a
    few, as a translate's x y) rather than cutting it."""
    try:
        parsed = parse(address, ["?"])
    except CommandError:
        return False
    spec = next(s for s in COMMANDS if s.pattern == parsed.name)
    if not spec.coalesce or parsed.name in _GLIDES_WITH_THE_POSITION:
        return False
    try:
        continuous_arg(address)
        return True
    except CommandError:
        pass
    required = [arg for arg in spec.args if not arg.optional]
    return len(required) > 1 and all(
        arg.type == "f" and arg.min is not None and arg.max is not None for arg in required
    )


@dataclass(frozen=True)
class Position:
    """A deck's latent position (z, or W for a StyleGAN) and the model it belongs to."""

    model: str
    space: str
    values: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"model": self.model, "space": self.space, "values": list(self.values)}


@dataclass(frozen=True)
class Preset:
    """Stored values as [address, args] commands, and each deck's position."""

    commands: tuple[tuple[str, tuple[object, ...]], ...]
    positions: dict[str, Position] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, as the show file and an export keep it."""
        return {
            "commands": [[address, list(args)] for address, args in self.commands],
            "positions": {deck: p.to_json() for deck, p in self.positions.items()},
        }


def capture(
    answer: Callable[[str], tuple[object, ...] | None],
    patch: Iterable[list[object]],
    positions: Mapping[str, Position],
) -> Preset:
    """A preset from the current answers: `answer(address)` is "?"'s reply, None if refused.

    An answer that the setter would not take back (keyframe 0: none yet; a model
    loaded by path) is left out: recalling it could not restore it anyway.
    """
    commands: list[tuple[str, tuple[object, ...]]] = [(BEND_RESET, ())]
    for address in value_addresses():
        args = answer(address)
        if args is None or opens_by_path(address, args):
            continue
        if address.startswith(BEND_PREFIX) and at_rest(address, args):
            continue  # bends are kept sparsely: the reset above puts the rest back
        try:
            parse(address, list(args))
        except CommandError:
            continue
        commands.append((address, tuple(args)))
    for entry in patch:
        route, route_args = entry[0], entry[1]
        if isinstance(route, str) and route.startswith(PATCH_PREFIX):
            commands.append((route, tuple(route_args)))  # type: ignore[arg-type]
    return check_preset(
        {
            "commands": [[a, list(args)] for a, args in commands],
            "positions": {deck: p.to_json() for deck, p in positions.items()},
        }
    )


def check_preset(data: object, where: str = "preset") -> Preset:
    """A Preset from JSON data (the show file, an import), or PresetError naming what is bad."""
    if not isinstance(data, dict):
        raise PresetError(f"{where}: expected an object")
    commands = data.get("commands", [])
    if not isinstance(commands, list) or len(commands) > MAX_PRESET_COMMANDS:
        raise PresetError(f"{where}: 'commands' must be a list of at most {MAX_PRESET_COMMANDS}")
    out: list[tuple[str, tuple[object, ...]]] = []
    for i, entry in enumerate(commands):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise PresetError(f"{where}: commands[{i}]: expected [address, [args]]")
        address, args = entry
        try:
            command = parse(address, args)
        except CommandError as exc:
            raise PresetError(f"{where}: commands[{i}]: {exc}") from exc
        spec = next(s for s in COMMANDS if s.pattern == command.name)
        # Only values and the patch: a preset never records, opens a file or recalls a preset.
        patch = command.name in ("/mod/route", "/mod/trigger")
        reset = command.name == BEND_RESET  # bends are kept sparsely, after a reset
        if not (value_bearing(spec) or patch or reset) or opens_by_path(address, args):
            raise PresetError(f"{where}: commands[{i}]: {address} is not a value a preset keeps")
        out.append((address, command.args))
    positions = data.get("positions", {})
    if not isinstance(positions, dict) or len(positions) > MAX_DECKS:
        raise PresetError(f"{where}: 'positions' must be an object of at most {MAX_DECKS} decks")
    kept: dict[str, Position] = {}
    for deck, position in positions.items():
        kept[deck] = _check_position(deck, position, f"{where}: positions.{deck}")
    return Preset(commands=tuple(out), positions=kept)


def _check_position(deck: object, data: object, where: str) -> Position:
    if deck not in ("a", "b"):
        raise PresetError(f"{where}: a deck is a or b")
    if not isinstance(data, dict):
        raise PresetError(f"{where}: expected an object")
    model, space, values = data.get("model"), data.get("space"), data.get("values")
    if not isinstance(model, str) or not 0 < len(model) <= 256:
        raise PresetError(f"{where}: 'model' must be a model name")
    if space not in ("z", "w"):
        raise PresetError(f"{where}: 'space' must be z or w")
    if not isinstance(values, list) or not 0 < len(values) <= MAX_POSITION:
        raise PresetError(f"{where}: 'values' must be a list of 1..{MAX_POSITION} numbers")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise PresetError(f"{where}: 'values' must be finite numbers")
    return Position(model=model, space=space, values=tuple(float(v) for v in values))


class PresetBank:
    """The stored presets by name, bounded (render thread)."""

    def __init__(self, presets: Mapping[str, Preset] | None = None) -> None:
        self._presets: dict[str, Preset] = dict(presets or {})

    def names(self) -> tuple[str, ...]:
        """The stored names, sorted."""
        return tuple(sorted(self._presets))

    def get(self, name: str) -> Preset:
        """The preset called name, or PresetError."""
        preset = self._presets.get(check_name(name))
        if preset is None:
            raise PresetError(f"no preset called {name!r}")
        return preset

    def store(self, name: str, preset: Preset) -> None:
        """Keep (or replace) a preset; PresetError when the bank is full."""
        check_name(name)
        if name not in self._presets and len(self._presets) >= MAX_PRESETS:
            raise PresetError(f"at most {MAX_PRESETS} presets: delete one first")
        self._presets[name] = preset

    def delete(self, name: str) -> None:
        """Forget a preset, or PresetError if there is none of that name."""
        self.get(name)
        del self._presets[name]

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Every preset, JSON-ready, for the show file."""
        return {name: self._presets[name].to_json() for name in self.names()}


def check_presets(data: object, where: str = "presets") -> dict[str, Preset]:
    """The show file's presets object, checked: names, count, each preset."""
    if not isinstance(data, dict) or len(data) > MAX_PRESETS:
        raise PresetError(f"{where}: expected an object of at most {MAX_PRESETS} presets")
    out: dict[str, Preset] = {}
    for name, preset in data.items():
        try:
            check_name(name)
        except PresetError as exc:
            raise PresetError(f"{where}: {exc}") from exc
        out[name] = check_preset(preset, f"{where}.{name}")
    return out


@dataclass(frozen=True)
class FaderMorph:
    """A continuous value gliding from `start` to `end` over `seconds` (a recall's morph)."""

    address: str
    start: tuple[float, ...]  # one number a fader, or a few (a translate's x y)
    end: tuple[float, ...]
    began: float
    seconds: float
    circle: tuple[float, float] | None = None  # (lowest, period) of a value on a circle

    def value(self, now: float) -> tuple[float, ...]:
        """The values at `now`: linear from start to end (the short way round a circle),
        then end."""
        t = 1.0 if self.seconds <= 0.0 else min(max((now - self.began) / self.seconds, 0.0), 1.0)
        if t >= 1.0:
            return self.end
        if self.circle is None:
            return tuple(a + (b - a) * t for a, b in zip(self.start, self.end, strict=True))
        low, period = self.circle
        out = []
        for a, b in zip(self.start, self.end, strict=True):
            step = (b - a + period / 2) % period - period / 2  # -period/2 .. period/2
            out.append((a + step * t - low) % period + low)
        return tuple(out)

    def done(self, now: float) -> bool:
        """True once the value has reached `end`."""
        return now >= self.began + self.seconds
