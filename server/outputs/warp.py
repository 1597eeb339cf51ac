"""A projector output warped on the server, for an output sent as its own NDI source.

The same maths as the projector page's WebGL (server/outputs/mapping.py, and
web/mapping.js in the browser): each pixel of the output's frame is mapped
back through the inverse corner-pin homography (or, for a mesh, the inverse
homography of the piece of mesh it falls in) to a point of the slice, the
nearest canvas pixel is taken, and the soft-edge weight, brightness and black
lift are applied; outside the mask polygon, if any, it is black. It works on
the planar yuv420p frame as rendered (Y and the half-size U and V planes each
get their own lookup), so no colour conversion runs: scaling R'G'B' by w
scales Y - 16 and U, V - 128 by w, since the conversion is linear. The lookup
tables are built once per mapping and canvas size; a frame then costs a few
array gathers. Runs on the NDI sender's thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from server.media.frame import Frame
from server.outputs.mapping import OutputMapping, cells

Y_BLACK = 16.0  # limited-range BT.601, as models.pixels.to_yuv420 writes it
Y_RANGE = 219.0
C_ZERO = 128.0


def blend_ramp_array(x: np.ndarray, gamma: float) -> np.ndarray:
    """mapping.blend_ramp on an array (the same formula; see its docstring)."""
    x = np.clip(x, 0.0, 1.0)
    light = np.where(x < 0.5, 0.5 * (2.0 * x) ** 2, 1.0 - 0.5 * (2.0 - 2.0 * x) ** 2)
    return np.asarray(light ** (1.0 / gamma))


@dataclass(frozen=True)
class PlaneMap:
    """Where each pixel of one output plane comes from, and what it is multiplied by."""

    index: np.ndarray  # (h, w) int64: flat index into the canvas plane
    inside: np.ndarray  # (h, w) bool: inside the pinned quad
    weight: np.ndarray  # (h, w) float32: blend x brightness
    lift: np.ndarray  # (h, w) float32: black lift, 0..1 of full scale


def output_size(mapping: OutputMapping, width: int, height: int) -> tuple[int, int]:
    """The output's frame in pixels: its slice of the canvas, even sides."""
    _, _, w, h = mapping.rect
    return max(2, round(w * width / 2) * 2), max(2, round(h * height / 2) * 2)


