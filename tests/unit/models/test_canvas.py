"""The canvas (issue 19): `native` paints any shape in the network, exact at the model's own
square; crop, fit, stretch and mirror frame the square picture with known geometry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.canvas import FILLS, effective_fill, fit_box, frame_yuv, place
from models.catalog import load_model
from models.checkpoint import LoadedModel
from models.nets.ops import widen
from models.pixels import Box, resize, to_yuv420
from server.commands import lookup, parse
from server.config import RenderConfig
from server.engine import Engine
from server.media.master import colour_grade
from tests.conftest import tiny_model
from tests.support.nvidia_pickles import (
    seeded_stylegan2,
    stylegan2_ada_kwargs,
    write_network_pickle,
)
from tests.support.tiny_stylegan import tiny_stylegan


def nvidia_stylegan2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedModel:
    """A StyleGAN2-ADA network pickle in NVIDIA's format, imported as a user would."""
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path / "models"))
    kwargs = stylegan2_ada_kwargs(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, channel_base=128, channel_max=16
    )
    generator = seeded_stylegan2(kwargs, seed=0, noise_seed=1)
    path = write_network_pickle(tmp_path / "sg2.pkl", generator, init_kwargs=kwargs)
    return load_model(path, device="cpu")


def models(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedModel:
    if kind == "dcgan":
        return tiny_model()
    if kind == "stylegan2-pkl":
        return nvidia_stylegan2(tmp_path, monkeypatch)
    return tiny_stylegan(sg3=kind == "stylegan3")


KINDS = ["dcgan", "stylegan2-pkl", "stylegan3"]


def engine_frame(model: LoadedModel, size: str | int, fill: str) -> torch.Tensor:
    config = RenderConfig(size=size, fill=fill, fps=30.0, device="cpu", threads=1, seed=3)
    engine = Engine(model=model, config=config, device=torch.device("cpu"))
    frame = engine.render_at(100.0, 1 / 30)
    assert (frame.width, frame.height) == engine.canvas
    return torch.from_numpy(frame.yuv)


def test_the_fill_names_agree_across_layers() -> None:
    spec, _ = lookup("/canvas/fill")
    assert spec.args[0].choices == FILLS  # the registry offers exactly what the geometry does
    for fill in FILLS:
        assert RenderConfig(fill=fill).fill == fill


@pytest.mark.parametrize("kind", KINDS)
def test_native_at_the_models_own_square_is_todays_picture_bit_for_bit(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network with aspect 1 is the unchanged network, and the live frame under
    `native` at the model's size is the frame the square pipeline always made."""
    model = models(kind, tmp_path, monkeypatch)
    module = model.module.eval()
    assert effective_fill("native", module) == "native"
    z = torch.randn(2, model.z_dim or 1, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        today = module(z)
        assert torch.equal(module(z, aspect=1.0), today)
    r = model.resolution
    engine = Engine(
        model=model,
        config=RenderConfig(size=r, fill="native", device="cpu", threads=1, seed=3),
        device=torch.device("cpu"),
    )
    frame = engine.render_at(100.0, 1 / 30)
    assert frame.latent is not None
    with torch.inference_mode():
        square = engine.deck.space.render(engine.deck.play.pose(100.0, 0.0)).float()
    # The square pipeline before the canvas: the picture converted at its own size.
    assert frame.yuv.shape == (r * 3 // 2, r)
    assert torch.equal(torch.from_numpy(frame.yuv), to_yuv420(square, r))


@pytest.mark.parametrize("kind", ["dcgan", "stylegan2", "stylegan3"])
def test_a_wide_native_canvas_is_painted_to_its_edges_not_stretched(kind: str) -> None:
    """16:9 and 32:9 canvases: the network's wide picture differs from the stretched square
    by a clear margin, and its outermost columns carry picture (variance down the column)."""
    model = tiny_model() if kind == "dcgan" else tiny_stylegan(sg3=kind == "stylegan3")
    for size in ("96x54", "128x36"):
        native = engine_frame(model, size, "native").float()
        stretched = engine_frame(model, size, "stretch").float()
        assert native.shape == stretched.shape
        w = native.shape[1]
        h = native.shape[0] * 2 // 3
        luma_n, luma_s = native[:h], stretched[:h]
        assert (luma_n - luma_s).abs().mean() > 4.0, (kind, size)
        for column in (0, 1, w - 2, w - 1):
            assert luma_n[:, column].std() > 1.0, (kind, size, column)
        # The middle of a wide native frame is the square picture's composition, not a copy
        # of it: the sides hold more than a mirror of the centre.
        assert not torch.equal(luma_n[:, : w // 2], luma_n[:, w // 2 :].flip(-1))


def test_native_shapes_per_architecture() -> None:
    z = torch.randn(1, 16)
    for model in (tiny_model(), tiny_stylegan(), tiny_stylegan(sg3=True)):
        with torch.no_grad():
            wide = model.module(z[:, : model.z_dim], aspect=16 / 9)
            tall = model.module(z[:, : model.z_dim], aspect=9 / 16)
        r = model.resolution
        assert wide.shape[-2] == r and 1.6 < wide.shape[-1] / r < 1.9, (model.arch, wide.shape)
        assert tall.shape[-1] == r and 1.6 < tall.shape[-2] / r < 1.9, (model.arch, tall.shape)


def known_picture() -> torch.Tensor:
    """A 4x4 picture whose every pixel is its own value: x + 4 y, scaled into [-1, 1]."""
    values = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    return (values / 7.5 - 1.0).expand(1, 3, 4, 4).contiguous()


def test_crop_keeps_the_middle_band() -> None:
    picture = known_picture()
    wide = place(picture, 16, 8, "crop")  # 2:1 canvas: rows 1..2 of a 4x4
    assert torch.equal(wide, picture[..., 1:3, :])
    tall = place(picture, 8, 16, "crop")  # 1:2 canvas: columns 1..2
    assert torch.equal(tall, picture[..., :, 1:3])


def test_fit_letterboxes_with_black_bars_at_the_canvas_size() -> None:
    picture = known_picture()
    framed = place(picture, 16, 8, "fit")
    assert framed.shape == (1, 3, 8, 16)
    assert torch.all(framed[..., :, :4] == -1.0) and torch.all(framed[..., :, 12:] == -1.0)
    assert torch.equal(framed[..., :, 4:12], resize(picture, 8))
    tall = place(picture, 8, 16, "fit")
    assert torch.all(tall[..., :4, :] == -1.0) and torch.all(tall[..., 12:, :] == -1.0)


def planes(yuv: torch.Tensor, box: Box, width: int, height: int) -> list[torch.Tensor]:
    """Y, U and V of a yuv420p frame, each with the box's part cut out: (inside, outside)."""
    y = yuv[:height]
    u, v = yuv[height:].reshape(2, height // 2, width // 2)
    found = []
    for plane, step in ((y, 1), (u, 2), (v, 2)):
        inside = torch.zeros_like(plane, dtype=torch.bool)
        top, left = box.top // step, box.left // step
        inside[top : top + box.height // step, left : left + box.width // step] = True
        found += [plane[inside], plane[~inside]]
    return found


def test_fit_box_is_centred_as_large_as_fits_and_even() -> None:
    assert fit_box(4, 4, 16, 8) == Box(4, 0, 8, 8)
    assert fit_box(128, 128, 1920, 1080) == Box(420, 0, 1080, 1080)
    assert fit_box(128, 128, 1080, 1920) == Box(0, 420, 1080, 1080)
    assert fit_box(640, 480, 1920, 1080) == Box(240, 0, 1440, 1080)
    box = fit_box(100, 37, 1366, 768)  # odd proportions: every side and offset even
    assert all(v % 2 == 0 for v in (box.left, box.top, box.width, box.height))
    assert box.width == 1366 and abs(box.height - 1366 * 37 / 100) <= 1


@pytest.mark.parametrize("invert", [False, True])
def test_fit_frame_is_the_picture_in_its_box_and_graded_black_around_it(invert: bool) -> None:
    torch.manual_seed(3)
    picture = torch.rand(1, 3, 16, 16) * 2 - 1
    grade = colour_grade(hue=0.0, saturation=1.0, contrast=1.0, invert=invert, level=1.0)
    frame = frame_yuv(picture, 64, 32, "fit", grade)
    box = fit_box(16, 16, 64, 32)
    assert frame.shape == (48, 64) and box == Box(16, 0, 32, 32)
    inner = to_yuv420(picture, (32, 32), grade)
    expected = planes(to_yuv420(torch.full((1, 3, 32, 64), -1.0), None, grade), box, 64, 32)
    for index, (got, want) in enumerate(zip(planes(frame, box, 64, 32), expected, strict=True)):
        if index % 2:  # the bars: black as the grade makes it (white, inverted)
            assert torch.equal(got, want)
    y, u, v = (planes(frame, box, 64, 32)[i] for i in (0, 2, 4))
    inner_y, inner_u, inner_v = (planes(inner, Box(0, 0, 32, 32), 32, 32)[i] for i in (0, 2, 4))
    assert torch.equal(y, inner_y) and torch.equal(u, inner_u) and torch.equal(v, inner_v)
    assert planes(frame, box, 64, 32)[1][0] == (235 if invert else 16)


def test_a_letterbox_needs_an_even_box_inside_the_frame() -> None:
    picture = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="even"):
        to_yuv420(picture, (16, 8), None, Box(3, 0, 8, 8))
    with pytest.raises(ValueError, match="inside"):
        to_yuv420(picture, (16, 8), None, Box(10, 0, 8, 8))


def test_stretch_and_native_leave_the_picture_to_the_one_resize() -> None:
    picture = known_picture()
    assert place(picture, 16, 8, "stretch") is picture
    assert place(picture, 16, 8, "native") is picture


def test_mirror_tiles_outward_with_mirrored_copies() -> None:
    picture = known_picture()
    tiled = place(picture, 16, 4, "mirror")  # 4:1 -> 16 columns, the original in the middle
    assert tiled.shape == (1, 3, 4, 16)
    row = tiled[0, 0, 0].tolist()
    first = picture[0, 0, 0].tolist()  # columns 0 1 2 3
    middle = row[6:10]
    assert middle == first
    assert row[5::-1] == (first + first[::-1])[:6]  # mirrored outward from column 0
    assert row[10:] == (first[::-1] + first)[:6]  # and from column 3


def test_widen_reflects_feature_maps_without_repeating_the_edge() -> None:
    x = torch.arange(4.0).reshape(1, 1, 1, 4)
    assert widen(x, 1, 8)[0, 0, 0].tolist() == [2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]
    assert widen(x, 1, 6, mode="wrap")[0, 0, 0].tolist() == [3.0, 0.0, 1.0, 2.0, 3.0, 0.0]
    assert widen(x, 1, 4) is x
    with pytest.raises(ValueError, match="only grows"):
        widen(x, 1, 2)


def test_fill_changes_live_and_answers_its_value() -> None:
    model = tiny_model()
    config = RenderConfig(size="64x32", fill="native", device="cpu", threads=1)
    engine = Engine(model=model, config=config, device=torch.device("cpu"))
    first = engine.render_at(100.0, 1 / 30)
    assert engine.submit([parse("/canvas/fill", ["fit"])])
    second = engine.render_at(100.0 + 1 / 30, 1 / 30)
    assert (second.width, second.height) == (64, 32) == (first.width, first.height)
    luma = second.yuv[:32]
    assert (luma[:, :8] == 16).all() and (luma[:, -8:] == 16).all()  # black bars (BT.601 16)
    assert engine.stats()["fill"] == "fit" and engine.stats()["canvas"] == "64x32"
    with pytest.raises(Exception, match="fill"):
        parse("/canvas/fill", ["sideways"])
