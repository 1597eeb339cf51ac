"""The engine renders on the CPU, keeps the last good frame through errors and stalls."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from models.catalog import Catalog
from models.checkpoint import METADATA_KEY, LoadedModel, read_tensors, save_checkpoint
from models.device import half_if_finite, pick_device
from server.command_queue import CommandQueue
from server.commands import ERROR_ADDRESS, Change, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.meters import RateMeter
from tests.conftest import tiny_encoder, tiny_model


class Faulty(nn.Module):
    """A tiny generator that raises or stalls when told to."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.fail = threading.Event()
        self.stall = threading.Event()
        self.release = threading.Event()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.fail.is_set():
            raise RuntimeError("simulated CUDA error")
        if self.stall.is_set():
            self.release.wait(5)
        return self.inner(z)


def faulty_model() -> tuple[LoadedModel, Faulty]:
    base = tiny_model()
    module = Faulty(base.module)
    return replace(base, module=module), module


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def test_auto_device_takes_what_torch_has_cuda_then_mps_then_cpu() -> None:
    has_cuda, has_mps = torch.cuda.is_available(), _mps_available()
    expected = "cuda" if has_cuda else "mps" if has_mps else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"
    if not has_cuda:
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")
    if not has_mps:
        with pytest.raises(RuntimeError, match="MPS is not available"):
            pick_device("mps")


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_prefers_cuda_then_mps(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str
) -> None:
    # What torch reports is the input here; pick_device's order is what is tested.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto").type == expected


def test_render_once_gives_yuv_frames_that_drift() -> None:
    engine = Engine(
        model=tiny_model(), config=RenderConfig(size=64, fps=30), device=torch.device("cpu")
    )
    first = engine.render_once()
    assert first.yuv.shape == (96, 64) and first.yuv.dtype == np.uint8
    assert (first.width, first.height) == (64, 64)
    frames = [engine.render_once() for _ in range(30)]
    assert [f.index for f in frames] == list(range(2, 32))
    # The drift moves the picture, slowly: consecutive frames are close, later ones differ.
    step = np.abs(frames[0].yuv.astype(int) - frames[1].yuv.astype(int)).mean()
    span = np.abs(first.yuv.astype(int) - frames[-1].yuv.astype(int)).mean()
    assert span > 0.0
    assert step < span


def test_native_size_when_size_is_zero() -> None:
    engine = Engine(
        model=tiny_model(resolution=32), config=RenderConfig(size=0), device=torch.device("cpu")
    )
    assert engine.render_once().yuv.shape == (48, 32)


def test_render_thread_paces_to_fps_and_fills_the_slot() -> None:
    engine = Engine(
        model=tiny_model(), config=RenderConfig(size=32, fps=50), device=torch.device("cpu")
    )
    engine.start()
    try:
        frames = []
        seen = 0
        while len(frames) < 12:
            seen, frame = engine.frames.wait_newer(seen, timeout=30)
            assert frame is not None, "no frame in 30 s"
            frames.append(frame)
        # Pacing: frame k starts no sooner than k periods after the first started, so
        # the frames cannot come faster than fps (a slow machine only spaces them more).
        first, last = frames[0], frames[-1]
        assert [f.index for f in frames] == sorted({f.index for f in frames})
        allowed = (last.index - first.index) / 50 - first.render_ms / 1000 - 0.002
        assert last.rendered_at - first.rendered_at >= allowed
    finally:
        engine.stop()
    assert engine.frames.closed


def test_a_raising_step_keeps_the_last_frame_and_rendering_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, module = faulty_model()
    engine = Engine(model=model, config=RenderConfig(size=32, fps=100), device=torch.device("cpu"))
    engine.start()
    try:
        wait_for(lambda: engine.frames.latest()[0] >= 3)
        module.fail.set()
        wait_for(lambda: engine.errors >= 20)
        seq, frame = engine.frames.latest()
        assert frame is not None
        time.sleep(0.1)
        assert engine.frames.latest()[0] == seq  # nothing new, the last good frame stays
        module.fail.clear()
        wait_for(lambda: engine.frames.latest()[0] > seq + 3)
    finally:
        engine.stop()
    # Logged once with context, however many times it failed.
    failures = [r for r in caplog.records if "render step" in r.getMessage()]
    assert len(failures) == 1
    assert "simulated CUDA error" in failures[0].getMessage()
    assert "tiny" in failures[0].getMessage()
    assert engine.stats()["last_error"] == "RuntimeError: simulated CUDA error"


def test_a_stalled_step_keeps_the_last_frame_and_reports_it() -> None:
    model, module = faulty_model()
    engine = Engine(model=model, config=RenderConfig(size=32, fps=100), device=torch.device("cpu"))
    engine.STALL_SECONDS = 0.2
    engine.start()
    try:
        wait_for(lambda: engine.frames.latest()[0] >= 2)
        module.stall.set()
        time.sleep(0.5)
        seq, frame = engine.frames.latest()
        assert frame is not None
        assert engine.stats()["stalled"] is True
        module.stall.clear()
        module.release.set()
        wait_for(lambda: engine.frames.latest()[0] > seq + 3)
        assert engine.stats()["stalled"] is False
    finally:
        module.release.set()
        engine.stop()


def test_submit_is_bounded() -> None:
    engine = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        commands=CommandQueue(2),
    )
    assert engine.submit([]) and engine.submit([])
    assert not engine.submit([])
    assert engine.stats()["dropped_batches"] == 1
    engine.render_once()  # drains the queue
    assert engine.submit([])


def test_engine_refuses_an_image_to_image_model() -> None:
    model = replace(tiny_model(), kind="image2image", z_dim=None)
    with pytest.raises(ValueError, match="unconditional"):
        Engine(model=model, config=RenderConfig(), device=torch.device("cpu"))


