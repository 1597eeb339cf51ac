"""Shared fixtures: tiny models, a running server on a free port, a WebRTC address."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch

from models.checkpoint import LoadedModel, save_checkpoint
from models.nets.dcgan import DCGANConfig, DCGANGenerator
from server.bench.netns import ADDRESS, has_address
from server.config import Config
from server.lifecycle import Running, running

# HOME and the XDG folders point at a temporary home for the whole run, and the run
# fails if the real home's ganvj folders were written (pytest finds hooks by name).
from tests.support.home_guard import (  # noqa: F401
    pytest_configure,
    pytest_sessionfinish,
    pytest_unconfigure,
)

# The address scripts/test gives this run's own network namespace (a veth pair):
# aioice never offers 127.0.0.1, and no other address may be a test target.
NAMESPACE_ADDRESS = ADDRESS


def in_memory(
    module: torch.nn.Module, *, name: str, arch: str, kind: str, z_dim: int | None
) -> LoadedModel:
    """A model as `load_model` returns one, built in memory (no file behind it)."""
    resolution = module.config.resolution  # type: ignore[union-attr]
    return LoadedModel(
        name=name,
        path=Path(f"{name}.safetensors"),
        arch=arch,
        kind=kind,
        module=module,
        resolution=resolution,
        z_dim=z_dim,
        metadata={},
    )


def tiny_model(resolution: int = 32, seed: int = 0) -> LoadedModel:
    """An untrained DCGAN, small enough to render hundreds of frames a second."""
    torch.manual_seed(seed)
    config = DCGANConfig(resolution=resolution, z_dim=16, ngf=8, max_channels=32)
    module = lively(DCGANGenerator(config=config).eval())
    last = [
        m for m in module.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        last[-1].weight.mul_(8.0)  # strong colours: pixel changes well above codec noise
    return in_memory(module, name="tiny", arch="dcgan", kind="unconditional", z_dim=config.z_dim)


def save_tiny_model(path: Path, resolution: int = 32, seed: int = 0) -> Path:
    """tiny_model(resolution, seed) written as a model file at `path` (a models folder's)."""
    model = tiny_model(resolution=resolution, seed=seed)
    save_checkpoint(
        path, arch="dcgan", config=model.module.config, weights=model.module, training={}
    )
    return path


def lively(module: torch.nn.Module) -> torch.nn.Module:
    """Variance-keeping weights instead of GAN training's N(0, 0.02) start.

    An untrained GAN draws flat grey whatever its input; these weights draw
    pictures that move with the input, which is what the tests look for.
    """
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return module


@pytest.fixture
def webrtc_host() -> str:
    """The namespace address for WebRTC tests; fails loudly outside scripts/test."""
    if not has_address(NAMESPACE_ADDRESS):
        pytest.fail(
            f"WebRTC tests need {NAMESPACE_ADDRESS}: run them through scripts/test, "
            "which makes a network namespace with a veth pair"
        )
    return NAMESPACE_ADDRESS


def server_config(host: str, **render: object) -> Config:
    """A config for tests: given host, free ports, small frames, a state folder of its own."""
    base = Config()
    overrides: dict[str, object] = {
        "server.host": host,
        # The namespace address is not loopback: trusting it explicitly keeps these
        # tests about what they test; tests/integration/test_access.py drops it.
        "server.trusted": [host],
        "server.port": 0,
        "server.state_dir": tempfile.mkdtemp(prefix="ganvj-test-"),
        "render.size": 64,
        "render.fps": 30.0,
        "osc.host": "127.0.0.1",
        "osc.port": 0,
    }
    overrides.update({f"render.{k}": v for k, v in render.items()})
    return base.with_overrides(overrides)


@pytest.fixture
async def live_server(webrtc_host: str) -> AsyncIterator[Running]:
    """The real server with a tiny model, on the namespace address and a free port."""
    async with running(server_config(webrtc_host), model=tiny_model()) as run:
        yield run


def tiny_pix2pix(resolution: int = 32, seed: int = 0) -> LoadedModel:
    """An untrained pix2pix U-Net: different inputs still give different outputs."""
    from models.nets.pix2pix import Pix2PixConfig, UNetGenerator

    torch.manual_seed(seed)
    config = Pix2PixConfig(resolution=resolution, ngf=4, max_channels=16)
    module = lively(UNetGenerator(config=config).eval())
    return in_memory(module, name="tiny-pix2pix", arch="pix2pix", kind="image2image", z_dim=None)


def tiny_encoder(resolution: int = 32, z_dim: int = 16, seed: int = 0) -> LoadedModel:
    """An untrained encoder for `tiny_model`'s latent size."""
    from models.nets.encoder import Encoder, EncoderConfig

    torch.manual_seed(seed)
    config = EncoderConfig(resolution=resolution, z_dim=z_dim, nef=4, max_channels=16)
    module = lively(Encoder(config=config).eval())
    return in_memory(module, name="tiny-encoder", arch="encoder", kind="encoder", z_dim=z_dim)
