"""The GPU path proves itself at load and survives faults, tested on the CPU through the
fault hooks (models.faults) that run unchanged on a GPU."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models.catalog import Catalog
from models.checkpoint import LoadedModel, save_checkpoint
from models.fastpath import MEAN_TOLERANCE, agreement
from models.faults import FaultError, Faults
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from server.commands import ERROR_ADDRESS, Change, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.gpu_guard import is_device_error
from tests.conftest import tiny_model
from tests.support.nvidia_pickles import perturb

CPU = torch.device("cpu")


def flagged_stylegan(name: str = "sg-fp16") -> LoadedModel:
    """A 32 px StyleGAN2 whose file flags two blocks fp16: a fast path to plan and prove."""
    config = StyleGAN2Config(
        z_dim=8,
        w_dim=8,
        img_resolution=32,
        mapping_layers=2,
        channel_base=256,
        channel_max=16,
        num_fp16_res=2,
        conv_clamp=256,
    )
    torch.manual_seed(0)
    module = StyleGAN2Generator(config=config).eval()
    perturb(module, 1)
    return LoadedModel(
        name=name,
        path=Path(f"{name}.safetensors"),
        arch="stylegan2",
        kind="unconditional",
        module=module,
        resolution=32,
        z_dim=8,
        metadata={},
    )


def engine_with(
    spec: str, model: LoadedModel | None = None, **render: object
) -> tuple[Engine, Faults]:
    faults = Faults.parse(spec)
    config = RenderConfig(size=32, fps=100, threads=1, **render)  # type: ignore[arg-type]
    engine = Engine(model=model or flagged_stylegan(), config=config, device=CPU, faults=faults)
    return engine, faults


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def released() -> Iterator[list[Faults]]:
    """Faults whose hung compiles are let go when the test ends."""
    armed: list[Faults] = []
    yield armed
    for faults in armed:
        faults.release()


def test_faults_parse_names_and_refuse_unknown_ones() -> None:
    faults = Faults.parse(" fastpath-nan, compile-hang,device-error-after:30 ")
    assert faults.fastpath_nan and faults.compile_hang and faults.device_error_after == 30
    assert faults.names() == ["fastpath-nan", "compile-hang", "device-error-after:30"]
    assert not Faults.parse("").any and not Faults.parse("").verify_anywhere
    assert Faults.parse("oom-on-load").any and not Faults.parse("oom-on-load").verify_anywhere
    for bad, words in (
        ("fastpath-nope", "unknown fault 'fastpath-nope'"),
        ("device-error-after", "needs a frame count"),
        ("device-error-after:-1", "N >= 0"),
        ("compile-raise:3", "takes no argument"),
    ):
        with pytest.raises(FaultError, match=words):
            Faults.parse(bad)


def test_faults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANVJ_FAULTS", "oom-on-load")
    assert Faults.from_env().oom_on_load
    monkeypatch.delenv("GANVJ_FAULTS")
    assert not Faults.from_env().any


def test_agreement_allows_fp16_rounding_and_nothing_more() -> None:
    exact = [torch.rand(1, 3, 16, 16) * 2 - 1 for _ in range(2)]
    rounded = [x.half().float() for x in exact]  # one fp16 rounding: far inside
    assert agreement(exact, rounded) is None
    drifted = [x + 2 * MEAN_TOLERANCE for x in exact]
    assert "differs from fp32" in (agreement(exact, drifted) or "")
    spoiled = [exact[0], exact[1].clone()]
    spoiled[1][0, 0, 0, 0] = float("inf")
    assert agreement(exact, spoiled) == "frame 2 has 1 NaN/Inf values on the fast path"


def test_the_cpu_plays_fp32_without_verifying_by_default() -> None:
    engine, _ = engine_with("")
    stats = engine.stats()
    assert stats["path"] == "fp32" and not stats["path_verified"]
    assert "exact fp32 path" in stats["path_notes"][0]
    assert stats["faults"] == []


def test_a_fast_path_that_matches_fp32_is_kept_verified() -> None:
    # device-error-after far away: the fast path is planned and verified on the CPU.
    engine, _ = engine_with("device-error-after:100000")
    stats = engine.stats()
    assert stats["path"] == "fp16 x2+channels-last" and stats["path_verified"]


@pytest.mark.parametrize(
    ("spec", "why"),
    [("fastpath-nan", "NaN/Inf values on the fast path"), ("fastpath-drift", "differs from fp32")],
)
def test_a_fast_path_off_fp32_falls_back_to_fp32(spec: str, why: str) -> None:
    engine, _ = engine_with(spec)
    stats = engine.stats()
    assert stats["path"] == "fp32" and not stats["path_verified"]
    assert "fast path fp16 x2+channels-last rejected" in stats["path_notes"][-1]
    assert why in stats["path_notes"][-1]
    assert engine.deck.module.synthesis.fast is False  # type: ignore[union-attr]
    engine.render_once()  # and it draws


def test_a_dcgan_whose_half_precision_drifts_plays_fp32() -> None:
    engine, _ = engine_with("fastpath-nan", model=tiny_model())
    assert engine.stats()["path"] == "fp32" and not engine.deck.half
    assert "half precision rejected" in engine.stats()["path_notes"][-1]


def test_a_compile_that_raises_plays_eager() -> None:
    engine, _ = engine_with("compile-raise", compile=True)
    stats = engine.stats()
    assert stats["path"] == "fp16 x2+channels-last" and stats["path_verified"]
    assert "torch.compile failed (InjectedCompileError" in stats["path_notes"][-1]
    engine.render_once()


def test_a_compile_that_hangs_plays_eager_after_the_deadline(released: list[Faults]) -> None:
    # compile-hang compiles even with render.compile off: the hook asks for the attempt.
    engine, faults = engine_with("compile-hang", compile_deadline_s=0.2)
    released.append(faults)
    stats = engine.stats()
    assert (
        "torch.compile failed (CompileTimeout: did not finish within 0.2 s)"
        in (stats["path_notes"][-1])
    )
    assert stats["path"] == "fp16 x2+channels-last"
    frame = engine.render_once()  # eager: the hung forward is not the one playing
    assert frame.index == 1


def test_out_of_memory_on_load_keeps_the_playing_model(tmp_path: Path) -> None:
    other = tiny_model(seed=3)
    path = tmp_path / "other.safetensors"
    config = other.module.config
    save_checkpoint(path, arch="dcgan", config=config, weights=other.module, training={})
    heard: list[Change] = []
    got = threading.Event()

    def on_changes(changes: list[Change]) -> None:
        heard.extend(changes)
        if any(c.address == ERROR_ADDRESS for c in changes):
            got.set()

    engine = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32, fps=100, threads=1),
        device=CPU,
        faults=Faults.parse("oom-on-load"),
        catalog=Catalog(user_dir=tmp_path),
        hooks=EngineHooks(on_changes=on_changes),
    )
    with engine:
        wait_for(lambda: engine.frames.latest()[0] >= 2)
        assert engine.submit([parse("/model/load", ["other"])])
        assert got.wait(10)
        seen = engine.frames.latest()[0]
        wait_for(lambda: engine.frames.latest()[0] > seen + 3)  # frames keep coming
    errors = [c for c in heard if c.address == ERROR_ADDRESS]
    assert errors[0].args[0] == "/model/load"
    assert "not enough GPU memory for other" in str(errors[0].args[1])
    assert "the playing model goes on" in str(errors[0].args[1])
    assert engine.model.name == "tiny" and engine.stats()["loading_model"] is None
    assert not any(c.address == "/model/load" for c in heard)


def test_a_device_error_mid_show_falls_back_and_frames_keep_coming() -> None:
    heard: list[Change] = []
    faults = Faults.parse("device-error-after:5")
    engine = Engine(
        model=flagged_stylegan(),
        config=RenderConfig(size=32, fps=100, threads=1),
        device=CPU,
        faults=faults,
        hooks=EngineHooks(on_changes=heard.extend),
    )
    assert engine.stats()["path"] == "fp16 x2+channels-last"
    with engine:
        wait_for(lambda: engine.errors >= 1)
        seen = engine.frames.latest()[0]
        wait_for(lambda: engine.frames.latest()[0] > seen + 5)
        assert engine._thread is not None and engine._thread.is_alive()
    stats = engine.stats()
    assert stats["render_errors"] == 1
    assert stats["path"] == "fp32"
    assert "device error on fp16 x2+channels-last" in stats["path_notes"][-1]
    assert "illegal memory access" in stats["last_error"]
    fallbacks = [c for c in heard if c.address == ERROR_ADDRESS and c.args[0] == "/render"]
    assert len(fallbacks) == 1 and "fp32 on cpu" in str(fallbacks[0].args[1])


def test_device_errors_are_told_from_other_errors() -> None:
    assert is_device_error(RuntimeError("CUDA error: device-side assert triggered"))
    assert is_device_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert not is_device_error(RuntimeError("shape mismatch"))
    assert not is_device_error(ValueError("CUDA error"))  # not raised by a device


def test_a_device_error_on_deck_b_falls_back_deck_b_and_leaves_deck_a_alone() -> None:
    heard: list[Change] = []
    # Past the start's keyframe thumbnails (deck a's, one a frame, 16), so the error
    # strikes a forward of deck b, the only deck rendering at crossfade 1.
    faults = Faults.parse("device-error-after:40")
    engine = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32, fps=100, threads=1),
        device=CPU,
        faults=faults,
        hooks=EngineHooks(on_changes=heard.extend),
    )
    engine.set_deck_b(flagged_stylegan(), 0.0)
    assert engine.deck_b is not None and engine.deck_b.path.describe() == "fp16 x2+channels-last"
    path_a = engine.deck.path.describe()
    engine.submit([parse("/mix/crossfade", [1.0])])
    with engine:
        wait_for(lambda: engine.errors >= 1)
        seen = engine.frames.latest()[0]
        wait_for(lambda: engine.frames.latest()[0] > seen + 5)
    assert engine.deck_b.path.describe() == "fp32"
    assert "device error on fp16 x2+channels-last" in engine.deck_b.path.notes[-1]
    assert engine.deck.path.describe() == path_a  # deck a was not the one that failed
    fallbacks = [c for c in heard if c.address == ERROR_ADDRESS and c.args[0] == "/render"]
    assert len(fallbacks) == 1 and str(fallbacks[0].args[1]).startswith("deck b: ")
