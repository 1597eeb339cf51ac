"""pix2pix: a U-Net generator and a PatchGAN discriminator for image-to-image models."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from models.nets.dcgan import init_weights
from models.resolution import check_resolution

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pix2PixConfig:
    """Shape of a pix2pix model: size, widths, discriminator depth, dropout."""

    resolution: int = 128  # side of the square pictures in px
    ngf: int = 32  # U-Net channels at the outermost level
    ndf: int = 32  # PatchGAN channels at the first layer
    max_channels: int = 256  # cap on every layer's width
    n_layers_d: int = 3  # PatchGAN strided layers (3 gives a 70x70 receptive field)
    dropout: float = 0.0  # dropout in the three innermost decoder blocks (training only)

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        for name in ("ngf", "ndf", "max_channels", "n_layers_d"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Pix2PixConfig.{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Pix2PixConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def depth(self) -> int:
        """Number of down-sampling levels: all the way to 1x1."""
        return self.resolution.bit_length() - 1


class UNetGenerator(nn.Module):
    """Image (B, 3, R, R) -> image (B, 3, R, R) in [-1, 1], with skips at every level."""

    def __init__(self, *, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = config
        self.resolution = config.resolution
        depth = config.depth
        chans = [min(config.max_channels, config.ngf * 2**i) for i in range(depth)]
        downs: list[nn.Module] = []
        for i in range(depth):
            c_in = 3 if i == 0 else chans[i - 1]
            layers: list[nn.Module] = [nn.Conv2d(c_in, chans[i], 4, 2, 1, bias=False)]
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(chans[i]))
            layers.append(
                nn.ReLU(inplace=True) if i == depth - 1 else nn.LeakyReLU(0.2, inplace=True)
            )
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)
        ups: list[nn.Module] = []
        for i in range(depth - 1, 0, -1):  # level i -> level i - 1
            c_in = chans[i] if i == depth - 1 else 2 * chans[i]
            layers = [
                nn.ConvTranspose2d(c_in, chans[i - 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(chans[i - 1]),
            ]
            if config.dropout > 0 and i >= depth - 3:
                layers.append(nn.Dropout(config.dropout))
            layers.append(nn.ReLU(inplace=True))
            ups.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList(ups)
        c_last = chans[0] if depth == 1 else 2 * chans[0]
        self.to_rgb = nn.ConvTranspose2d(c_last, 3, 4, 2, 1)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for down in self.downs:
            x = down(x)  # (B, C_i, R / 2^(i+1), R / 2^(i+1))
            skips.append(x)
        x = skips.pop()  # (B, C_inner, 1, 1)
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], dim=1)  # (B, 2 C_i, s, s)
        return torch.tanh(self.to_rgb(x))  # (B, 3, R, R)


class PatchDiscriminator(nn.Module):
    """(source, target) pair (B, 6, R, R) -> a grid of patch logits (B, 1, H', W')."""

    def __init__(self, *, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = config
        cap = config.max_channels
        layers: list[nn.Module] = [nn.Conv2d(6, config.ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c_in = config.ndf
        n_layers = min(config.n_layers_d, config.depth - 2)  # keep the last map at least 4x4
        for i in range(1, n_layers + 1):
            c_out = min(cap, config.ndf * 2**i)
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, True),
            ]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, source: Tensor, target: Tensor) -> Tensor:
        return self.net(torch.cat([source, target], dim=1))  # (B, 1, H', W')
