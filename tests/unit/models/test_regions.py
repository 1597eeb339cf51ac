"""Per-region latents (issue 19): each region of a wide canvas paints its own pose, joined by
soft ramps; one region, or every region alike, is the network's own native render bit for bit."""

from __future__ import annotations

import pytest
import torch

from models.bending import Bender
from models.checkpoint import LoadedModel
from models.latent_space import LatentSpace, Pose, WSpace, space_for
from models.nets.ops import widen
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from models.regions import (
    MAX_REGIONS,
    RAMP,
    _dcgan,
    _stylegan2,
    _stylegan3,
    between,
    blend,
    ramps,
    render_regions,
    supports_regions,
)
from tests.conftest import tiny_model, tiny_pix2pix
from tests.support.stylegan_weights import fill_weights
from tests.support.tiny_stylegan import tiny_stylegan

KINDS = ["dcgan", "stylegan2", "stylegan3"]
WIDE = (16 / 9, 32 / 9)


def model_of(kind: str) -> LoadedModel:
    return tiny_model() if kind == "dcgan" else tiny_stylegan(sg3=kind == "stylegan3")


def space_of(kind: str) -> LatentSpace:
    model = model_of(kind)
    return space_for(model, model.module.eval())


def two_poses(space: LatentSpace) -> tuple[Pose, Pose]:
    a, b = space.seeds([1, 2])
    return Pose(a), Pose(b)


def test_the_ramps_cut_the_width_into_equal_regions_joined_softly() -> None:
    centres = (torch.arange(120) + 0.5) / 120
    weights = ramps(3, centres)  # (2, 120): toward region 2, toward region 3
    assert weights.shape == (2, 120)
    half = RAMP / 3 / 2  # half a ramp, in canvas widths
    inside = [(0.0, 1 / 3 - half), (1 / 3 + half, 2 / 3 - half), (2 / 3 + half, 1.0)]
    expected = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]
    for (lo, hi), values in zip(inside, expected, strict=True):
        core = (centres > lo) & (centres < hi)
        assert core.any()
        for k, value in enumerate(values):  # a region's interior is wholly that region
            assert torch.all(weights[k, core] == value)
    for k in range(2):  # each ramp rises smoothly, never falls
        assert torch.all(weights[k, 1:] >= weights[k, :-1])
        border = (k + 1) / 3
        assert 0.4 < weights[k, (centres - border).abs().argmin()] < 0.6
    with pytest.raises(ValueError):
        ramps(MAX_REGIONS + 1, centres)


def test_blend_is_exact_in_region_interiors_and_for_equal_maps() -> None:
    maps = torch.randn(3, 2, 4, 60, generator=torch.Generator().manual_seed(0))
    weights = ramps(3, (torch.arange(60) + 0.5) / 60)
    out = blend(maps, weights)
    assert out.shape == (1, 2, 4, 60)
    assert torch.equal(out[..., :5], maps[:1, ..., :5])
    assert torch.equal(out[..., 25:35], maps[1:2, ..., 25:35])
    assert torch.equal(out[..., -5:], maps[2:3, ..., -5:])
    same = maps[:1].expand(3, -1, -1, -1)
    assert torch.equal(blend(same, weights), maps[:1])


@pytest.mark.parametrize("kind", KINDS)
def test_one_region_or_equal_regions_is_todays_native_render_bit_for_bit(kind: str) -> None:
    space = space_of(kind)
    a, _ = two_poses(space)
    with torch.no_grad():
        for aspect in (1.0, *WIDE):
            today = space.render(a, aspect) if aspect != 1.0 else space.render(a)
            assert torch.equal(render_regions(space, [a], aspect), today)
            assert torch.equal(render_regions(space, [a, Pose(a.latent.clone())], aspect), today)
            assert torch.equal(render_regions(space, [a] * 3, aspect), today)