def test_rate_meter() -> None:
    meter = RateMeter(window=1.0)
    for i in range(21):
        meter.tick(100.0 + i * 0.05)
    assert meter.rate(101.0) == pytest.approx(20.0, rel=0.1)
    assert meter.rate(110.0) == 0.0


def test_half_precision_is_kept_only_when_the_output_stays_finite() -> None:
    # The CUDA path's decision, exercised on the CPU (which runs fp16 convolutions too).
    module, is_half = half_if_finite(tiny_model().module, z_dim=16, device=torch.device("cpu"))
    assert is_half and next(module.parameters()).dtype == torch.float16

    overflowing = tiny_model().module
    last = [
        m
        for m in overflowing.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ][-1]
    with torch.no_grad():
        last.bias.fill_(1e9)  # beyond fp16's range: inf, and tanh(nan) in places
        last.weight.mul_(1e6)
    module, is_half = half_if_finite(overflowing, z_dim=16, device=torch.device("cpu"))
    assert not is_half and next(module.parameters()).dtype == torch.float32


def test_coalescing_a_fader_flood_is_exact() -> None:
    # Applying only the last value of each absolute setter gives the same state
    # as applying all of them, at one instant, whatever is interleaved.
    import random

    from server.commands import parse
    from server.engine import coalesce
    from server.play import PlayState

    rng = random.Random(11)
    batches = []
    for _ in range(60):
        kind = rng.randrange(5)
        if kind == 0:
            batches.append([parse("/latent/xy", [rng.random(), rng.random()])])
        elif kind == 1:
            batches.append([parse(f"/latent/dir/{rng.randint(1, 3)}", [rng.uniform(-1, 1)])])
        elif kind == 2:
            batches.append([parse(f"/keyframe/{rng.randint(1, 16)}/jump", [rng.random()])])
        elif kind == 3:
            batches.append([parse(f"/keyframe/{rng.randint(1, 16)}/store", [])])
        else:
            batches.append(
                [parse("/latent/truncation", [rng.random()]), parse("/latent/xy", [0.1, 0.9])]
            )
    every, fewer = PlayState(z_dim=16), PlayState(z_dim=16)
    for play, todo in ((every, batches), (fewer, coalesce(batches))):
        play.latent(1.0, 0.03)
        for batch in todo:
            play.apply_batch(batch, 2.0)
    assert sum(map(len, coalesce(batches))) < sum(map(len, batches))
    assert torch.equal(every.bank, fewer.bank)
    for t in (2.0, 2.05, 3.0, 10.0):
        assert torch.allclose(every.latent(t, 0.03), fewer.latent(t, 0.03))


def _answers(changes: list[Change]) -> list[Change]:
    """The answers to /model/load: the switch's state, or an error naming it."""
    return [
        c
        for c in changes
        if c.address == "/model/load" or (c.address == ERROR_ADDRESS and c.args[0] == "/model/load")
    ]


def _model_file(folder: Path, name: str, config: dict[str, object] | None = None) -> Path:
    """A real model file; `config` replaces its metadata's config (a file with bad numbers)."""
    model = tiny_model(seed=2)
    path = folder / f"{name}.safetensors"
    save_checkpoint(
        path, arch="dcgan", config=model.module.config, weights=model.module, training={}
    )
    if config is not None:
        meta, tensors = read_tensors(path)
        meta["config"] = config
        save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def _loading_engine(path: Path, **kwargs: Any) -> tuple[Engine, list[Change]]:
    changes: list[Change] = []
    engine = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=torch.device("cpu"),
        catalog=Catalog(user_dir=path.parent),
        hooks=EngineHooks(on_changes=changes.extend),
        **kwargs,
    )
    # The load runs inline on the calling thread, so the test decides what happens between
    # the load and the switch (start_io is the engine's own seam for blocking work).
    engine.start_io = lambda work: work()
    return engine, changes


def test_a_model_file_gone_before_the_switch_still_answers_and_frees_loading(
    tmp_path: Path,
) -> None:
    # The soak's "model deleted as it loads": the file was read whole, then deleted before
    # the switch checked it against the mirror encoder (which hashes the file).
    path = _model_file(tmp_path, "beta")
    encoder = replace(tiny_encoder(), metadata={"generator": {"sha256": "0" * 64}})
    engine, changes = _loading_engine(path, encoder=encoder)
    engine.submit([parse("/model/load", ["beta"], origin="performer")])
    engine.render_once()  # loads beta and hands it over
    path.unlink()
    engine.render_once()  # the switch
    assert engine.stats()["loading_model"] is None
    assert engine.model.name == "beta"
    assert [c.args for c in _answers(changes)] == [("beta",)]
    assert engine.errors == 0


def test_a_model_file_whose_numbers_break_the_loader_answers_and_frees_loading(
    tmp_path: Path,
) -> None:
    # z_dim 10^400: an int no tensor shape holds (torch raised TypeError inside the loader).
    config = {"resolution": 32, "z_dim": 10**400, "ngf": 8, "max_channels": 32}
    path = _model_file(tmp_path, "huge", config)
    engine, changes = _loading_engine(path)
    engine.submit([parse("/model/load", ["huge"], origin="performer")])
    engine.render_once()
    engine.render_once()
    assert engine.stats()["loading_model"] is None
    assert engine.model.name == "tiny"  # the old model plays on
    (answer,) = _answers(changes)
    assert answer.address == ERROR_ADDRESS and answer.to == "performer"
    assert "huge.safetensors" in str(answer.args[1]) and "z_dim" in str(answer.args[1])
