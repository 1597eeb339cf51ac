"""The master output: fader, blackout, freeze, strobe and colour, chosen by the performer.

Pure and clock-driven, like the play state: the render thread applies
`/output/*` commands and asks for this frame's `Grade` (a 3x3 colour matrix, an
offset and a level). The conversion step folds the grade into its RGB -> YUV
work on the device, so grading costs no extra copy. Black only ever comes from
here, by the performer's choice; a fault keeps the last good frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.commands import Change, Command, CommandError, owned_by

LUMA = (0.299, 0.587, 0.114)  # BT.601 weights: saturation pivots on this grey


@dataclass(frozen=True)
class Grade:
    """rgb' = level * clamp(matrix @ rgb + offset, 0, 255), rgb in 0..255."""

    matrix: tuple[tuple[float, float, float], ...]
    offset: tuple[float, float, float]
    level: float

    @property
    def is_identity(self) -> bool:
        """True when the grade changes nothing (the conversion skips it)."""
        return self.level == 1.0 and self.matrix == _IDENTITY and self.offset == (0.0, 0.0, 0.0)


_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

Matrix = list[list[float]]


def _mul(a: Matrix, b: Matrix) -> Matrix:
    return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def _apply(m: Matrix, v: list[float]) -> list[float]:
    return [sum(m[i][k] * v[k] for k in range(3)) for i in range(3)]


def hue_matrix(turns: float) -> Matrix:
    """Rotation of RGB about the grey axis by `turns` of a full circle (Rodrigues)."""
    angle = 2.0 * math.pi * turns
    c, s = math.cos(angle), math.sin(angle)
    k = 1.0 / math.sqrt(3.0)
    t = 1.0 - c
    # Rotation about the unit axis (k, k, k).
    return [
        [c + k * k * t, k * k * t - k * s, k * k * t + k * s],
        [k * k * t + k * s, c + k * k * t, k * k * t - k * s],
        [k * k * t - k * s, k * k * t + k * s, c + k * k * t],
    ]


def saturation_matrix(amount: float) -> Matrix:
    """Blend each pixel with its own grey: 0 grey, 1 unchanged, 2 twice as vivid."""
    return [[amount * (i == j) + (1.0 - amount) * LUMA[j] for j in range(3)] for i in range(3)]


def colour_grade(
    *, hue: float, saturation: float, contrast: float, invert: bool, level: float
) -> Grade:
    """Invert, then rotate hue, then saturation, then contrast about mid grey, as one affine map."""
    matrix: Matrix = [list(row) for row in _IDENTITY]
    offset = [0.0, 0.0, 0.0]
    if invert:
        matrix = [[-v for v in row] for row in matrix]
        offset = [255.0, 255.0, 255.0]
    for step in (hue_matrix(hue) if hue % 1.0 else None, saturation_matrix(saturation)):
        if step is None:
            continue
        matrix = _mul(step, matrix)
        offset = _apply(step, offset)
    matrix = [[contrast * v for v in row] for row in matrix]
    offset = [contrast * v + 128.0 * (1.0 - contrast) for v in offset]
    rounded = tuple(tuple(round(v, 9) + 0.0 for v in row) for row in matrix)
    return Grade(
        matrix=rounded,  # type: ignore[arg-type]
        offset=tuple(round(v, 9) + 0.0 for v in offset),  # type: ignore[arg-type]
        level=level,
    )


class Master:
    """The master output state; the render thread is its only user."""

    def __init__(self) -> None:
        self.dim = 1.0
        self.blackout = False
        self.blackout_seconds = 0.0
        self.freeze = False
        self.strobe = 0.0  # Hz; 0 is off
        self.hue = 0.0
        self.saturation = 1.0
        self.contrast = 1.0
        self.invert = False
        # The blackout fade: level goes from `_fade_from` to the target over the fade.
        self._fade_from = 1.0
        self._fade_start = 0.0

    def apply(self, command: Command, now: float) -> list[Change]:
        """Apply one `/output/*` command; the feedback to send."""
        if command.query:
            return [Change(command.address, self.query(command.name, now), command.origin)]
        name, args = command.name, command.args
        if name == "/output/dim":
            self.dim = float(args[0])  # type: ignore[arg-type]
        elif name == "/output/blackout":
            on = bool(args[0])
            seconds = float(args[1]) if len(args) > 1 else 0.0  # type: ignore[arg-type]
            self._fade_from = self._blackout_level(now)
            self._fade_start = now
            self.blackout_seconds = seconds
            self.blackout = on
        elif name == "/output/freeze":
            self.freeze = bool(args[0])
        elif name == "/output/strobe":
            self.strobe = float(args[0])  # type: ignore[arg-type]
        elif name == "/output/hue":
            self.hue = float(args[0])  # type: ignore[arg-type]
        elif name == "/output/saturation":
            self.saturation = float(args[0])  # type: ignore[arg-type]
        elif name == "/output/contrast":
            self.contrast = float(args[0])  # type: ignore[arg-type]
        elif name == "/output/invert":
            self.invert = bool(args[0])
        else:
            raise CommandError(f"{command.address}: not a master output command")
        return [Change(command.address, self.query(name, now))]

    def query(self, name: str, now: float) -> tuple[object, ...]:
        """The current value of an `/output/*` address."""
        values: dict[str, tuple[object, ...]] = {
            "/output/dim": (self.dim,),
            "/output/blackout": (int(self.blackout), self.blackout_seconds),
            "/output/freeze": (int(self.freeze),),
            "/output/strobe": (self.strobe,),
            "/output/hue": (self.hue,),
            "/output/saturation": (self.saturation,),
            "/output/contrast": (self.contrast,),
            "/output/invert": (int(self.invert),),
        }
        if name not in values:
            raise CommandError(f"{name}: not a master output address")
        return values[name]

    def state(self, now: float) -> list[Change]:
        """Every master value, to greet a controller."""
        return [Change(name, self.query(name, now)) for name in owned_by("master")]

    def level(self, now: float) -> float:
        """Brightness 0..1 at `now`: fader times blackout fade times strobe gate."""
        gate = 1.0
        if self.strobe > 0.0 and (now * self.strobe) % 1.0 >= 0.5:
            gate = 0.0  # the dark half of each strobe period
        return self.dim * self._blackout_level(now) * gate

    def grade(self, now: float) -> Grade:
        """This frame's colour grade and level."""
        return colour_grade(
            hue=self.hue,
            saturation=self.saturation,
            contrast=self.contrast,
            invert=self.invert,
            level=self.level(now),
        )

    def _blackout_level(self, now: float) -> float:
        target = 0.0 if self.blackout else 1.0
        if self.blackout_seconds <= 0.0:
            return target
        progress = min(max((now - self._fade_start) / self.blackout_seconds, 0.0), 1.0)
        return self._fade_from + (target - self._fade_from) * progress