@pytest.mark.parametrize("kind", KINDS)
def test_the_region_path_itself_with_one_latent_everywhere_is_the_native_picture(
    kind: str,
) -> None:
    """Not the shortcut: the blended path, every region holding A, within float rounding."""
    space = space_of(kind)
    a, _ = two_poses(space)
    with torch.no_grad():
        for aspect in (1.0, *WIDE):
            today = space.render(a, aspect)
            if kind == "dcgan":
                drawn = _dcgan(space.module, torch.stack([a.latent] * 3), aspect, RAMP)  # type: ignore[attr-defined, arg-type]
            else:
                ws = torch.stack([space.broadcast(a)] * 3)  # type: ignore[attr-defined]
                synthesis = space.synthesis  # type: ignore[attr-defined]
                if kind == "stylegan2":
                    drawn = _stylegan2(synthesis, ws, aspect, "const", 1.0, RAMP)
                else:
                    drawn = _stylegan3(synthesis, ws, aspect, RAMP)
            assert drawn.shape == today.shape, (kind, aspect)
            assert (drawn - today).abs().max() < 1e-5, (kind, aspect)


@pytest.mark.parametrize("kind", KINDS)
def test_a_network_bend_bends_the_region_path_as_it_bends_the_native_render(kind: str) -> None:
    """Bends are forward hooks: the region path, which runs StyleGAN layers its own way,
    runs them too, so a bent canvas with regions is the bent native picture."""
    space = space_of(kind)
    a, _ = two_poses(space)
    bender = Bender(space.module)
    with torch.no_grad():
        plain = space.render(a, 16 / 9)
        bender.set({(2, 0): {"rotate": (90.0,)}, (3, 0): {"gain": (0.5,)}})
        bent = space.render(a, 16 / 9)
        if kind == "dcgan":
            drawn = _dcgan(space.module, torch.stack([a.latent] * 2), 16 / 9, RAMP)  # type: ignore[attr-defined, arg-type]
        else:
            ws = torch.stack([space.broadcast(a)] * 2)  # type: ignore[attr-defined]
            synthesis = space.synthesis  # type: ignore[attr-defined]
            if kind == "stylegan2":
                drawn = _stylegan2(synthesis, ws, 16 / 9, "const", 1.0, RAMP)
            else:
                drawn = _stylegan3(synthesis, ws, 16 / 9, RAMP)
        bender.clear()
    assert (bent - plain).abs().max() > 0.05  # the bend shows
    assert (drawn - bent).abs().max() < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_each_side_of_the_canvas_follows_its_regions_latent(kind: str) -> None:
    space = space_of(kind)
    a, b = two_poses(space)
    with torch.no_grad():
        for aspect in WIDE:
            only_a, only_b = space.render(a, aspect), space.render(b, aspect)
            for poses, left, right in (([a, b], only_a, only_b), ([b, a], only_b, only_a)):
                picture = render_regions(space, poses, aspect)
                assert picture.shape == only_a.shape
                third = picture.shape[-1] // 3
                sides = ((slice(0, third), left, right), (slice(-third, None), right, left))
                for columns, own, other in sides:
                    near = (picture[..., columns] - own[..., columns]).abs().mean()
                    far = (picture[..., columns] - other[..., columns]).abs().mean()
                    assert near < 0.25 * far, (kind, aspect, float(near), float(far))


