"""Differentiable augmentation: what each transform does, gradients, and ADA's controller."""

from __future__ import annotations

import pytest
import torch

from models.augment import ADA_MAX_P, AdaptiveProbability, augment, colour, cutout, translate


def dot_picture(batch: int = 4, size: int = 16) -> torch.Tensor:
    """One bright pixel in the middle of a black picture, per sample."""
    x = torch.full([batch, 3, size, size], -1.0)
    x[:, :, size // 2, size // 2] = 1.0
    return x


def test_probability_zero_changes_nothing() -> None:
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.equal(augment(x, 0.0), x)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(translate(x, 0.0, generator=g), x)
    assert torch.equal(cutout(x, 0.0, generator=g), x)
    assert torch.allclose(colour(x, 0.0, generator=g), x, atol=1e-6)


def test_translation_moves_whole_pixels_within_an_eighth() -> None:
    x = dot_picture(batch=64)
    y = translate(x, 1.0, generator=torch.Generator().manual_seed(1))
    moved = 0
    for picture in y:
        bright = (picture[0] > 0).nonzero()
        assert bright.shape[0] == 1  # an exact copy of the dot, no blur
        dy, dx = (bright[0] - 8).tolist()
        assert abs(dy) <= 2 and abs(dx) <= 2  # 16 px / 8
        moved += (dy, dx) != (0, 0)
    assert moved > 32


def test_cutout_erases_a_square_of_half_the_side() -> None:
    x = torch.ones(32, 3, 16, 16)
    y = cutout(x, 1.0, generator=torch.Generator().manual_seed(2))
    erased = (y[:, 0] == 0).sum(dim=(1, 2))
    assert int(erased.max()) == 64  # 8 x 8 when the square lies inside
    assert int(erased.min()) >= 16  # clipped at a corner: at least a quarter of it


def test_colour_changes_brightness_saturation_contrast() -> None:
    x = torch.rand(64, 3, 8, 8) * 2 - 1
    y = colour(x, 1.0, generator=torch.Generator().manual_seed(3))
    shift = (y - x).mean(dim=(1, 2, 3))
    assert float(shift.abs().max()) > 0.2  # brightness moved some pictures a lot


def test_gradients_reach_the_input_and_probability_gates_per_picture() -> None:
    x = (torch.rand(256, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = augment(x, 0.5, generator=torch.Generator().manual_seed(4))
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    untouched = ((y - x).detach().abs() < 1e-5).flatten(1).all(dim=1).float().mean()
    # Each of 5 draws (brightness, saturation, contrast, shift, cutout) skips with 1/2;
    # a shift of (0, 0) also leaves a picture alone: about 1/32 and a bit untouched.
    assert 0.01 < float(untouched) < 0.15


def test_ada_raises_p_while_d_overfits_and_lowers_it_after() -> None:
    ada = AdaptiveProbability(p=0.0, target=0.6, speed_kimg=0.1, interval=2)
    confident = torch.ones(8, 1)  # sign(D(real)) = +1: overfitting
    for _ in range(2):
        ada.observe(confident)
        ada.step(8)
    assert ada.p == pytest.approx(16 / 100) and ada.last_rt == 1.0
    for _ in range(40):
        ada.observe(confident)
        ada.step(8)
    assert ada.p == ADA_MAX_P  # capped: the transforms would start to leak
    unsure = torch.tensor([[1.0], [-1.0]])
    for _ in range(2):
        ada.observe(unsure)
        ada.step(8)
    assert ada.p == pytest.approx(ADA_MAX_P - 0.16) and ada.last_rt == 0.0
