"""Tiny real StyleGAN2 / StyleGAN3 generators (random weights) for the engine's tests."""

from __future__ import annotations

from pathlib import Path

import torch

from models.checkpoint import LoadedModel
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from models.nets.stylegan3 import StyleGAN3Config, StyleGAN3Generator
from tests.support.stylegan_weights import fill_weights

Z_DIM = W_DIM = 16


def tiny_stylegan(
    *, name: str = "tiny-sg", seed: int = 0, c_dim: int = 0, sg3: bool = False
) -> LoadedModel:
    """A 32 px StyleGAN2 (or StyleGAN3-T) with random weights and w_avg at its mapping mean."""
    module: StyleGAN2Generator | StyleGAN3Generator
    if sg3:
        config3 = StyleGAN3Config(
            z_dim=Z_DIM,
            w_dim=W_DIM,
            c_dim=c_dim,
            img_resolution=32,
            channel_base=512,
            channel_max=32,
            num_layers=4,
            num_critical=1,
            num_fp16_res=0,
        )
        module = StyleGAN3Generator(config=config3)
    else:
        config2 = StyleGAN2Config(
            z_dim=Z_DIM,
            w_dim=W_DIM,
            c_dim=c_dim,
            img_resolution=32,
            mapping_layers=2,
            channel_base=256,
            channel_max=16,
        )
        module = StyleGAN2Generator(config=config2)
    module.load_state_dict(fill_weights(module, seed))
    module.eval()
    with torch.no_grad():  # w_avg where training leaves it: the mean of mapped latents
        z = torch.randn(512, Z_DIM, generator=torch.Generator().manual_seed(seed))
        c = torch.eye(c_dim)[torch.arange(512) % c_dim] if c_dim else None
        module.mapping.w_avg.copy_(module.mapping(z, c)[:, 0].mean(0))
    return LoadedModel(
        name=name,
        path=Path(f"{name}.safetensors"),
        arch="stylegan3" if sg3 else "stylegan2",
        kind="unconditional",
        module=module,
        resolution=32,
        z_dim=Z_DIM,
        metadata={},
    )
