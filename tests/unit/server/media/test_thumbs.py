"""Keyframe thumbnails drawn after frames, JPEG on request; morph progress reported."""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from PIL import Image

from server.commands import KEYFRAMES, Change, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.media.thumbs import SIZE
from tests.conftest import tiny_model


def engine() -> tuple[Engine, list[Change]]:
    changes: list[Change] = []
    e = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        hooks=EngineHooks(on_changes=changes.extend),
    )
    return e, changes


def test_every_keyframe_gets_a_thumbnail_one_per_frame_and_a_store_redraws_it() -> None:
    e, changes = engine()
    for _ in range(KEYFRAMES):
        e.render_once()
    versions = [e.thumbs.version(n) for n in range(1, KEYFRAMES + 1)]
    assert all(versions) and len(set(versions)) == KEYFRAMES
    found = e.thumbs.jpeg(3)
    assert found is not None
    picture = Image.open(io.BytesIO(found[1]))
    assert picture.format == "JPEG" and picture.size == (SIZE, SIZE)
    before = np.asarray(picture, dtype=float)
    # Wander somewhere else, then store it in keyframe 3: its thumbnail is redrawn.
    e.submit([parse("/latent/seed", [12345]), parse("/keyframe/morph", [0.0])])
    e.submit([parse("/latent/seed", [12345])])
    e.render_once()
    changes.clear()
    e.submit([parse("/keyframe/3/store", [])])
    e.render_once()
    bumped = [c for c in changes if c.address == "/keyframe/3/thumb"]
    assert bumped and bumped[0].args[0] > versions[2]
    after = e.thumbs.jpeg(3)
    assert after is not None and after[0] == bumped[0].args[0]
    redrawn = np.asarray(Image.open(io.BytesIO(after[1])), dtype=float)
    assert np.abs(redrawn - before).mean() > 2.0
    # The same version is encoded once.
    assert e.thumbs.jpeg(3) is after


def test_morph_progress_reaches_the_target_pad() -> None:
    e, changes = engine()
    e.submit([parse("/keyframe/5/jump", [0.3])])
    started = time.monotonic()
    while time.monotonic() - started < 0.6:
        e.render_once()
        time.sleep(0.02)
    progress = [c.args for c in changes if c.address == "/keyframe/progress"]
    assert progress[-1] == (5, 1.0)
    middle = [p for p in progress if 0.0 < float(p[1]) < 1.0]  # type: ignore[arg-type]
    assert middle and all(p[0] == 5 for p in middle)
    assert len(progress) <= 0.6 / Engine.PROGRESS_SECONDS + 3  # throttled
