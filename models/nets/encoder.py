"""Encoder: an image back to a generator's latent (the inverter behind mirror mode).

For a DCGAN the latent is z; for a StyleGAN it is a point in W (one w_dim
vector, broadcast to every layer) or in W+ (one vector per synthesis layer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch.nn as nn
from torch import Tensor

from models.nets.dcgan import init_weights, stage_channels
from models.resolution import check_resolution

logger = logging.getLogger(__name__)


SPACES = ("z", "w", "w+")


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of an encoder: input size, the latent size it predicts, widths."""

    resolution: int = 128  # side in px; the generator's resolution
    z_dim: int = 128  # the generator's latent size
    nef: int = 32  # channels at the first layer
    max_channels: int = 256  # cap on every layer's width
    space: str = "z"  # what it predicts: "z" (DCGAN), "w" or "w+" (StyleGAN; z_dim = w_dim)
    num_ws: int = 1  # "w+": one w per synthesis layer

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        if self.space not in SPACES:
            raise ValueError(f"EncoderConfig.space must be one of {', '.join(SPACES)}")
        for name in ("z_dim", "nef", "max_channels", "num_ws"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EncoderConfig.{name} must be a positive int, got {value!r}")


class Encoder(nn.Module):
    """Image (B, 3, R, R) in [-1, 1] -> latent (B, z_dim), or (B, num_ws, w_dim) in W+."""

    def __init__(self, *, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.resolution = config.resolution
        self.z_dim = config.z_dim
        R, cap = config.resolution, config.max_channels
        layers: list[nn.Module] = []
        size, c_in = R, 3
        while size > 4:
            c_out = stage_channels(width=config.nef, resolution=R, size=size // 2, cap=cap)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=c_in == 3))
            if c_in != 3:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            size, c_in = size // 2, c_out
        self.features = nn.Sequential(*layers)
        outputs = config.z_dim * (config.num_ws if config.space == "w+" else 1)
        self.to_latent = nn.Linear(c_in * 16, outputs)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)  # (B, C, 4, 4)
        latent = self.to_latent(h.flatten(1))  # (B, z_dim) or (B, num_ws * w_dim)
        if self.config.space == "w+":
            return latent.reshape(x.shape[0], self.config.num_ws, self.z_dim)  # (B, num_ws, w_dim)
        return latent
