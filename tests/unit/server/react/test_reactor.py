"""Reactions on the render path: preprocessing, pix2pix, mirror, feedback, smoothing."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
import torch

from server.config import RenderConfig
from server.engine import Engine
from server.media.inputs import InputFrame, copy_planes
from server.react.reactor import input_tensor
from tests.conftest import tiny_encoder, tiny_model, tiny_pix2pix

CPU = torch.device("cpu")


def video_frame(
    rgb: tuple[int, int, int], width: int = 64, height: int = 48, pattern: bool = False
) -> av.VideoFrame:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = rgb
    if pattern:
        image[::4] = 255 - np.array(rgb, np.uint8)
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def as_input(frame: av.VideoFrame) -> InputFrame:
    return InputFrame(yuv=copy_planes(frame), arrived_at=time.monotonic(), source="test")


def feed(engine: Engine, frame: av.VideoFrame) -> None:
    engine.inputs.put(frame, engine.inputs.source or "")


def engine_with_reactions(**render: object) -> Engine:
    config = RenderConfig(size=32, react_fade_s=0.0, **render)  # type: ignore[arg-type]
    engine = Engine(
        model=tiny_model(),
        config=config,
        device=CPU,
        pix2pix=tiny_pix2pix(),
        encoder=tiny_encoder(),
    )
    engine.inputs.begin("test", __import__("threading").Event())
    return engine


def test_input_is_letterboxed_like_the_dataset() -> None:
    frame = as_input(video_frame((200, 100, 50), width=64, height=48))  # 4:3
    x = input_tensor(frame, size=32, fit="letterbox", device=CPU)
    assert x.shape == (1, 3, 32, 32)
    # Black bars above and below (value -1), the picture in the middle.
    assert torch.allclose(x[0, :, :3, :], torch.tensor(-1.0))
    assert torch.allclose(x[0, :, -3:, :], torch.tensor(-1.0))
    # The slot keeps yuv420p (what every decoder gives): an RGB test frame loses a few levels.
    assert x[0, 0, 16, 16].item() == pytest.approx(200 / 127.5 - 1, abs=0.04)
    cropped = input_tensor(frame, size=32, fit="crop", device=CPU)
    assert cropped.min().item() > -0.9  # no bars


def test_pix2pix_follows_the_input() -> None:
    engine = engine_with_reactions()
    engine.reaction.trigger(time.monotonic())
    feed(engine, video_frame((255, 0, 0), pattern=True))
    red = engine.render_once().yuv.astype(int)
    feed(engine, video_frame((0, 0, 255), pattern=True))
    blue = engine.render_once().yuv.astype(int)
    assert np.abs(red - blue).mean() > 1.0
    # Same input again: the same picture (pix2pix ignores the latent at full weight).
    feed(engine, video_frame((0, 0, 255), pattern=True))
    assert np.array_equal(engine.render_once().yuv, blue)


def test_no_reaction_without_a_trigger() -> None:
    engine = engine_with_reactions(wander_speed=0.0)
    still = engine.render_once().yuv
    feed(engine, video_frame((255, 0, 0), pattern=True))
    assert np.array_equal(engine.render_once().yuv, still)


def test_mirror_pulls_the_latent_toward_the_input() -> None:
    engine = engine_with_reactions(wander_speed=0.0)
    engine.reaction.set_mode("mirror")
    engine.reactor.mirror_smoothing = 0.0
    engine.reaction.trigger(time.monotonic())
    feed(engine, video_frame((255, 255, 0), pattern=True))
    a = engine.render_once().yuv.astype(int)
    feed(engine, video_frame((0, 64, 255)))
    b = engine.render_once().yuv.astype(int)
    assert np.abs(a - b).mean() > 0.5


def test_a_lost_source_falls_back_to_latent_play() -> None:
    engine = engine_with_reactions(wander_speed=0.0)
    latent_only = engine.render_once().yuv
    engine.reaction.trigger(time.monotonic())
    feed(engine, video_frame((255, 0, 0), pattern=True))
    assert not np.array_equal(engine.render_once().yuv, latent_only)
    engine.inputs.end("test", "the camera disconnected")
    engine.render_once()
    assert not engine.reaction.active
    assert engine.reaction.reason == "no input: the camera disconnected"
    assert np.array_equal(engine.render_once().yuv, latent_only)


def test_smoothing_blends_with_the_previous_frame() -> None:
    engine = engine_with_reactions(smoothing=0.9)
    frames = [engine.render_once().yuv.astype(int) for _ in range(3)]
    sharp = engine_with_reactions(smoothing=0.0)
    sharp_frames = [sharp.render_once().yuv.astype(int) for _ in range(3)]
    step = np.abs(frames[1] - frames[2]).mean()
    sharp_step = np.abs(sharp_frames[1] - sharp_frames[2]).mean()
    assert step < sharp_step


def test_modes_without_their_model_say_why() -> None:
    engine = Engine(model=tiny_model(), config=RenderConfig(size=32), device=CPU)
    assert "pix2pix model" in (engine.reactor.available("pix2pix") or "")
    assert "encoder" in (engine.reactor.available("mirror") or "")
    with_models = engine_with_reactions()
    assert with_models.reactor.available("feedback") is None


def test_input_frame_dataclass_keeps_its_source() -> None:
    frame = InputFrame(yuv=copy_planes(video_frame((1, 2, 3))), arrived_at=1.0, source="camera")
    assert frame.source == "camera"
