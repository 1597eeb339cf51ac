"""Feedback mode with the shipped models: long runs stay finite, alive and bounded."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import numpy as np
import torch

from models.catalog import reaction_models
from server.config import RenderConfig
from server.engine import Engine
from tests.conftest import tiny_model


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def test_feedback_runs_300_frames_without_nan_flatness_or_growth() -> None:
    # The shipped models, as `serve` loads them; pure feedback (no re-injection).
    generator = tiny_model()
    pix2pix, encoder, feedback = reaction_models(generator)
    assert feedback is not None and feedback.name == "default-nextframe-128"
    engine = Engine(
        model=generator,
        config=RenderConfig(size=128, react_fade_s=0.0, feedback_inject=0.0),
        device=torch.device("cpu"),
        pix2pix=pix2pix,
        encoder=encoder,
        feedback=feedback,
    )
    engine.render_once()  # the picture on screen seeds the loop (no camera)
    engine.reaction.set_mode("feedback")
    engine.reaction.trigger(time.monotonic())
    spread: list[float] = []
    for i in range(300):
        frame = engine.render_once()
        feedback = engine.reactor._feedback
        assert feedback is not None and bool(torch.isfinite(feedback).all()), i
        rgb = av.VideoFrame.from_ndarray(frame.yuv, format="yuv420p").to_ndarray(format="rgb24")
        colours = rgb.reshape(-1, 3).astype(float)
        # How far pixels lie from the mean colour: a flat field is near 0.
        spread.append(float(np.linalg.norm(colours - colours.mean(0), axis=1).mean()))
        if i == 50:
            after_warmup = rss_bytes()
    assert engine.reaction.active
    # Alive to the end: not a flat field, neither black nor white.
    assert min(spread[-50:]) > 15.0, min(spread[-50:])
    last = engine.frames.latest()[1]
    assert last is not None
    mean = last.yuv[: last.height].mean()
    assert 20 < mean < 230
    # Memory: nothing accumulates per frame.
    assert rss_bytes() - after_warmup < 32 * 1024 * 1024
