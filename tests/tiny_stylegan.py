"""Tiny StyleGAN-interface generators for engine tests (the networks' own tests are elsewhere).

They expose exactly the contract's interface (mapping() with w_avg, synthesis()
with noise settings, num_ws, c_dim; SG3's input transform), so the engine is
tested on the real interface while the networks stay small and fast.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.checkpoint import LoadedModel
from tests.conftest import in_memory


class _Mapping(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int) -> None:
        super().__init__()
        self.num_ws = num_ws
        self.embed = nn.Linear(c_dim, w_dim) if c_dim else None
        self.net = nn.Sequential(
            nn.Linear(z_dim + (w_dim if c_dim else 0), w_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(w_dim, w_dim),
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor,
        c: Tensor | None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.embed is not None:
            assert c is not None, "a conditional mapping needs c"
            x = torch.cat([x, self.embed(c)], dim=1)
        w = self.net(x)  # (B, w_dim)
        ws = w[:, None].repeat(1, self.num_ws, 1)  # (B, num_ws, w_dim)
        if truncation_psi != 1.0:
            ws = self.w_avg.lerp(ws, truncation_psi)
        return ws


class _Input(nn.Module):
    """Fourier features on a grid moved by `transform`, as SG3's input layer is."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", torch.randn(channels, 2) * 3.0)
        self.register_buffer("phases", torch.rand(channels) * 2 * math.pi)

    def forward(self, size: int) -> Tensor:
        axis = (torch.arange(size, device=self.freqs.device) + 0.5) / size - 0.5
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        points = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # (R, R, 3)
        moved = points @ self.transform.T  # (R, R, 3)
        angles = moved[..., :2] @ self.freqs.T + self.phases  # (R, R, C)
        return torch.sin(2 * math.pi * angles).permute(2, 0, 1)[None]  # (1, C, R, R)


class _Synthesis(nn.Module):
    def __init__(self, w_dim: int, num_ws: int, resolution: int, fourier: bool) -> None:
        super().__init__()
        self.num_ws, self.w_dim, self.resolution = num_ws, w_dim, resolution
        self.channels = 8
        self.input = _Input(self.channels) if fourier else None
        self.base = nn.Parameter(torch.randn(1, self.channels, 4, 4))
        self.styles = nn.ModuleList(nn.Linear(w_dim, self.channels) for _ in range(num_ws))
        self.to_rgb = nn.Conv2d(self.channels, 3, 1)
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(
        self, ws: Tensor, *, noise_mode: str = "const", noise_strength: float = 1.0
    ) -> Tensor:
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), "ws: (B, num_ws, w_dim)"
        r = self.resolution
        if self.input is not None:
            x = self.input(r).expand(ws.shape[0], -1, -1, -1)
        else:
            x = nn.functional.interpolate(self.base, size=(r, r), mode="bilinear")
            x = x.expand(ws.shape[0], -1, -1, -1)
        for i, style in enumerate(self.styles):
            x = torch.tanh(x * (1 + style(ws[:, i]))[:, :, None, None])
        if noise_mode != "none":
            const = self.noise_const
            noise = const if noise_mode == "const" else torch.randn_like(const)
            x = x + 0.5 * noise_strength * noise
        return torch.tanh(self.to_rgb(x))


class TinyStyleGAN(nn.Module):
    """z (+ c) -> W -> picture, with the contract's attributes."""

    def __init__(
        self,
        *,
        z_dim: int = 16,
        w_dim: int = 16,
        c_dim: int = 0,
        resolution: int = 32,
        num_ws: int = 8,
        fourier: bool = False,
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim, self.num_ws = z_dim, w_dim, c_dim, num_ws
        self.img_resolution, self.img_channels = resolution, 3
        self.mapping = _Mapping(z_dim, c_dim, w_dim, num_ws)
        self.synthesis = _Synthesis(w_dim, num_ws, resolution, fourier)

    def forward(self, z: Tensor, c: Tensor | None = None, **kwargs: object) -> Tensor:
        return self.synthesis(self.mapping(z, c))


def tiny_stylegan(
    *, name: str = "tiny-sg", seed: int = 0, c_dim: int = 0, fourier: bool = False
) -> LoadedModel:
    """A small StyleGAN-interface generator with w_avg set from its own mapping."""
    torch.manual_seed(seed)
    module = TinyStyleGAN(c_dim=c_dim, fourier=fourier).eval()
    with torch.no_grad():
        z = torch.randn(512, module.z_dim)
        c = torch.eye(c_dim)[torch.randint(0, c_dim, (512,))] if c_dim else None
        module.mapping.w_avg.copy_(module.mapping(z, c)[:, 0].mean(0))
    module.config = type("Config", (), {"resolution": 32})()  # type: ignore[assignment]
    arch = "stylegan3" if fourier else "stylegan2"
    return in_memory(module, name=name, arch=arch, kind="unconditional", z_dim=module.z_dim)
