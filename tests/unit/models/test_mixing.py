"""The mixer's maths: each blend mode is its formula, the curves, the endpoints are the decks."""

from __future__ import annotations

import math

import pytest
import torch

from models.mixing import CURVES, MODES, Workspace, blend, dim, mix, weights

# Known light levels (0..1) per channel, as pictures in [-1, 1].
U = torch.tensor([0.0, 0.25, 0.5, 1.0, 0.8, 0.1]).reshape(1, 3, 1, 2)
V = torch.tensor([1.0, 0.5, 0.75, 0.0, 0.3, 0.9]).reshape(1, 3, 1, 2)
A, B = U * 2 - 1, V * 2 - 1


def _light(u: torch.Tensor, v: torch.Tensor, mode: str) -> torch.Tensor:
    """The textbook formulas, on light in 0..1, one pixel value at a time."""
    out = torch.empty_like(u)
    luma = 0.299 * v[0, 0] + 0.587 * v[0, 1] + 0.114 * v[0, 2]  # (1, 2)
    for c in range(3):
        for x in range(2):
            a, b = float(u[0, c, 0, x]), float(v[0, c, 0, x])
            key = float(luma[0, x])
            out[0, c, 0, x] = {
                "normal": b,
                "add": min(a + b, 1.0),
                "screen": 1 - (1 - a) * (1 - b),
                "multiply": a * b,
                "difference": abs(a - b),
                "lighten": max(a, b),
                "darken": min(a, b),
                "lumakey": a * (1 - key) + b * key,
            }[mode]
    return out


@pytest.mark.parametrize("mode", MODES)
def test_each_blend_mode_is_its_formula(mode: str) -> None:
    expected = _light(U, V, mode) * 2 - 1
    torch.testing.assert_close(blend(A, B, mode), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_a_crossfade_lays_the_blend_over_a_by_the_curve(mode: str) -> None:
    x = 0.3
    expected = A * (1 - x) + (_light(U, V, mode) * 2 - 1) * x
    torch.testing.assert_close(mix(A, B, x, "linear", mode), expected, atol=1e-6, rtol=0)


def test_normal_linear_is_the_weighted_sum_and_the_ends_are_the_decks_themselves() -> None:
    for x in (0.1, 0.5, 0.9):
        torch.testing.assert_close(mix(A, B, x), (1 - x) * A + x * B, atol=0, rtol=0)
    for mode in MODES:
        for curve in CURVES:
            assert mix(A, B, 0.0, curve, mode) is A
            assert mix(A, B, 1.0, curve, mode) is B


def test_curves() -> None:
    assert weights(0.25, "linear") == (0.75, 0.25)
    wa, wb = weights(0.5, "power")
    assert math.isclose(wa * wa + wb * wb, 1.0) and math.isclose(wa, wb)
    assert weights(0.49, "cut") == (1.0, 0.0) and weights(0.5, "cut") == (0.0, 1.0)
    assert mix(A, B, 0.49, "cut") is A and mix(A, B, 0.5, "cut") is B
    with pytest.raises(ValueError):
        weights(0.5, "cubic")
    with pytest.raises(ValueError):
        blend(A, B, "overlay")


def test_a_deck_fader_scales_light_and_one_is_the_picture_itself() -> None:
    assert dim(A, 1.0) is A
    torch.testing.assert_close(dim(A, 0.5), U * 0.5 * 2 - 1)
    assert torch.equal(dim(A, 0.0), torch.full_like(A, -1.0))


@pytest.mark.parametrize("mode", MODES)
def test_an_equal_power_crossfade_weighs_the_blend_by_cos_and_sin(mode: str) -> None:
    # The weights sum to more than 1 here (cos + sin), the path where the folded
    # formulas rescale after the lerp.
    x = 0.3
    wa, wb = math.cos(x * math.pi / 2), math.sin(x * math.pi / 2)
    expected = A * wa + (_light(U, V, mode) * 2 - 1) * wb
    got = mix(A, B, x, "power", mode, Workspace())
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_normal_linear_is_bit_exact_on_a_whole_frame_through_a_reused_workspace() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    work = Workspace()
    for x in (0.01, 0.1, 0.25, 1 / 3, 0.4, 0.5, 0.77, 0.99):
        assert torch.equal(mix(a, b, x, "linear", "normal", work), (1 - x) * a + x * b)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("curve", CURVES)
def test_a_mix_never_writes_into_the_decks_pictures(mode: str, curve: str) -> None:
    a, b = A.clone(), B.clone()
    work = Workspace()
    for x in (0.2, 0.6):
        mix(a, b, x, curve, mode, work)
    assert torch.equal(a, A) and torch.equal(b, B)


def test_the_luma_key_is_clamped_to_opaque_and_to_transparent() -> None:
    # A picture beyond [-1, 1] (a generator overshoots): brighter than white keys
    # deck b fully in, darker than black lets deck a fully through.
    bright, dark = torch.full_like(B, 1.5), torch.full_like(B, -1.5)
    torch.testing.assert_close(blend(A, bright, "lumakey"), bright, atol=1e-6, rtol=0)
    torch.testing.assert_close(blend(A, dark, "lumakey"), A, atol=1e-6, rtol=0)
    x = 0.3
    expected = A * (1 - x) + bright * x
    torch.testing.assert_close(mix(A, bright, x, "linear", "lumakey"), expected, atol=1e-6, rtol=0)


def test_a_deck_fader_clamps_first_and_writes_into_the_buffer_given() -> None:
    over = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.5, 0.5]).reshape(1, 3, 1, 2)
    out = torch.empty_like(over)
    dimmed = dim(over, 0.25, out)
    assert dimmed is out
    light = (over.clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(dimmed, light * 0.25 * 2 - 1, atol=1e-7, rtol=0)
