"""Master output: the grade maths, the fade clock, and the engine's black, restore and freeze."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from models.pixels import apply_grade, to_yuv420
from server.commands import parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.media.master import Master, colour_grade
from tests.conftest import tiny_model

BLACK_Y, NEUTRAL_UV = 16, 128


def grade_pixel(rgb: tuple[float, float, float], **kwargs: float | bool) -> list[float]:
    options: dict[str, float | bool] = {
        "hue": 0.0,
        "saturation": 1.0,
        "contrast": 1.0,
        "invert": False,
        "level": 1.0,
    }
    options.update(kwargs)
    grade = colour_grade(**options)  # type: ignore[arg-type]
    image = torch.tensor(rgb, dtype=torch.float32)[None, :, None, None]
    return apply_grade(image, grade)[0, :, 0, 0].tolist()


def test_the_default_grade_is_the_identity_and_is_skipped() -> None:
    assert Master().grade(0.0).is_identity


def test_each_colour_control_does_what_it_says() -> None:
    assert grade_pixel((10.0, 100.0, 200.0), invert=True) == pytest.approx([245, 155, 55])
    # A third of a turn carries red to green, green to blue.
    assert grade_pixel((200.0, 0.0, 0.0), hue=1 / 3) == pytest.approx([0, 200, 0], abs=1e-3)
    grey = grade_pixel((200.0, 50.0, 10.0), saturation=0.0)
    assert grey[0] == pytest.approx(grey[1]) == pytest.approx(grey[2])
    assert grey[0] == pytest.approx(0.299 * 200 + 0.587 * 50 + 0.114 * 10)
    assert grade_pixel((10.0, 200.0, 250.0), contrast=0.0) == pytest.approx([128, 128, 128])
    assert grade_pixel((100.0, 150.0, 200.0), contrast=2.0) == pytest.approx([72, 172, 255])
    assert grade_pixel((100.0, 150.0, 200.0), level=0.5) == pytest.approx([50, 75, 100])


def test_a_grade_rides_the_conversion() -> None:
    white = torch.ones(1, 3, 8, 8)
    dark = to_yuv420(white, 8, colour_grade(hue=0, saturation=1, contrast=1, invert=True, level=1))
    assert int(dark[:8].max()) == BLACK_Y
    assert (dark[8:].int() - NEUTRAL_UV).abs().max() <= 1


def test_blackout_fades_over_its_time_and_back() -> None:
    master = Master()
    master.apply(parse("/output/blackout", [1, 2.0]), now=10.0)
    assert master.level(10.0) == pytest.approx(1.0)
    assert master.level(11.0) == pytest.approx(0.5)
    assert master.level(12.5) == 0.0
    # Released mid-fade: back from where it is, not from black.
    master.apply(parse("/output/blackout", [0, 2.0]), now=20.0)
    master.apply(parse("/output/blackout", [1, 2.0]), now=21.0)
    master.apply(parse("/output/blackout", [0, 1.0]), now=22.0)
    assert master.level(22.0) == pytest.approx(0.25)
    assert master.level(22.5) == pytest.approx(0.625)
    assert master.level(23.0) == pytest.approx(1.0)
    assert master.query("/output/blackout", 23.0) == (0, 1.0)


def test_strobe_and_dim_multiply() -> None:
    master = Master()
    master.apply(parse("/output/dim", [0.5]), 0.0)
    master.apply(parse("/output/strobe", [2.0]), 0.0)
    assert master.level(0.1) == pytest.approx(0.5)
    assert master.level(0.3) == 0.0  # the dark half of a 0.5 s period
    master.apply(parse("/output/strobe", [0.0]), 0.0)
    assert master.level(0.3) == pytest.approx(0.5)


def engine(size: int = 32, hooks: EngineHooks | None = None) -> Engine:
    e = Engine(
        model=tiny_model(),
        config=RenderConfig(size=size),
        device=torch.device("cpu"),
        hooks=hooks,
    )
    e.submit([parse("/latent/wander", [0]), parse("/keyframe/1/jump", [0.0])])
    return e


def is_black(yuv: np.ndarray, size: int) -> bool:
    luma, chroma = yuv[:size], yuv[size:]
    return int(luma.max()) == BLACK_Y and int(np.abs(chroma.astype(int) - NEUTRAL_UV).max()) <= 1


def test_dim_zero_is_black_at_once_and_dim_one_restores() -> None:
    e = engine()
    picture = e.render_once().yuv
    assert not is_black(picture, 32)
    e.submit([parse("/output/dim", [0.0])])
    assert is_black(e.render_once().yuv, 32)
    e.submit([parse("/output/dim", [1.0])])
    assert np.array_equal(e.render_once().yuv, picture)


def test_blackout_goes_black_within_its_fade_then_restores_the_picture() -> None:
    e = engine()
    picture = e.render_once().yuv
    fade = 0.3
    e.submit([parse("/output/blackout", [1, fade])])
    started = time.monotonic()
    levels = []
    while time.monotonic() - started < fade + 0.2:
        levels.append(int(e.render_once().yuv[:32].max()))
        time.sleep(0.02)
    assert levels[0] > BLACK_Y + 20  # fading, not cut
    assert levels[-1] == BLACK_Y
    assert is_black(e.render_once().yuv, 32)
    e.submit([parse("/output/blackout", [0])])  # a cut back
    assert np.array_equal(e.render_once().yuv, picture)


def test_freeze_holds_the_picture_while_commands_apply_underneath() -> None:
    e = engine()
    held = e.render_once().yuv
    e.submit([parse("/output/freeze", [1])])
    e.render_once()
    e.submit([parse("/keyframe/5/jump", [0.0]), parse("/latent/dir/1", [0.8])])
    for _ in range(3):
        assert np.array_equal(e.render_once().yuv, held)
    assert e.play.current == 5 and e.play.amounts[0] == pytest.approx(0.8)
    # Master controls still work on the frozen picture.
    e.submit([parse("/output/invert", [1])])
    assert not np.array_equal(e.render_once().yuv, held)
    e.submit([parse("/output/invert", [0]), parse("/output/freeze", [0])])
    released = e.render_once().yuv
    assert np.abs(released.astype(int) - held.astype(int)).mean() > 2.0


def test_output_queries_answer_and_bad_values_change_nothing() -> None:
    from server.commands import CommandError

    changes: list[object] = []
    e = engine(hooks=EngineHooks(on_changes=changes.extend))
    e.submit([parse("/output/hue", [0.25])])
    e.render_once()
    changes.clear()
    e.submit([parse("/output/hue", ["?"], origin="me")])
    e.render_once()
    assert any(getattr(c, "args", None) == (0.25,) and c.to == "me" for c in changes)  # type: ignore[attr-defined]
    with pytest.raises(CommandError):
        parse("/output/dim", [1.5])
    assert e.master.dim == 1.0
