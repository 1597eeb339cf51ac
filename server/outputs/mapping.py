"""Projector output mapping, as pure maths: slices, corner-pins, soft edges.

An output is a named slice of the canvas (`rect`, fractions), drawn onto its
own frame between four corner points (`corners`, TL TR BR BL, fractions of the
output's frame; outside them the output is black), with soft edges (`blend`,
widths left, right, top, bottom as fractions of the output's own size) whose
ramps add up to even light at the display `gamma` where two projectors
overlap. No torch, no I/O: the config, the show file, the command handler and
the server-side NDI warp all use these functions, and web/mapping.js holds the
same maths for the projector page (`homography(src, dst)`, `blendRamp(x, gamma)`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.commands import MAX_OUTPUTS, NAME_CHARS

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # TL TR BR BL
Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

NAME = re.compile(NAME_CHARS + r"\Z")  # an output's name, as its /out/NAME/... path part
UNIT_QUAD: Quad = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
CORNER_RANGE = (-1.0, 2.0)  # a pinned corner may reach past the frame's edges
GAMMA_RANGE = (1.0, 4.0)
BRIGHTNESS_RANGE = (0.0, 2.0)
BLACK_RANGE = (0.0, 0.5)
MIN_SLICE = 0.01  # a slice narrower than 1% of the canvas is a mistake, not a projector
KEYS = ("name", "rect", "corners", "blend", "gamma", "brightness", "black", "ndi")


class MappingError(ValueError):
    """A mapping that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class OutputMapping:
    """One projector output: its slice, its corner-pin, its soft edges."""

    name: str
    rect: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x, y, w, h on the canvas
    corners: Quad = UNIT_QUAD
    blend: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # l, r, t, b
    gamma: float = 2.2
    brightness: float = 1.0
    black: float = 0.0  # black level lift outside the blend zones
    ndi: bool = False  # also sent as its own NDI source, warped on the server

    def to_json(self) -> dict[str, Any]:
        """The show file's and the pages' form (the config's keys)."""
        return {
            "name": self.name,
            "rect": list(self.rect),
            "corners": [list(p) for p in self.corners],
            "blend": list(self.blend),
            "gamma": self.gamma,
            "brightness": self.brightness,
            "black": self.black,
            "ndi": self.ndi,
        }


def check_name(name: object) -> str:
    """An output's name, or MappingError: 1..32 of A-Z a-z 0-9 _ -."""
    if not isinstance(name, str) or NAME.match(name) is None:
        raise MappingError(f"output name {name!r}: expected 1..32 of A-Z a-z 0-9 _ -")
    return name


def _numbers(value: object, count: int, what: str) -> tuple[float, ...]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str | bytes)
        or len(value) != count
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise MappingError(f"{what}: expected {count} numbers, got {value!r}"[:200])
    numbers = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in numbers):
        raise MappingError(f"{what}: {value!r} has a number that is not finite")
    return numbers


