"""Projector output maths: validation, the corner-pin homography, the blend ramps, the rig."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from server.commands import ERROR_ADDRESS, parse
from server.media.frame import Frame
from server.outputs.mapping import (
    MESH_STEPS,
    UNIT_QUAD,
    MappingError,
    OutputMapping,
    apply,
    blend_ramp,
    check_blend,
    check_corners,
    check_mask,
    check_mesh,
    check_outputs,
    edge_weight,
    homography,
    invert,
    mesh_grid,
    point_weights,
)
from server.outputs.rig import OutputRig
from server.outputs.testcard import CardCache, card_frame
from server.outputs.warp import (
    Warper,
    blend_ramp_array,
    frame_to_slice,
    in_polygon,
    pieces,
    plane_map,
)


def test_homography_maps_each_corner_onto_its_target_and_inverts() -> None:
    dst = ((0.1, 0.05), (0.92, 0.12), (0.85, 0.9), (0.05, 0.97))
    h = homography(UNIT_QUAD, dst)
    for src, want in zip(UNIT_QUAD, dst, strict=True):
        assert apply(h, src) == pytest.approx(want, abs=1e-9)
    back = invert(h)
    for point in ((0.3, 0.7), (0.5, 0.5), (0.9, 0.1)):
        assert apply(back, apply(h, point)) == pytest.approx(point, abs=1e-9)
    # The identity pin is the identity map.
    assert apply(homography(UNIT_QUAD, UNIT_QUAD), (0.25, 0.75)) == pytest.approx((0.25, 0.75))


@pytest.mark.parametrize("gamma", [1.0, 1.8, 2.2, 2.6])
def test_mirrored_ramps_add_up_to_one_light_at_the_display_gamma(gamma: float) -> None:
    for x in np.linspace(0, 1, 101):
        left, right = blend_ramp(float(x), gamma), blend_ramp(1.0 - float(x), gamma)
        assert left**gamma + right**gamma == pytest.approx(1.0, abs=1e-12)
    assert blend_ramp(0.0, gamma) == 0.0 and blend_ramp(1.0, gamma) == 1.0
    xs = np.linspace(-0.5, 1.5, 41)
    assert blend_ramp_array(xs, gamma) == pytest.approx([blend_ramp(float(x), gamma) for x in xs])


def test_edge_weight_is_one_inside_and_zero_at_a_blended_edge() -> None:
    blend = (0.0, 0.26, 0.0, 0.0)
    assert edge_weight(0.5, 0.5, blend, 2.2) == 1.0
    assert edge_weight(1.0, 0.5, blend, 2.2) == 0.0
    assert edge_weight(0.0, 0.5, blend, 2.2) == 1.0  # no blend on the left


@pytest.mark.parametrize(
    "corners",
    [
        [[0, 0], [1, 1], [1, 0], [0, 1]],  # bow tie: edges cross
        [[0, 0], [1, 0], [0.3, 0.3], [0, 1]],  # a dent: not convex
        [[0, 0], [0, 1], [1, 1], [1, 0]],  # mirrored: the other way round
        [[0, 0], [1, 0], [1, 0], [0, 1]],  # two corners on one point
        [[0, 0], [1, 0], [1, 1]],  # three
        [[0, 0], [1, 0], [1, 1], [0, 5]],  # out of range
    ],
)
def test_corners_that_fold_or_are_malformed_are_refused(corners: object) -> None:
    with pytest.raises(MappingError):
        check_corners(corners)


def test_good_corners_and_blends_pass() -> None:
    assert check_corners([0.05, 0.02, 0.97, 0.0, 1.0, 1.0, 0.0, 0.95])[2] == (1.0, 1.0)
    assert check_blend([0.0, 0.26, 0.0, 0.0]) == (0.0, 0.26, 0.0, 0.0)
    with pytest.raises(MappingError, match="wider than the slice"):
        check_blend([0.6, 0.5, 0.0, 0.0])


def test_outputs_lists_name_the_bad_entry_and_key() -> None:
    with pytest.raises(MappingError, match=r"outputs\[1\] \(right\): blend"):
        check_outputs([{"name": "left"}, {"name": "right", "blend": [0.7, 0.7, 0, 0]}])
    with pytest.raises(MappingError, match="unknown key rekt"):
        check_outputs([{"name": "left", "rekt": [0, 0, 1, 1]}])
    with pytest.raises(MappingError, match="named twice"):
        check_outputs([{"name": "a"}, {"name": "a"}])


def test_the_rig_refuses_a_bad_mapping_and_keeps_the_last_good_one() -> None:
    rig = OutputRig([OutputMapping(name="left", rect=(0.0, 0.0, 0.575, 1.0))])
    good = rig.apply(parse("/out/left/corners", [0.1, 0.0, 1, 0, 1, 1, 0, 1]))
    assert good[0].address == "/out/left/corners"
    kept = rig.get("left")
    for address, args in (
        ("/out/left/corners", [0, 0, 1, 1, 1, 0, 0, 1]),
        ("/out/left/blend", [0.6, 0.6, 0, 0]),
        ("/out/left/rect", [0.5, 0, 0.6, 1]),
        ("/out/nope/gamma", [2.2]),
    ):
        [answer] = rig.apply(parse(address, args, origin="tablet"))
        assert answer.address == ERROR_ADDRESS and answer.to == "tablet", answer
        assert answer.args[0] == address
    assert rig.get("left") == kept
    assert "no output named 'nope'" in str(rig.apply(parse("/out/nope/gamma", [2.2]))[0].args[1])
    # Add, query, remove.
    assert rig.apply(parse("/out/floor/add", []))[0].address == "/out/floor/add"
    assert rig.apply(parse("/out/floor/gamma", ["?"], origin=1))[0].args == (2.2,)
    rig.apply(parse("/out/floor/remove", []))
    assert rig.get("floor") is None
    assert rig.apply(parse("/output/testcard", [1]))[0].args == (1,)
    assert rig.testcard


def _frame(width: int, height: int) -> Frame:
    """A canvas whose luma is its column index (mod 220) + 16, chroma neutral."""
    y = np.tile((np.arange(width) % 220 + 16).astype(np.uint8), (height, 1))
    uv = np.full((height // 2, width), 128, np.uint8)
    return Frame(
        index=1,
        yuv=np.concatenate([y, uv]),
        width=width,
        height=height,
        rendered_at=0.0,
        render_ms=0.0,
        applied_at=None,
    )


def test_the_server_warp_cuts_the_slice_and_pins_it_to_the_corners() -> None:
    frame = _frame(200, 100)  # not square: the canvas may be any W x H
    mapping = OutputMapping(name="right", rect=(0.5, 0.0, 0.5, 1.0))
    out = Warper().warp(frame, mapping)
    assert (out.width, out.height) == (100, 100)
    assert np.array_equal(out.yuv[:100], frame.yuv[:100, 100:200])
    # Pinned into the middle half: black outside, the whole slice inside.
    pinned = OutputMapping(
        name="right",
        rect=(0.5, 0.0, 0.5, 1.0),
        corners=((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)),
    )
    warped = Warper().warp(frame, pinned)
    y = warped.yuv[:100].astype(int)
    assert (y[:20] == 16).all() and (y[:, :20] == 16).all() and (y[80:] == 16).all()
    row = y[50, 25:75]
    assert abs(row[0] - (100 + 16)) <= 2 and abs(row[-1] - (199 + 16)) <= 2


def test_the_server_warp_blends_the_edge() -> None:
    frame = _frame(200, 100)
    mapping = OutputMapping(name="left", rect=(0.0, 0.0, 0.5, 1.0), blend=(0.0, 0.5, 0.0, 0.0))
    y = Warper().warp(frame, mapping).yuv[:100].astype(float)
    x = (np.arange(100) + 0.5) / 100
    weight = blend_ramp_array((1 - x) / 0.5, 2.2)
    expected = 16 + (frame.yuv[0, :100].astype(float) - 16) * weight
    assert np.abs(y[10] - expected).max() <= 1.0


PIN = ((0.1, 0.05), (0.92, 0.12), (0.85, 0.9), (0.05, 0.97))


def test_a_mesh_laid_through_a_corner_pin_warps_as_that_corner_pin_within_a_pixel() -> None:
    rect = (0.25, 0.0, 0.5, 1.0)
    pinned = OutputMapping(name="o", rect=rect, corners=PIN)
    meshed = OutputMapping(name="o", rect=rect, mesh=mesh_grid(4, 5, PIN))
    assert len(pieces(meshed)[0]) == 3 * 4 * MESH_STEPS**2
    canvas, out = (400, 200), (200, 200)
    a, b = plane_map(pinned, canvas, out), plane_map(meshed, canvas, out)
    # Lit pixels: the same, but for pixel centres that lie on the quad's own edge.
    assert (a.inside != b.inside).sum() <= 2 * (out[0] + out[1])
    both = a.inside & b.inside
    assert both.sum() > 0.5 * out[0] * out[1]
    ax, ay = a.index % canvas[0], a.index // canvas[0]
    bx, by = b.index % canvas[0], b.index // canvas[0]
    assert np.abs(ax - bx)[both].max() <= 1 and np.abs(ay - by)[both].max() <= 1
    # A regular mesh on the unpinned frame is the identity, as no mesh is.
    flat = OutputMapping(name="o", rect=rect, mesh=check_mesh(mesh_grid(3, 3)))
    assert np.array_equal(
        plane_map(flat, canvas, out).index,
        plane_map(OutputMapping(name="o", rect=rect), canvas, out).index,
    )


def test_a_moved_mesh_point_carries_the_slice_with_it() -> None:
    frame = _frame(200, 100)
    mesh = [list(row) for row in mesh_grid(3, 3)]
    mesh[1][1] = (0.3, 0.5)  # the slice's middle moves left, to 0.3 of the frame
    mapping = OutputMapping(name="o", rect=(0.0, 0.0, 0.5, 1.0), mesh=check_mesh(mesh))
    y = Warper().warp(frame, mapping).yuv[:100].astype(int)
    # Canvas column 50 (the slice's middle, luma 66) is now at frame x 0.3 (column 30).
    assert abs(int(np.argmin(np.abs(y[50] - 66))) - 30) <= 1
    # Within a cell the map is projective: the left cell's middle row runs 0..50 over x 0..30.
    assert abs(y[50, 15] - (16 + 25)) <= 2
    # Continuous across the cells' shared edges: along each row the slice runs on
    # without a jump (a step of more than 2 canvas columns from one pixel to the next).
    s, _, inside = frame_to_slice(mapping, 100, 100)
    assert inside.all()
    assert np.abs(np.diff(s * 100, axis=1)).max() <= 2.0


@pytest.mark.parametrize(
    "mesh",
    [
        [[[0, 0], [0.5, 0], [1, 0]], [[0, 0.5], [1.2, 0.5], [1, 0.5]], [[0, 1], [0.5, 1], [1, 1]]],
        [[[0, 0], [1, 0]], [[1, 1], [0, 1]]],  # a bow tie
        [[[0, 0], [1, 0]]],  # one row
        [[[0, 0], [1, 0]], [[0, 1]]],  # a short row
        [[[0, 0], [0.5, 0], [1, 0]], [[0, 1], [0.5, 1], [1, 9]]],  # out of range
    ],
)
def test_a_folded_or_malformed_mesh_is_refused(mesh: object) -> None:
    with pytest.raises(MappingError, match="mesh"):
        check_mesh(mesh)


def test_the_rig_lays_a_mesh_moves_its_points_and_refuses_a_fold() -> None:
    rig = OutputRig([OutputMapping(name="left", corners=PIN)])
    [laid] = rig.apply(parse("/out/left/mesh", [3, 3]))
    assert laid.args[:2] == (3, 3) and len(laid.args) == 2 + 18
    assert rig.get("left").mesh == mesh_grid(3, 3, PIN)  # type: ignore[union-attr]
    [moved] = rig.apply(parse("/out/left/mesh/5", [0.45, 0.5]))
    assert moved.address == "/out/left/mesh/5" and moved.args == (0.45, 0.5)
    kept = rig.get("left")
    # The middle point dragged past the right edge: two cells fold; refused, mesh kept.
    [folded] = rig.apply(parse("/out/left/mesh/5", [1.5, 0.5], origin="tablet"))
    assert folded.address == ERROR_ADDRESS and folded.to == "tablet"
    assert "folds over itself" in str(folded.args[1]) and "last good" in str(folded.args[1])
    [outside] = rig.apply(parse("/out/left/mesh/10", [0.5, 0.5]))
    assert outside.address == ERROR_ADDRESS and "no such point" in str(outside.args[1])
    assert rig.get("left") == kept
    assert rig.apply(parse("/out/left/mesh/5", ["?"], origin=1))[0].args == (0.45, 0.5)
    # Saved and read back as the show keeps it; cleared with no numbers.
    assert check_outputs([kept.to_json()])[0] == kept  # type: ignore[union-attr]
    assert rig.apply(parse("/out/left/mesh", []))[0].args == ()
    assert rig.get("left").mesh == ()  # type: ignore[union-attr]


# A concave mask: an arrow pointing right, its notch on the left.
ARROW = ((0.1, 0.1), (0.9, 0.5), (0.1, 0.9), (0.4, 0.5))


def test_the_mask_blacks_out_everything_outside_its_polygon() -> None:
    xs, ys = np.meshgrid(np.linspace(0, 1, 11), np.linspace(0, 1, 11))
    inside = in_polygon(ARROW, xs, ys)
    assert inside[5, 6] and inside[2, 2]  # (0.6, 0.5) on the shaft; (0.2, 0.2) in a barb
    assert not inside[5, 2] and not inside[5, 9] and not inside[0, 5]  # notch, tip, top
    frame = _frame(200, 100)
    masked = OutputMapping(name="o", rect=(0.0, 0.0, 0.5, 1.0), mask=check_mask(ARROW))
    y = Warper().warp(frame, masked).yuv[:100].astype(int)
    plain = Warper().warp(frame, OutputMapping(name="o", rect=(0.0, 0.0, 0.5, 1.0)))
    lit = in_polygon(
        ARROW, *np.meshgrid((np.arange(100) + 0.5) / 100, (np.arange(100) + 0.5) / 100)
    )
    assert (y[~lit] == 16).all()
    assert np.array_equal(y[lit], plain.yuv[:100].astype(int)[lit])
    chroma = Warper().warp(frame, masked).yuv[100:]
    assert (chroma == 128).all()


def test_the_rig_sets_and_clears_a_mask_and_refuses_a_bad_one() -> None:
    rig = OutputRig([OutputMapping(name="left")])
    flat = [v for p in ARROW for v in p]
    [changed] = rig.apply(parse("/out/left/mask", flat))
    assert changed.args == tuple(flat) and rig.get("left").mask == ARROW  # type: ignore[union-attr]
    for bad in ([0.1, 0.1, 0.9, 0.5], [0.1, 0.1, 0.9, 0.5, 0.1]):
        [refused] = rig.apply(parse("/out/left/mask", bad, origin="tablet"))
        assert refused.address == ERROR_ADDRESS and "mask" in str(refused.args[1])
    assert rig.get("left").mask == ARROW  # type: ignore[union-attr]
    kept = rig.get("left")
    assert check_outputs([kept.to_json()])[0] == kept  # type: ignore[union-attr]
    assert rig.apply(parse("/out/left/mask", []))[0].args == ()
    assert rig.get("left").mask == ()  # type: ignore[union-attr]


def test_the_server_test_card_fills_the_slice_and_names_the_output() -> None:
    like = _frame(320, 160)
    right = OutputMapping(name="right", rect=(0.5, 0.0, 0.5, 1.0), blend=(0.25, 0, 0, 0))
    card = card_frame(right, like)
    y = card.yuv[:160].astype(int)
    assert (y[:, :160] == 16).all()  # outside the slice: nothing drawn
    assert y[:, 160:].std() > 10  # grid, circles, text, edges
    other = card_frame(dataclasses.replace(right, name="floor"), like).yuv[:160]
    assert (other != card.yuv[:160]).sum() > 50  # the name is on the card
    # Warped as the picture is: the blend darkens its zone's outer edge.
    out = Warper().warp(card, right).yuv[:160].astype(int)
    assert out[:, 0].mean() - 16 < 0.2 * (y[:, 160].mean() - 16)
    assert out[:, 80].mean() > 40
    # Kept between frames for one mapping: the same array, not redrawn.
    cache = CardCache()
    assert cache.frame(right, like).yuv is cache.frame(right, like).yuv


def test_each_piece_of_the_warp_is_the_homography_through_its_corners() -> None:
    mesh = [list(row) for row in mesh_grid(4, 5, PIN)]
    mesh[1][2] = (0.45, 0.42)  # a moved point: the pieces are no longer one homography
    for mapping in (
        OutputMapping(name="o", corners=PIN),
        OutputMapping(name="o", mesh=check_mesh(mesh)),
    ):
        boxes, quads, to_slice = pieces(mapping)
        for box, quad, m in zip(boxes, quads, to_slice, strict=True):
            s0, t0, s1, t1 = box
            slice_corners = ((s0, t0), (s1, t0), (s1, t1), (s0, t1))
            # Each quad's corners go back to its box's corners...
            for point, corner in zip(quad, slice_corners, strict=True):
                back = apply(tuple(map(tuple, m)), (float(point[0]), float(point[1])))  # type: ignore[arg-type]
                assert back == pytest.approx(corner, abs=1e-9)
            # ...by the same map as the 8 x 8 Gaussian elimination (the JS page's).
            expected = invert(homography(slice_corners, [tuple(p) for p in quad]))
            assert np.allclose(m, expected, rtol=1e-9, atol=1e-9)
    # The moved mesh's patch at the middle of cell (1, 1): the perspective-bilinear blend
    # of its four points, each weighted by the outer corners' homography there.
    weights = point_weights(check_mesh(mesh))
    grid = check_mesh(mesh)
    corners = [(1, 1), (1, 2), (2, 2), (2, 1)]
    w = sum(0.25 * weights[r][c] for r, c in corners)
    middle = tuple(
        sum(0.25 * weights[r][c] * grid[r][c][k] for r, c in corners) / w for k in (0, 1)
    )
    _, quads, _ = pieces(OutputMapping(name="o", mesh=grid))
    half = MESH_STEPS // 2
    # Cell (1, 1) of 4 columns: pieces (r * 4 + c) * MESH_STEPS² on; its middle is the
    # top-left corner of the piece at (j, i) = (half, half).
    at = (1 * 4 + 1) * MESH_STEPS**2 + half * MESH_STEPS + half
    assert tuple(quads[at][0]) == pytest.approx(middle, abs=1e-12)
