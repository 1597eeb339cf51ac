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

from dataclasses import dataclass

import numpy as np

from server.media.frame import Frame
from server.outputs.mapping import MESH_STEPS, OutputMapping, point_weights

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


# Candidate (pixel, piece) pairs are tested this many at a time: a few tens of MB.
PAIRS_PER_PASS = 1 << 21


def pieces(mapping: OutputMapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The warp of an output as pieces, each carried by its own homography: slice boxes
    (N, 4) s0 t0 s1 t1, quads (N, 4, 2) TL TR BR BL on the frame, and frame -> slice
    homographies (N, 3, 3).

    A corner-pin is one piece: the slice's unit square onto the corners. A mesh
    cell (r, c) covers the slice's [c/(cols-1), (c+1)/(cols-1)] x [r/(rows-1),
    (r+1)/(rows-1)] and is a perspective-correct bilinear patch: its four points
    in homogeneous form (w x, w y, w), w the weight of the homography through the
    mesh's outer corners at that point (mapping.point_weights), blended
    bilinearly over (s, t) and divided by the blended w:
        P(s, t) = sum_i b_i(s, t) w_i p_i / sum_i b_i(s, t) w_i
    with b_i the bilinear weights (1-a)(1-b), a(1-b), ab, (1-a)b of the cell.
    It is continuous across cells (a shared edge depends only on its two points)
    and exact for a mesh laid through a corner-pin (mesh_grid): there (w x, w y,
    w) is linear in (s, t), and blending a linear function bilinearly changes
    nothing. Each cell is MESH_STEPS x MESH_STEPS small quads whose corners lie
    on the patch, each with its own homography (a smooth patch's small quads are
    within a fraction of a pixel of it). web/mapping.js's meshCells is the same.

    In numpy, every piece at once: an 8 x 8 mesh is 3,136 pieces, whose
    homographies one at a time in Python took seconds on a loaded machine (a
    drag on /map reached an NDI receiver in steps). Each piece's homography is
    in closed form (the unit square onto a quad, as Heckbert gives it, after the
    piece's box onto the unit square).
    """
    if not mapping.mesh:
        boxes = np.array([[0.0, 0.0, 1.0, 1.0]])
        quads = np.array([mapping.corners], dtype=np.float64)
        return boxes, quads, _to_slice(boxes, quads)
    grid = np.array(mapping.mesh, dtype=np.float64)  # (rows, cols, 2)
    weight = np.array(point_weights(mapping.mesh), dtype=np.float64)  # (rows, cols)
    rows, cols = weight.shape
    steps = MESH_STEPS
    # Each cell's four points and weights, TL TR BR BL: (rows-1, cols-1, 4[, 2]).
    corner = [(slice(0, -1), slice(0, -1)), (slice(0, -1), slice(1, None))]
    corner += [(slice(1, None), slice(1, None)), (slice(1, None), slice(0, -1))]
    pts = np.stack([grid[r, c] for r, c in corner], axis=2)
    ws = np.stack([weight[r, c] for r, c in corner], axis=2)
    # The patch at (a, b) = (i/steps, j/steps): sum of b_k w_k p_k / sum of b_k w_k.
    a = np.arange(steps + 1) / steps
    aa, bb = a[None, :], a[:, None]  # (1, S+1) along i, (S+1, 1) along j
    bs = ((1 - aa) * (1 - bb), aa * (1 - bb), aa * bb, (1 - aa) * bb)  # each (S+1, S+1)
    w = sum(bs[k] * ws[..., k, None, None] for k in range(4))
    x = sum(bs[k] * ws[..., k, None, None] * pts[..., k, 0, None, None] for k in range(4))
    y = sum(bs[k] * ws[..., k, None, None] * pts[..., k, 1, None, None] for k in range(4))
    on = np.stack([x / w, y / w], axis=-1)  # (rows-1, cols-1, S+1, S+1, 2): [j][i]
    quads = np.stack(
        [on[..., :-1, :-1, :], on[..., :-1, 1:, :], on[..., 1:, 1:, :], on[..., 1:, :-1, :]],
        axis=-2,
    ).reshape(-1, 4, 2)  # pieces in the order r, c, j, i
    r, c, j, i = np.meshgrid(
        np.arange(rows - 1), np.arange(cols - 1), np.arange(steps), np.arange(steps), indexing="ij"
    )
    r, c, j, i = (v.reshape(-1) for v in (r, c, j, i))
    boxes = np.stack(
        [
            (c + i / steps) / (cols - 1),
            (r + j / steps) / (rows - 1),
            (c + (i + 1) / steps) / (cols - 1),
            (r + (j + 1) / steps) / (rows - 1),
        ],
        axis=1,
    )
    return boxes, quads, _to_slice(boxes, quads)


def _to_slice(boxes: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Frame -> slice homographies (N, 3, 3) of pieces whose slice boxes are axis-aligned."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = (quads[:, k].T for k in range(4))
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    with np.errstate(divide="ignore", invalid="ignore"):  # a degenerate piece: never hit
        den = dx1 * dy2 - dx2 * dy1
        g = (sx * dy2 - dx2 * sy) / den
        h = (dx1 * sy - sx * dy1) / den
    one, zero = np.ones_like(x0), np.zeros_like(x0)
    unit_to_quad = np.stack(
        [
            np.stack([x1 - x0 + g * x1, x3 - x0 + h * x3, x0], axis=1),
            np.stack([y1 - y0 + g * y1, y3 - y0 + h * y3, y0], axis=1),
            np.stack([g, h, one], axis=1),
        ],
        axis=1,
    )
    s0, t0, s1, t1 = boxes.T
    unit_to_box = np.stack(
        [
            np.stack([s1 - s0, zero, s0], axis=1),
            np.stack([zero, t1 - t0, t0], axis=1),
            np.stack([zero, zero, one], axis=1),
        ],
        axis=1,
    )
    # frame -> unit (the adjugate: the inverse up to scale), then unit -> slice box.
    m = unit_to_quad
    adjugate = np.stack(
        [
            np.cross(m[:, 1], m[:, 2]),
            np.cross(m[:, 2], m[:, 0]),
            np.cross(m[:, 0], m[:, 1]),
        ],
        axis=2,
    )
    out = unit_to_box @ adjugate
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(np.abs(out[:, 2, 2]) > 1e-12, out[:, 2, 2], 1.0)
        return np.asarray(out / scale[:, None, None])


def frame_to_slice(mapping: OutputMapping, ow: int, oh: int) -> tuple[np.ndarray, ...]:
    """For each pixel centre of a (ow, oh) frame: its slice point s, t and whether it is lit.

    Piece by piece (one for a corner-pin, MESH_STEPS² per mesh cell), within the
    piece quad's bounding box: the pixel goes back through the piece's frame ->
    slice homography, and is the piece's when it lands in the piece's part of
    the slice on the quad's side of the horizon line (w of the sign w has at
    the quad's centre; a point past the horizon maps into the box too, but is
    not inside). Where pieces overlap (a fold), the first piece in order wins.
    All pieces at once: every (pixel, piece) pair of the bounding boxes is
    tested in one array pass (a few passes for many large boxes).
    """
    boxes, quads, to_slice = pieces(mapping)
    x0 = np.clip(np.floor(quads[:, :, 0].min(axis=1) * ow), 0, ow).astype(np.int64)
    x1 = np.clip(np.ceil(quads[:, :, 0].max(axis=1) * ow) + 1, 0, ow).astype(np.int64)
    y0 = np.clip(np.floor(quads[:, :, 1].min(axis=1) * oh), 0, oh).astype(np.int64)
    y1 = np.clip(np.ceil(quads[:, :, 1].max(axis=1) * oh) + 1, 0, oh).astype(np.int64)
    widths = np.maximum(x1 - x0, 0)
    counts = widths * np.maximum(y1 - y0, 0)
    centre = quads.mean(axis=1)
    m = to_slice
    sign = np.sign(m[:, 2, 0] * centre[:, 0] + m[:, 2, 1] * centre[:, 1] + m[:, 2, 2])
    s = np.zeros(oh * ow)
    t = np.zeros(oh * ow)
    taken = np.full(oh * ow, len(counts), dtype=np.int64)  # the piece that lit it; N: none
    eps = 1e-9
    ends = np.cumsum(counts)
    first = 0
    while first < len(counts):
        # Pieces [first, last) hold at most PAIRS_PER_PASS pairs (one piece: all of its own).
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, done + PAIRS_PER_PASS, side="right")))
        piece: np.ndarray | int
        if last - first == 1:  # one piece (a corner-pin): its box as a row and a column
            piece = first
            bw, bh = int(widths[piece]), int(counts[piece]) // max(int(widths[piece]), 1)
            px = np.arange(x0[piece], x0[piece] + bw)[None, :]
            py = np.arange(y0[piece], y0[piece] + bh)[:, None]
        else:  # many small pieces (a mesh): every pair of their boxes, numbers per pair
            span = np.arange(first, last)
            n = counts[span]
            piece = np.repeat(span, n)
            k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
            bw = np.maximum(widths[piece], 1)
            px, py = x0[piece] + k % bw, y0[piece] + k // bw
        u, v = (px + 0.5) / ow, (py + 0.5) / oh
        den = m[piece, 2, 0] * u + m[piece, 2, 1] * v + m[piece, 2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):  # den 0 on the horizon line
            cs = (m[piece, 0, 0] * u + m[piece, 0, 1] * v + m[piece, 0, 2]) / den
            ct = (m[piece, 1, 0] * u + m[piece, 1, 1] * v + m[piece, 1, 2]) / den
        hit = den * sign[piece] > 0
        hit &= (cs >= boxes[piece, 0] - eps) & (cs <= boxes[piece, 2] + eps)
        hit &= (ct >= boxes[piece, 1] - eps) & (ct <= boxes[piece, 3] + eps)
        pixel = np.broadcast_to(py * ow + px, hit.shape)[hit]
        owner = piece[hit] if isinstance(piece, np.ndarray) else piece
        np.minimum.at(taken, pixel, owner)  # the first piece in order takes the pixel
        won = taken[pixel] == owner
        s[pixel[won]] = np.broadcast_to(cs, hit.shape)[hit][won]
        t[pixel[won]] = np.broadcast_to(ct, hit.shape)[hit][won]
        first = last
    inside = (taken < len(counts)).reshape(oh, ow)
    if mapping.mask:
        uu, vv = np.meshgrid((np.arange(ow) + 0.5) / ow, (np.arange(oh) + 0.5) / oh)
        inside &= in_polygon(mapping.mask, uu, vv)
    return s.reshape(oh, ow), t.reshape(oh, ow), inside


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
