"""The CUDA fast path's decisions, its fp16 arithmetic and its compile fallback, on the CPU."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import models.nets.stylegan2 as sg2
from models.fastpath import disable, enable, plan
from models.latent_maths import seed_latent
from models.nets.dcgan import DCGANConfig, DCGANGenerator
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from tests.support.nvidia_pickles import perturb

CUDA = torch.device("cuda")  # a device object only: nothing runs on it here
CPU = torch.device("cpu")


def generator(num_fp16_res: int, seed: int = 0) -> StyleGAN2Generator:
    config = StyleGAN2Config(
        z_dim=8,
        w_dim=8,
        img_resolution=32,
        mapping_layers=2,
        channel_base=256,
        channel_max=16,
        num_fp16_res=num_fp16_res,
        conv_clamp=256,
    )
    torch.manual_seed(seed)
    module = StyleGAN2Generator(config=config).eval()
    perturb(module, seed + 1)
    return module


def test_plan_is_exact_fp32_off_cuda() -> None:
    chosen = plan(generator(3), CPU, compile=True)
    assert (chosen.fp16, chosen.channels_last, chosen.compile) == (False, False, False)
    assert "exact fp32" in chosen.notes[0]
    assert chosen.describe() == "fp32"


def test_plan_uses_fp16_where_the_file_says() -> None:
    flagged = plan(generator(2), CUDA)
    assert flagged.fp16 and flagged.channels_last and flagged.fp16_blocks == 2
    assert flagged.describe() == "fp16 x2+channels-last"
    none = plan(generator(0), CUDA)
    assert not none.fp16 and not none.channels_last
    assert "no fp16 layers" in none.notes[0]
    off = plan(generator(2), CUDA, allow_fp16=False)
    assert not off.fp16 and "turned off" in off.notes[0]
    # A DCGAN has no StyleGAN blocks: nothing to switch (the engine's half flag covers it).
    dcgan = DCGANGenerator(config=DCGANConfig(resolution=32, z_dim=8, ngf=4, max_channels=8))
    assert not plan(dcgan, CUDA).fp16
    assert plan(generator(2), CUDA, compile=True, has_compiler=True).compile
    missing = plan(generator(2), CUDA, compile=True, has_compiler=False)
    assert not missing.compile and "not available" in missing.notes[-1]


def test_plan_finds_stylegan3_fp16_layers() -> None:
    from models.nets.stylegan3 import StyleGAN3Config, StyleGAN3Generator

    def sg3(num_fp16_res: int) -> StyleGAN3Generator:
        config = StyleGAN3Config(
            z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16,
            num_fp16_res=num_fp16_res,
        )  # fmt: skip
        return StyleGAN3Generator(config=config)

    flagged = plan(sg3(4), CUDA)
    assert flagged.fp16 and flagged.fp16_blocks > 0
    assert not plan(sg3(0), CUDA).fp16
    assert not plan(sg3(4), CPU).fp16


def test_compile_failure_falls_back_to_the_same_pictures() -> None:
    module = generator(2)
    z = seed_latent(1, 8)[None]
    with torch.no_grad():
        before = module(z)

    def broken_compiler(fn: Any) -> Any:
        def compiled(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("no C compiler in this room")

        return compiled

    def warmup(m: torch.nn.Module) -> None:
        with torch.no_grad():
            m(z)

    chosen = enable(module, CUDA, compile=True, compiler=broken_compiler, warmup=warmup)
    assert not chosen.compile
    assert "torch.compile failed (RuntimeError: no C compiler in this room)" in chosen.notes[-1]
    with torch.no_grad():
        assert torch.equal(module(z), before)  # eager again, and the CPU stays fp32

    calls = []

    def working_compiler(fn: Any) -> Any:
        def compiled(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return fn(*args, **kwargs)

        return compiled

    chosen = enable(module, CUDA, compile=True, compiler=working_compiler, warmup=warmup)
    assert chosen.compile and calls
    disable(module)
    calls.clear()
    with torch.no_grad():
        assert torch.equal(module(z), before)
    assert not calls and module.synthesis.fast is False


def test_fp16_blocks_stay_within_half_precision_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fp16 arithmetic itself (pre-normalised modulation, clamps, casts) runs on the
    # CPU here by letting the CPU count as a half-precision device.
    module = generator(3, seed=4)
    z = torch.stack([seed_latent(s, 8) for s in (0, 1)])
    with torch.no_grad():
        exact = module(z)
    monkeypatch.setattr(sg2, "HALF_DEVICE_TYPES", ("cuda", "cpu"))
    enable(module, CUDA)  # the CUDA decision: flagged blocks in fp16, channels-last
    assert module.synthesis.fast
    with torch.no_grad():
        half = module(z)  # batch 2: the non-fused modulation path of fp16 blocks
        single = module(z[:1])  # batch 1: fused
    assert half.dtype == torch.float32 and bool(torch.isfinite(half).all())
    assert (half - exact).abs().max() < 0.1  # a few levels of 255 at the worst pixel
    assert (half - exact).abs().mean() < 0.005
    assert (single - exact[:1]).abs().max() < 0.1
    assert not torch.equal(half, exact)  # it really ran in half precision


def test_bench_forward_reports_both_paths(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from server.bench.forward import main
    from tests.support.nvidia_pickles import stylegan2_ada_kwargs, write_network_pickle

    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    kwargs = stylegan2_ada_kwargs(
        z_dim=8, c_dim=2, w_dim=8, img_resolution=16, channel_base=64, channel_max=8
    )
    module = StyleGAN2Generator(config=StyleGAN2Config.from_nvidia_kwargs(kwargs))
    path = write_network_pickle(tmp_path / "tiny.pkl", module, init_kwargs=kwargs)
    assert main(["--model", str(path), "--seconds", "0.05", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "tiny (stylegan2, 16 px)" in out and " fp32 " in out
    assert "fast path = fp32 here (cpu: the exact fp32 path" in out
