"""An offline render at the live size is the live frame: the same uint8 pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.render import latent_frames
from server.commands import parse
from server.config import RenderConfig
from server.engine import Engine
from tests.conftest import tiny_model

FPS = 30.0


@pytest.mark.parametrize("size", [16, 32, 48], ids=["downscaled", "native", "upscaled"])
def test_offline_render_of_the_live_latents_gives_the_live_frames(size: int) -> None:
    """The engine renders a wandering, jumping tiny DCGAN (32 px) at render.size; the
    offline renderer (render tour/walk's frame path) draws the latents each live frame
    showed, at the same size. Every yuv420p frame, the picture the encoders get, is equal."""
    model = tiny_model()
    config = RenderConfig(size=size, fps=FPS, device="cpu", threads=1)
    engine = Engine(model=model, config=config, device=torch.device("cpu"))
    assert engine.submit([parse("/latent/wander", [1])])
    live: list[np.ndarray] = []
    latents: list[torch.Tensor] = []
    now = 100.0
    for i in range(12):
        if i == 6:
            assert engine.submit([parse("/keyframe/3/jump", [0.0])])
        now += 1 / FPS
        frame = engine.render_at(now, 1 / FPS)
        assert frame.latent is not None and frame.width == frame.height == size
        live.append(frame.yuv)
        latents.append(frame.latent.clone())
    assert not torch.equal(latents[0], latents[-1])  # the frames differ from each other
    offline = list(latent_frames(model, iter(latents), size=size))
    assert len(offline) == len(live)
    for i, (ours, theirs) in enumerate(zip(offline, live, strict=True)):
        assert ours.dtype == theirs.dtype == np.uint8
        assert ours.shape == theirs.shape == (size * 3 // 2, size), i
        assert np.array_equal(ours, theirs), f"frame {i}: {np.abs(ours.astype(int) - theirs).max()}"


@pytest.mark.parametrize("fill", ["native", "crop", "fit", "stretch", "mirror"])
def test_offline_render_equals_live_on_a_wide_canvas(fill: str) -> None:
    """The same on a 16:9 canvas (96x54) in every fill: `render tour --size 96x54 --fill`
    draws the live frames, the network's own wide picture under `native` included."""
    model = tiny_model()
    config = RenderConfig(size="96x54", fill=fill, fps=FPS, device="cpu", threads=1)
    engine = Engine(model=model, config=config, device=torch.device("cpu"))
    assert engine.submit([parse("/latent/wander", [1])])
    live: list[np.ndarray] = []
    latents: list[torch.Tensor] = []
    now = 100.0
    for _ in range(6):
        now += 1 / FPS
        frame = engine.render_at(now, 1 / FPS)
        assert frame.latent is not None and (frame.width, frame.height) == (96, 54)
        live.append(frame.yuv)
        latents.append(frame.latent.clone())
    offline = list(latent_frames(model, iter(latents), size=(96, 54), fill=fill))
    for i, (ours, theirs) in enumerate(zip(offline, live, strict=True)):
        assert ours.shape == theirs.shape == (54 * 3 // 2, 96), i
        assert np.array_equal(ours, theirs), f"frame {i}: {np.abs(ours.astype(int) - theirs).max()}"
