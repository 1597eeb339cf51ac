"""The engine plays per-region latents (issue 19): /canvas/regions over a native wide canvas,
each region's keyframe on its side of the frame, the show keeping them."""

from __future__ import annotations

import torch

from models.checkpoint import LoadedModel
from server.commands import ERROR_ADDRESS, Change, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from tests.support.tiny_stylegan import tiny_stylegan


class Rig:
    """A real Engine on a 16:9 native canvas, stepped by hand, its feedback collected."""

    def __init__(self, model: LoadedModel, fill: str = "native") -> None:
        self.changes: list[Change] = []
        config = RenderConfig(size="96x54", fill=fill, device="cpu", threads=1, seed=3)
        self.engine = Engine(
            model=model,
            config=config,
            device=torch.device("cpu"),
            hooks=EngineHooks(on_changes=self.changes.extend),
        )
        self.now = 100.0

    def frame(self, *batch: tuple[str, list[object]]) -> torch.Tensor:
        self.changes.clear()
        if batch:
            assert self.engine.submit([parse(address, args) for address, args in batch])
        self.now += 0.04
        return torch.from_numpy(self.engine.render_at(self.now, 0.04).yuv).float()

    def errors(self) -> list[object]:
        return [c.args for c in self.changes if c.address == ERROR_ADDRESS]


def test_regions_paint_a_keyframe_on_the_right_and_every_region_live_is_the_same_frame() -> None:
    rig = Rig(tiny_stylegan())
    rig.frame(("/latent/wander", [0]), ("/keyframe/1/jump", [0.0]))  # a still picture
    one = rig.frame()
    assert torch.equal(
        rig.frame(
            ("/canvas/regions", [2]),
        ),
        one,
    )  # both regions live: unchanged
    assert rig.errors() == []
    two = rig.frame(("/canvas/region/2/keyframe", [3]))
    rig.frame(("/canvas/regions", [1]), ("/keyframe/3/jump", [0.0]))
    three = rig.frame()
    h, w = 54, 96
    luma = slice(0, h)
    left, right = slice(0, w // 4), slice(w - w // 4, w)
    assert (two[luma, left] - one[luma, left]).abs().mean() < 0.25 * (
        two[luma, left] - three[luma, left]
    ).abs().mean()
    assert (two[luma, right] - three[luma, right]).abs().mean() < 0.25 * (
        two[luma, right] - one[luma, right]
    ).abs().mean()
    assert rig.errors() == []


def test_region_values_answer_and_the_show_keeps_them() -> None:
    rig = Rig(tiny_stylegan())
    rig.frame(("/canvas/regions", [3]), ("/canvas/region/3/keyframe", [7]))
    rig.frame(("/canvas/regions", ["?"]), ("/canvas/region/3/keyframe", ["?"]))
    answers = {c.address: c.args for c in rig.changes}
    assert answers["/canvas/regions"] == (3,)
    assert answers["/canvas/region/3/keyframe"] == (7,)
    settings = rig.engine._show_settings(rig.now)
    assert settings["/canvas/regions"] == [3]
    assert settings["/canvas/region/3/keyframe"] == [7]
    assert settings["/canvas/region/1/keyframe"] == [0]


def test_a_canvas_not_native_keeps_the_setting_and_answers_an_error() -> None:
    rig = Rig(tiny_stylegan(), fill="crop")
    rig.frame(("/latent/wander", [0]), ("/keyframe/1/jump", [0.0]))  # a still picture
    before = rig.frame()
    after = rig.frame(("/canvas/regions", [2]), ("/canvas/region/2/keyframe", [3]))
    assert len(rig.errors()) == 2
    assert torch.equal(before, after)  # nothing shows on a cropped canvas
    rig.frame(("/canvas/regions", ["?"]))
    assert Change("/canvas/regions", (2,)) in [Change(c.address, c.args) for c in rig.changes]