@pytest.mark.parametrize("kind", KINDS)
def test_three_regions_paint_to_the_edges_and_each_third_is_its_own(kind: str) -> None:
    space = space_of(kind)
    seeds = space.seeds([4, 5, 6])
    poses = [Pose(z) for z in seeds]
    with torch.no_grad():
        picture = render_regions(space, poses, 32 / 9)
        alone = [space.render(p, 32 / 9) for p in poses]
    w = picture.shape[-1]
    for column in (0, 1, w - 2, w - 1):  # content reaches both edges
        assert picture[0, :, :, column].std() > 0.02, (kind, column)
    # Each region's middle sixth matches its own render more closely than its neighbours'.
    for k in range(3):
        middle = slice(round(w * (2 * k + 0.5) / 6), round(w * (2 * k + 1.5) / 6))
        errors = [(picture[..., middle] - other[..., middle]).abs().mean() for other in alone]
        assert min(range(3), key=lambda i: errors[i]) == k, (kind, k, errors)
    # A wide picture is not the square one stretched, nor a mirror of its left half.
    assert not torch.equal(picture[..., : w // 2], picture[..., w - w // 2 :].flip(-1))


def test_the_sg2_seam_is_smooth() -> None:
    """Across the border no column jumps more than the picture's own column-to-column steps."""
    space = space_of("stylegan2")
    a, b = two_poses(space)
    with torch.no_grad():
        picture = render_regions(space, [a, b], 32 / 9)
        only_a = space.render(a, 32 / 9)
    steps = (picture[..., 1:] - picture[..., :-1]).abs().mean(dim=(0, 1, 2))  # (W - 1,)
    own = (only_a[..., 1:] - only_a[..., :-1]).abs().mean(dim=(0, 1, 2))
    w = picture.shape[-1]
    seam = steps[w // 2 - w // 8 : w // 2 + w // 8]
    assert seam.max() < 2.0 * own.max()


def test_between_moves_the_latent_and_lands_on_the_target() -> None:
    space = space_of("stylegan2")
    a, b = two_poses(space)
    assert between(a, b, 1.0, mode="slerp") is b
    assert torch.equal(between(a, b, 0.0, mode="lerp").latent, a.latent)
    halfway = between(a, b, 0.5, mode="lerp").latent
    assert torch.allclose(halfway, (a.latent + b.latent) / 2)


def test_which_generators_paint_regions() -> None:
    for kind in KINDS:
        assert supports_regions(model_of(kind).module)
    assert not supports_regions(tiny_pix2pix().module)


def test_a_widened_first_map_is_what_the_dcgan_regions_blend() -> None:
    """The DCGAN path widens the 4 px projection exactly as the network's own native path."""
    module = tiny_model().module.eval()
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        first = module.project(z.reshape(1, 16, 1, 1))
        ours = torch.tanh(module.to_rgb(module.blocks(widen(first, 4, 7))))
        assert torch.equal(ours, module(z, aspect=16 / 9))


@pytest.mark.parametrize("kind", KINDS)
def test_a_tall_canvas_splits_its_width_too(kind: str) -> None:
    """9:16: the network widens the height; the regions still run left to right."""
    space = space_of(kind)
    a, b = two_poses(space)
    with torch.no_grad():
        picture = render_regions(space, [a, b], 9 / 16)
        only_a, only_b = space.render(a, 9 / 16), space.render(b, 9 / 16)
    assert picture.shape == only_a.shape and picture.shape[-2] > picture.shape[-1]
    w = picture.shape[-1]
    left, right = picture[..., : w // 4], picture[..., -(w // 4) :]
    assert (left - only_a[..., : w // 4]).abs().mean() < (left - only_b[..., : w // 4]).abs().mean()
    assert (right - only_b[..., -(w // 4) :]).abs().mean() < (
        right - only_a[..., -(w // 4) :]
    ).abs().mean()


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_every_stylegan2_architecture_takes_the_region_path(architecture: str) -> None:
    """orig (ToRGB at the end only), skip and resnet (a skip conv per block), clamped."""
    config = StyleGAN2Config(
        z_dim=16,
        w_dim=16,
        img_resolution=32,
        mapping_layers=2,
        channel_base=256,
        channel_max=16,
        architecture=architecture,
        conv_clamp=256,
    )
    module = StyleGAN2Generator(config=config)
    module.load_state_dict(fill_weights(module, 0))
    space = WSpace(module.eval(), resolution=32)
    a, b = two_poses(space)
    with torch.no_grad():
        today = space.render(a, 16 / 9)
        ws = torch.stack([space.broadcast(a)] * 2)
        drawn = _stylegan2(space.synthesis, ws, 16 / 9, "const", 1.0, RAMP)
        assert (drawn - today).abs().max() < 1e-5
        two = render_regions(space, [a, b], 16 / 9)
    assert two.shape == today.shape and not torch.equal(two, today)