def check_rect(value: object) -> tuple[float, float, float, float]:
    """A slice x, y, w, h inside the canvas (fractions), or MappingError."""
    x, y, w, h = _numbers(value, 4, "rect")
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise MappingError(f"rect {[x, y, w, h]}: x and y must be 0..1")
    if w < MIN_SLICE or h < MIN_SLICE:
        raise MappingError(f"rect {[x, y, w, h]}: w and h must be at least {MIN_SLICE}")
    eps = 1e-9
    if x + w > 1.0 + eps or y + h > 1.0 + eps:
        raise MappingError(f"rect {[x, y, w, h]}: reaches past the canvas (x+w or y+h above 1)")
    return (x, y, w, h)


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def check_corners(value: object) -> Quad:
    """Four corners TL TR BR BL forming a convex quad that does not fold, or MappingError.

    Accepts [[x, y] x4] or eight numbers. A quad is usable when every turn
    along TL -> TR -> BR -> BL -> TL bends the same way: that rules out a bow
    tie (self-intersecting), a dent (non-convex) and a mirror image (the
    corners given in the other order), each of which has no one-to-one warp.
    """
    if isinstance(value, Sequence) and len(value) == 4 and not isinstance(value, str):
        flat: list[object] = []
        for point in value:
            flat.extend(_numbers(point, 2, "corners: each corner"))
        numbers = _numbers(flat, 8, "corners")
    else:
        numbers = _numbers(value, 8, "corners")
    lo, hi = CORNER_RANGE
    if not all(lo <= v <= hi for v in numbers):
        raise MappingError(f"corners {list(numbers)}: each coordinate must be {lo:g}..{hi:g}")
    quad: Quad = (
        (numbers[0], numbers[1]),
        (numbers[2], numbers[3]),
        (numbers[4], numbers[5]),
        (numbers[6], numbers[7]),
    )
    turns = [_cross(quad[i], quad[(i + 1) % 4], quad[(i + 2) % 4]) for i in range(4)]
    # In y-down frame coordinates, TL TR BR BL clockwise on screen gives positive turns.
    if not all(t > 1e-6 for t in turns):
        raise MappingError(
            f"corners {[list(p) for p in quad]}: fold over themselves; give TL TR BR BL "
            "going round the output (a convex quad, no crossing edges)"
        )
    return quad


def check_blend(value: object) -> tuple[float, float, float, float]:
    """Soft edge widths l, r, t, b, each 0..1, with l + r and t + b at most 1, or MappingError."""
    left, right, top, bottom = _numbers(value, 4, "blend")
    if not all(0.0 <= v <= 1.0 for v in (left, right, top, bottom)):
        raise MappingError(f"blend {[left, right, top, bottom]}: each width must be 0..1")
    if left + right > 1.0 + 1e-9 or top + bottom > 1.0 + 1e-9:
        raise MappingError(
            f"blend {[left, right, top, bottom]}: wider than the slice "
            "(left + right and top + bottom must be at most 1)"
        )
    return (left, right, top, bottom)


def _in_range(value: object, bounds: tuple[float, float], what: str) -> float:
    (number,) = _numbers([value], 1, what)
    if not bounds[0] <= number <= bounds[1]:
        raise MappingError(f"{what} {number:g}: expected {bounds[0]:g}..{bounds[1]:g}")
    return number


def check_gamma(value: object) -> float:
    """A display gamma 1..4, or MappingError."""
    return _in_range(value, GAMMA_RANGE, "gamma")


def from_json(data: object, where: str = "output") -> OutputMapping:
    """An OutputMapping from the config's or the show file's keys, or MappingError naming one."""
    if not isinstance(data, Mapping):
        raise MappingError(f"{where}: expected a table with name, rect, corners, blend, gamma")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise MappingError(f"{where}: unknown key {unknown[0]}: expected one of {', '.join(KEYS)}")
    if "name" not in data:
        raise MappingError(f"{where}: name is missing")
    name = data["name"]
    try:
        check_name(name)
    except MappingError as exc:
        raise MappingError(f"{where}.name: {exc}") from exc
    values: dict[str, Any] = {}
    checks: dict[str, Callable[[object], Any]] = {
        "rect": check_rect,
        "corners": check_corners,
        "blend": check_blend,
        "gamma": check_gamma,
        "brightness": lambda v: _in_range(v, BRIGHTNESS_RANGE, "brightness"),
        "black": lambda v: _in_range(v, BLACK_RANGE, "black"),
    }
    for key, check in checks.items():
        if key in data:
            try:
                values[key] = check(data[key])
            except MappingError as exc:
                raise MappingError(f"{where} ({name}): {exc}") from exc
    if "ndi" in data:
        if not isinstance(data["ndi"], bool):
            raise MappingError(f"{where} ({name}): ndi: expected true or false")
        values["ndi"] = data["ndi"]
    return OutputMapping(name=name, **values)


