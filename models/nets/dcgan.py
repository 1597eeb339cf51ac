"""DCGAN generator and discriminator for any power-of-two resolution."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from models.nets.ops import wide_shape, widen
from models.resolution import check_resolution

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DCGANConfig:
    """Shape of a DCGAN: output size, latent size and channel widths."""

    resolution: int = 128  # side of the square pictures in px
    z_dim: int = 128
    ngf: int = 64  # generator channels at the last hidden layer
    ndf: int = 64  # discriminator channels at the first layer
    max_channels: int = 256  # cap on every layer's width

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        for name in ("z_dim", "ngf", "ndf", "max_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DCGANConfig.{name} must be a positive int, got {value!r}")


def stage_channels(*, width: int, resolution: int, size: int, cap: int) -> int:
    """Channels of a feature map of side `size`: doubles per halving of size, capped."""
    return min(cap, width * resolution // (2 * size))


class DCGANGenerator(nn.Module):
    """z (B, z_dim) -> image (B, 3, R, R) in [-1, 1]: a 4x4 projection, then upsample + conv."""

    # A canvas of another shape is painted by the network (models.canvas, "native").
    PAINTS_ANY_ASPECT = True

    def __init__(self, *, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.resolution = config.resolution
        R, cap = config.resolution, config.max_channels
        c0 = stage_channels(width=config.ngf, resolution=R, size=4, cap=cap)
        # project: (B, z_dim, 1, 1) -> (B, c0, 4, 4)
        self.project = nn.Sequential(
            nn.ConvTranspose2d(config.z_dim, c0, 4, 1, 0, bias=False),
            nn.BatchNorm2d(c0),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        size, c_in = 4, c0
        while size * 2 < R:
            c_out = stage_channels(width=config.ngf, resolution=R, size=size * 2, cap=cap)
            # Resize then convolve: smooth from the first step, no checkerboard.
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            size, c_in = size * 2, c_out
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, 3, 3, 1, 1)
        )
        self.apply(init_weights)

    def forward(self, z: Tensor, *, aspect: float = 1.0) -> Tensor:
        """z (B, z_dim) -> (B, 3, R, R); `aspect` (width / height) != 1 widens the 4x4 map.

        The first feature map is extended, mirrored about its edges, to about
        the aspect (4x7 for 16:9) and every later layer paints at its own
        scale over the whole width: (B, 3, R, 7R/4).
        """
        x = z.reshape(z.shape[0], self.z_dim, 1, 1)  # (B, z_dim, 1, 1)
        x = self.project(x)  # (B, c0, 4, 4)
        if aspect != 1.0:
            x = widen(x, *wide_shape(4, 4, aspect))  # (B, c0, 4, w0) or (B, c0, h0, 4)
        x = self.blocks(x)  # (B, ngf, R/2, R/2)
        return torch.tanh(self.to_rgb(x))  # (B, 3, R, R)


class DCGANDiscriminator(nn.Module):
    """Image (B, 3, R, R) -> one logit per image (B,) through strided convs."""

    def __init__(self, *, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        R, cap = config.resolution, config.max_channels
        layers: list[nn.Module] = []
        size, c_in = R, 3
        while size > 4:
            c_out = stage_channels(width=config.ndf, resolution=R, size=size // 2, cap=cap)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False))
            if c_in != 3:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            size, c_in = size // 2, c_out
        self.features = nn.Sequential(*layers)
        self.to_logit = nn.Conv2d(c_in, 1, 4, 1, 0)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)  # (B, C, 4, 4)
        return self.to_logit(h).flatten()  # (B,)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convs, N(1, 0.02) batch-norm scales."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def num_stages(resolution: int) -> int:
    """Number of doublings from 4x4 to the resolution."""
    return int(math.log2(resolution)) - 2
