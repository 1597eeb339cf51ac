"""Projector output mapping, as pure maths: slices, corner-pins, soft edges.

An output is a named slice of the canvas (`rect`, fractions), drawn onto its
own frame between four corner points (`corners`, TL TR BR BL, fractions of the
output's frame; outside them the output is black), with soft edges (`blend`,
widths left, right, top, bottom as fractions of the output's own size) whose
ramps add up to even light at the display `gamma` where two projectors
overlap. Instead of four corners an output may carry a `mesh`: a grid of
points (rows x cols, fractions of its frame) that the slice's regular grid is
pinned to, cell by cell; and a `mask`, a polygon on its frame outside which it
is black (even-odd rule: a point is inside when a ray from it crosses the
polygon's edges an odd number of times). No torch, no I/O: the config, the show
file, the command handler and the server-side NDI warp all use these
functions (the NDI warp's pieces, in numpy: server/outputs/warp.py), and
web/mapping.js holds the same maths for the projector page (`homography(src,
dst)`, `meshCells(mapping)`, `blendRamp(x, gamma)`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.commands import MAX_MASK_POINTS, MAX_MESH_SIDE, MAX_OUTPUTS, NAME_CHARS

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # TL TR BR BL
Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
Mesh = tuple[tuple[Point, ...], ...]  # rows of points, top to bottom, each row left to right

NAME = re.compile(NAME_CHARS + r"\Z")  # an output's name, as its /out/NAME/... path part
UNIT_QUAD: Quad = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
CORNER_RANGE = (-1.0, 2.0)  # a pinned corner may reach past the frame's edges
GAMMA_RANGE = (1.0, 4.0)
BRIGHTNESS_RANGE = (0.0, 2.0)
BLACK_RANGE = (0.0, 0.5)
MIN_SLICE = 0.01  # a slice narrower than 1% of the canvas is a mistake, not a projector
MESH_SIDE = (2, MAX_MESH_SIDE)  # points along each side of a mesh: 2 x 2 is a corner-pin
KEYS = ("name", "rect", "corners", "mesh", "mask", "blend", "gamma", "brightness", "black", "ndi")


class MappingError(ValueError):
    """A mapping that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class OutputMapping:
    """One projector output: its slice, its corner-pin, its soft edges."""

    name: str
    rect: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x, y, w, h on the canvas
    corners: Quad = UNIT_QUAD
    mesh: Mesh = ()  # a grid of points pinning the slice, cell by cell; () = the corners pin
    mask: tuple[Point, ...] = ()  # a polygon on the output's frame; black outside; () = none
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
            "mesh": [[list(p) for p in row] for row in self.mesh],
            "mask": [list(p) for p in self.mask],
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


def folds(quad: Quad) -> bool:
    """Whether a quad TL TR BR BL is unusable: crossing edges, a dent, or mirrored."""
    turns = [_cross(quad[i], quad[(i + 1) % 4], quad[(i + 2) % 4]) for i in range(4)]
    # In y-down frame coordinates, TL TR BR BL clockwise on screen gives positive turns.
    return not all(t > 1e-6 for t in turns)


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
    if folds(quad):
        raise MappingError(
            f"corners {[list(p) for p in quad]}: fold over themselves; give TL TR BR BL "
            "going round the output (a convex quad, no crossing edges)"
        )
    return quad


def check_mesh(value: object) -> Mesh:
    """A grid of points, rows of [x, y], every cell a quad that does not fold, or MappingError.

    An empty list is no mesh (the corners pin). Each cell (the points at row r,
    r + 1 and column c, c + 1, taken TL TR BR BL) must pass the corners' test:
    a cell that folds over itself has no one-to-one warp.
    """
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise MappingError(f"mesh: expected rows of [x, y] points, got {value!r}"[:200])
    if len(value) == 0:
        return ()
    lo_side, hi_side = MESH_SIDE
    rows = len(value)
    cols = len(value[0]) if isinstance(value[0], Sequence) else -1
    if not (lo_side <= rows <= hi_side and lo_side <= cols <= hi_side):
        raise MappingError(
            f"mesh: {rows} rows of {cols} points: expected {lo_side}..{hi_side} of each"
        )
    lo, hi = CORNER_RANGE
    mesh: list[tuple[Point, ...]] = []
    for r, row in enumerate(value):
        if not isinstance(row, Sequence) or isinstance(row, str | bytes) or len(row) != cols:
            raise MappingError(f"mesh: row {r + 1} does not have {cols} points")
        points = tuple(_numbers(p, 2, f"mesh: row {r + 1}, each point") for p in row)
        if not all(lo <= v <= hi for p in points for v in p):
            raise MappingError(f"mesh: row {r + 1}: each coordinate must be {lo:g}..{hi:g}")
        mesh.append(tuple((p[0], p[1]) for p in points))
    for r in range(rows - 1):
        for c in range(cols - 1):
            if folds(_cell(mesh, r, c)):
                raise MappingError(
                    f"mesh: the cell at row {r + 1}, column {c + 1} folds over itself; "
                    "each cell's points must go round it TL TR BR BL (a convex quad)"
                )
    return tuple(mesh)


def _cell(mesh: Sequence[Sequence[Point]], r: int, c: int) -> Quad:
    return (mesh[r][c], mesh[r][c + 1], mesh[r + 1][c + 1], mesh[r + 1][c])


def check_mask(value: object) -> tuple[Point, ...]:
    """A mask polygon: 3..16 points [[x, y], ...] or flat x y numbers, -1..2; () for none."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise MappingError(f"mask: expected a list of [x, y] points, got {value!r}"[:200])
    if len(value) == 0:
        return ()
    if all(isinstance(p, Sequence) and not isinstance(p, str) for p in value):
        flat: list[object] = [v for p in value for v in _numbers(p, 2, "mask: each point")]
    else:
        flat = list(value)
    if len(flat) % 2 or not 3 <= len(flat) // 2 <= MAX_MASK_POINTS:
        raise MappingError(
            f"mask: {len(flat)} numbers: expected x y of 3..{MAX_MASK_POINTS} points, "
            "or nothing to clear it"
        )
    numbers = _numbers(flat, len(flat), "mask")
    lo, hi = CORNER_RANGE
    if not all(lo <= v <= hi for v in numbers):
        raise MappingError(f"mask: each coordinate must be {lo:g}..{hi:g}")
    return tuple((numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2))


def mesh_grid(rows: int, cols: int, corners: Quad = UNIT_QUAD) -> Mesh:
    """A rows x cols grid laid through a corner-pin: the mesh that warps as the corners do."""
    pin = homography(UNIT_QUAD, corners)
    return tuple(
        tuple(apply(pin, (c / (cols - 1), r / (rows - 1))) for c in range(cols))
        for r in range(rows)
    )


MESH_STEPS = 8  # each mesh cell is drawn as MESH_STEPS x MESH_STEPS small quads


def point_weights(grid: Mesh) -> list[list[float]]:
    """Each mesh point's homogeneous weight: w of the outer corners' homography there."""
    rows, cols = len(grid), len(grid[0])
    outer = (grid[0][0], grid[0][-1], grid[-1][-1], grid[-1][0])
    try:
        g = homography(UNIT_QUAD, outer)
    except MappingError:
        g = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    w = [
        [g[2][0] * c / (cols - 1) + g[2][1] * r / (rows - 1) + g[2][2] for c in range(cols)]
        for r in range(rows)
    ]
    if min(min(row) for row in w) <= 1e-6:  # an outline no homography fits: plain bilinear
        return [[1.0] * cols for _ in range(rows)]
    return w


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
        "mesh": check_mesh,
        "mask": check_mask,
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