def check_outputs(items: object, where: str = "outputs") -> tuple[OutputMapping, ...]:
    """Every output of a list (config or show), each valid and named once, or MappingError."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise MappingError(f"{where}: expected a list of outputs")
    if len(items) > MAX_OUTPUTS:
        raise MappingError(f"{where}: at most {MAX_OUTPUTS} outputs, got {len(items)}")
    found: list[OutputMapping] = []
    for i, item in enumerate(items):
        mapping = from_json(item, f"{where}[{i}]")
        if any(m.name == mapping.name for m in found):
            raise MappingError(f"{where}[{i}].name: {mapping.name!r} is named twice")
        found.append(mapping)
    return tuple(found)


def homography(src: Sequence[Point], dst: Sequence[Point]) -> Matrix:
    """The 3x3 projective map H taking the four `src` points onto the four `dst` points.

    For a point (x, y): [u', v', w'] = H [x, y, 1] and the image is (u'/w', v'/w').
    With h33 = 1 each correspondence gives two linear equations:
        u = h11 x + h12 y + h13 - h31 x u - h32 y u
        v = h21 x + h22 y + h23 - h31 x v - h32 y v
    and the 8 x 8 system is solved by Gaussian elimination with partial pivoting.
    web/mapping.js's homography(src, dst) is the same, line for line.
    """
    rows: list[list[float]] = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v])
    n = 8
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            raise MappingError("the points are degenerate: three of them lie on one line")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                for c in range(col, n + 1):
                    rows[r][c] -= factor * rows[col][c]
    h = [rows[i][n] / rows[i][i] for i in range(n)]
    return ((h[0], h[1], h[2]), (h[3], h[4], h[5]), (h[6], h[7], 1.0))


def apply(matrix: Matrix, point: Point) -> Point:
    """The image of a point under a homography."""
    x, y = point
    w = matrix[2][0] * x + matrix[2][1] * y + matrix[2][2]
    return (
        (matrix[0][0] * x + matrix[0][1] * y + matrix[0][2]) / w,
        (matrix[1][0] * x + matrix[1][1] * y + matrix[1][2]) / w,
    )


def invert(matrix: Matrix) -> Matrix:
    """The inverse homography (the adjugate; the scale does not matter), normalised."""
    (a, b, c), (d, e, f), (g, h, i) = matrix
    adj = (
        (e * i - f * h, c * h - b * i, b * f - c * e),
        (f * g - d * i, a * i - c * g, c * d - a * f),
        (d * h - e * g, b * g - a * h, a * e - b * d),
    )
    s = adj[2][2] if abs(adj[2][2]) > 1e-12 else 1.0
    return tuple(tuple(v / s for v in row) for row in adj)  # type: ignore[return-value]


def blend_ramp(x: float, gamma: float) -> float:
    """The signal multiplier at `x` (0 at the output's edge, 1 where the blend zone ends).

    The light ramp is Paul Bourke's edge-blend curve with p = 2:
        f(x) = 0.5 (2x)^2            for x < 0.5
        f(x) = 1 - 0.5 (2 - 2x)^2    for x >= 0.5
    f(x) + f(1 - x) = 1, so two projectors overlapping with mirrored ramps add
    up to the light of one. A display turns a signal s into light s^gamma, so
    the signal multiplier is f(x)^(1/gamma). web/mapping.js's blendRamp(x, gamma)
    is the same formula.
    """
    x = min(max(x, 0.0), 1.0)
    light = 0.5 * (2.0 * x) ** 2 if x < 0.5 else 1.0 - 0.5 * (2.0 - 2.0 * x) ** 2
    return float(light ** (1.0 / gamma))


def edge_weight(u: float, v: float, blend: Sequence[float], gamma: float) -> float:
    """The blend multiplier at (u, v) of the output's slice (0..1 each): all four edges."""
    left, right, top, bottom = blend
    weight = 1.0
    for distance, width in ((u, left), (1.0 - u, right), (v, top), (1.0 - v, bottom)):
        if width > 0.0:
            weight *= blend_ramp(distance / width, gamma)
    return weight