def frame_to_slice(mapping: OutputMapping, ow: int, oh: int) -> tuple[np.ndarray, ...]:
    """For each pixel centre of a (ow, oh) frame: its slice point s, t and whether it is lit.

    Cell by cell (one cell for a corner-pin, (rows-1) x (cols-1) for a mesh),
    within the cell quad's bounding box: the pixel goes back through the cell's
    frame -> slice homography, and is the cell's when it lands in the cell's part
    of the slice on the quad's side of the horizon line (w of the sign w has at the
    quad's centre; a point past the horizon maps into the box too, but is not inside).
    """
    uu, vv = np.meshgrid((np.arange(ow) + 0.5) / ow, (np.arange(oh) + 0.5) / oh)  # (oh, ow)
    s = np.zeros((oh, ow))
    t = np.zeros((oh, ow))
    inside = np.zeros((oh, ow), dtype=bool)
    for cell in cells(mapping):
        xs = [p[0] for p in cell.quad]
        ys = [p[1] for p in cell.quad]
        x0, x1 = max(0, math.floor(min(xs) * ow)), min(ow, math.ceil(max(xs) * ow) + 1)
        y0, y1 = max(0, math.floor(min(ys) * oh)), min(oh, math.ceil(max(ys) * oh) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        box = (slice(y0, y1), slice(x0, x1))
        m = np.array(cell.to_slice)
        u, v = uu[box], vv[box]
        den = m[2, 0] * u + m[2, 1] * v + m[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):  # den 0 on the horizon line
            cs = (m[0, 0] * u + m[0, 1] * v + m[0, 2]) / den
            ct = (m[1, 0] * u + m[1, 1] * v + m[1, 2]) / den
        cx, cy = sum(xs) / 4, sum(ys) / 4
        sign = np.sign(m[2, 0] * cx + m[2, 1] * cy + m[2, 2])
        s0, t0, s1, t1 = cell.slice_box
        eps = 1e-9
        hit = (den * sign > 0) & ~inside[box]
        hit &= (cs >= s0 - eps) & (cs <= s1 + eps) & (ct >= t0 - eps) & (ct <= t1 + eps)
        s[box] = np.where(hit, cs, s[box])
        t[box] = np.where(hit, ct, t[box])
        inside[box] |= hit
    if mapping.mask:
        inside &= in_polygon(mapping.mask, uu, vv)
    return s, t, inside


def in_polygon(
    polygon: tuple[tuple[float, float], ...], x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Whether each point (x, y) is inside the polygon, by the even-odd rule.

    A ray from the point towards +x crosses the edge (a, b) when the edge spans
    the point's y (a_y > y) != (b_y > y) and the crossing's x, a_x + (y - a_y)
    (b_x - a_x) / (b_y - a_y), lies right of the point; an odd count is inside.
    web/warp.js's inMask is the same test.
    """
    inside = np.zeros(x.shape, dtype=bool)
    for i, (ax, ay) in enumerate(polygon):
        bx, by = polygon[(i + 1) % len(polygon)]
        if ay == by:
            continue  # a level edge is never crossed by a level ray
        spans = (ay > y) != (by > y)
        crossing = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= spans & (x < crossing)
    return inside


def plane_map(mapping: OutputMapping, canvas: tuple[int, int], out: tuple[int, int]) -> PlaneMap:
    """The lookup for one plane: canvas (W, H) pixels -> output (w, h) pixels."""
    cw, ch = canvas
    ow, oh = out
    s, t, inside = frame_to_slice(mapping, ow, oh)
    rx, ry, rw, rh = mapping.rect
    px = np.clip(np.floor((rx + np.clip(s, 0, 1) * rw) * cw), 0, cw - 1).astype(np.int64)
    py = np.clip(np.floor((ry + np.clip(t, 0, 1) * rh) * ch), 0, ch - 1).astype(np.int64)
    left, right, top, bottom = mapping.blend
    weight = np.ones_like(s)
    in_zone = np.zeros(s.shape, dtype=bool)
    for distance, width in ((s, left), (1 - s, right), (t, top), (1 - t, bottom)):
        if width > 0:
            weight = weight * blend_ramp_array(distance / width, mapping.gamma)
            in_zone |= distance < width
    lift = np.where(in_zone, 0.0, mapping.black)
    return PlaneMap(
        index=py * cw + px,
        inside=inside,
        weight=(weight * mapping.brightness).astype(np.float32),
        lift=lift.astype(np.float32),
    )


class Warper:
    """Warps frames for one output; rebuilds its lookups when the mapping or size changes."""

    def __init__(self) -> None:
        self._key: tuple[OutputMapping, int, int] | None = None
        self._maps: tuple[PlaneMap, PlaneMap, tuple[int, int]] | None = None

    def warp(self, frame: Frame, mapping: OutputMapping) -> Frame:
        """The output's frame: the slice, pinned to its corners, blended; black outside."""
        key = (mapping, frame.width, frame.height)
        if key != self._key or self._maps is None:
            ow, oh = output_size(mapping, frame.width, frame.height)
            luma = plane_map(mapping, (frame.width, frame.height), (ow, oh))
            chroma = plane_map(mapping, (frame.width // 2, frame.height // 2), (ow // 2, oh // 2))
            self._maps, self._key = (luma, chroma, (ow, oh)), key
        luma, chroma, (ow, oh) = self._maps
        w, h = frame.width, frame.height
        quarter = (h // 2) * (w // 2)
        y = frame.yuv[:h].reshape(-1)
        uv = frame.yuv[h:].reshape(-1)
        planes = [
            _plane(y, luma, Y_BLACK, Y_RANGE),
            _plane(uv[:quarter], chroma, C_ZERO, 0.0),
            _plane(uv[quarter : 2 * quarter], chroma, C_ZERO, 0.0),
        ]
        yuv = np.concatenate([p.reshape(-1) for p in planes]).reshape(oh * 3 // 2, ow)
        return Frame(
            index=frame.index,
            yuv=yuv,
            width=ow,
            height=oh,
            rendered_at=frame.rendered_at,
            render_ms=frame.render_ms,
            applied_at=frame.applied_at,
        )


def _plane(source: np.ndarray, lookup: PlaneMap, zero: float, full: float) -> np.ndarray:
    values = source[lookup.index].astype(np.float32) - zero
    out = zero + values * lookup.weight + full * lookup.lift
    out = np.where(lookup.inside, out, zero if full == 0.0 else Y_BLACK)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
