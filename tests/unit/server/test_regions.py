"""Per-region state (issue 19): /canvas/regions and /canvas/region/N/keyframe, their answers,
their refusals, and the poses they hand the render (models.regions paints them)."""

from __future__ import annotations

import pytest
import torch

from models.latent_space import space_for
from models.regions import MAX_REGIONS as MODEL_MAX_REGIONS
from models.regions import render_regions
from server.commands import ERROR_ADDRESS, KEYFRAMES, MAX_REGIONS, Change, parse
from server.play import PlayState
from server.presets import value_addresses
from server.regions import LIVE, Regions
from tests.conftest import tiny_model
from tests.support.tiny_stylegan import tiny_stylegan


def send(
    regions: Regions, address: str, *args: object, now: float = 0.0, fill: str = "native"
) -> list[Change]:
    return regions.apply(parse(address, list(args)), now, fill=fill, keyframes=KEYFRAMES)


def play_for(sg: bool = True) -> PlayState:
    model = tiny_stylegan() if sg else tiny_model()
    return PlayState(space=space_for(model, model.module.eval()), seed=3)


def test_one_region_is_the_default_and_every_value_answers_a_query() -> None:
    regions = Regions()
    assert not regions.active()
    assert send(regions, "/canvas/regions", "?") == [Change("/canvas/regions", (1,))]
    for n in range(1, MAX_REGIONS + 1):
        address = f"/canvas/region/{n}/keyframe"
        assert send(regions, address, "?") == [Change(address, (LIVE,))]
    assert send(regions, "/canvas/regions", 3) == [Change("/canvas/regions", (3,))]
    assert regions.active()
    assert send(regions, "/canvas/region/2/keyframe", 5) == [
        Change("/canvas/region/2/keyframe", (5,))
    ]
    assert send(regions, "/canvas/region/2/keyframe", "?")[0].args == (5,)
    assert regions.settings()["/canvas/region/2/keyframe"] == [5]
    assert regions.settings()["/canvas/regions"] == [3]


def test_out_of_range_regions_and_keyframes_are_refused_at_the_edge_or_by_the_bank() -> None:
    from server.commands import CommandError

    for address, args in (
        ("/canvas/regions", [0]),
        ("/canvas/regions", [MAX_REGIONS + 1]),
        (f"/canvas/region/{MAX_REGIONS + 1}/keyframe", [1]),
        ("/canvas/region/0/keyframe", [1]),
        ("/canvas/region/1/keyframe", [KEYFRAMES + 1]),
        ("/canvas/region/1/keyframe", [1, -1.0]),
    ):
        with pytest.raises(CommandError):
            parse(address, args)
    regions = Regions()
    small_bank = regions.apply(
        parse("/canvas/region/1/keyframe", [9]), 0.0, fill="native", keyframes=8
    )
    assert [c.address for c in small_bank] == [ERROR_ADDRESS]
    assert "1..8" in str(small_bank[0].args[1])
    assert regions.holds[0] == LIVE  # refused: nothing changed


def test_a_canvas_not_painted_natively_keeps_the_setting_and_says_why_nothing_shows() -> None:
    regions = Regions()
    changes = send(regions, "/canvas/regions", 2, fill="crop")
    assert changes[0] == Change("/canvas/regions", (2,))
    assert changes[1].address == ERROR_ADDRESS and "native" in str(changes[1].args[1])
    changes = send(regions, "/canvas/region/2/keyframe", 4, fill="fit")
    assert changes[0] == Change("/canvas/region/2/keyframe", (4,))
    assert changes[1].address == ERROR_ADDRESS
    assert send(regions, "/canvas/regions", 1, fill="crop") == [Change("/canvas/regions", (1,))]


def test_the_registry_and_the_painter_agree_and_presets_capture_the_regions() -> None:
    assert MAX_REGIONS == MODEL_MAX_REGIONS
    captured = value_addresses()
    assert "/canvas/regions" in captured
    assert all(f"/canvas/region/{n}/keyframe" in captured for n in range(1, MAX_REGIONS + 1))
    assert captured.index("/canvas/regions") < captured.index("/canvas/region/1/keyframe")


@pytest.mark.parametrize("sg", [False, True], ids=["dcgan", "stylegan2"])
def test_poses_hold_the_live_position_or_a_keyframe_left_to_right(sg: bool) -> None:
    play = play_for(sg)
    regions = Regions()
    send(regions, "/canvas/regions", 3)
    send(regions, "/canvas/region/3/keyframe", 2)
    live = play.pose(1.0, 0.04)
    poses = regions.poses(live, play, 1.0)
    assert len(poses) == 3
    assert poses[0] is live and poses[1] is live
    assert torch.equal(poses[2].latent, play.keyframe_pose(2).latent)
    # Every region live: the one pose three times, which the render paints as one.
    send(regions, "/canvas/region/3/keyframe", 0)
    assert all(p is live for p in regions.poses(live, play, 1.0))


def test_a_region_morphs_to_its_new_keyframe_over_the_seconds_given() -> None:
    play = play_for()
    regions = Regions()
    send(regions, "/canvas/regions", 2)
    send(regions, "/canvas/region/2/keyframe", 1)
    live = play.pose(0.0, 0.0)
    start = regions.poses(live, play, 0.0)[1].latent  # keyframe 1 shows
    send(regions, "/canvas/region/2/keyframe", 2, 4.0, now=10.0)
    target = play.keyframe_pose(2).latent
    halfway = regions.poses(live, play, 12.0)[1].latent
    assert not torch.equal(halfway, start) and not torch.equal(halfway, target)
    assert (halfway - start).norm() < (target - start).norm()
    assert torch.equal(regions.poses(live, play, 14.0)[1].latent, target)  # landed, exactly
    # A cut (no seconds) lands at once.
    send(regions, "/canvas/region/2/keyframe", 3, now=20.0)
    assert torch.equal(regions.poses(live, play, 20.0)[1].latent, play.keyframe_pose(3).latent)


def test_a_morph_begun_on_another_model_cuts_instead() -> None:
    regions = Regions()
    send(regions, "/canvas/regions", 2)
    send(regions, "/canvas/region/2/keyframe", 1)
    dcgan = play_for(sg=False)
    regions.poses(dcgan.pose(0.0, 0.0), dcgan, 0.0)  # z poses shown
    send(regions, "/canvas/region/2/keyframe", 2, 5.0, now=1.0)
    stylegan = play_for(sg=True)  # a model switch: W poses from here on
    poses = regions.poses(stylegan.pose(2.0, 0.0), stylegan, 2.0)
    assert torch.equal(poses[1].latent, stylegan.keyframe_pose(2).latent)


def test_the_poses_paint_a_wide_picture_whose_right_side_is_the_keyframe() -> None:
    play = play_for()
    regions = Regions()
    send(regions, "/canvas/regions", 2)
    send(regions, "/canvas/region/2/keyframe", 5)
    live = play.pose(0.0, 0.0)
    with torch.no_grad():
        picture = render_regions(play.space, regions.poses(live, play, 0.0), 16 / 9)
        keyframe = play.space.render(play.keyframe_pose(5), 16 / 9)
        alone = play.space.render(live, 16 / 9)
    quarter = picture.shape[-1] // 4
    right = picture[..., -quarter:]
    near = (right - keyframe[..., -quarter:]).abs().mean()
    assert near < 0.25 * (right - alone[..., -quarter:]).abs().mean()
