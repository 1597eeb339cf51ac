"""Differentiable augmentation for GAN training on small datasets.

A discriminator trained on a few hundred frames memorises them and stops
teaching the generator. Showing it every picture, real and fake alike, through
the same random transforms keeps it honest (Zhao et al. 2020, "Differentiable
Augmentation"; Karras et al. 2020, "Training GANs with Limited Data", ADA).

The transforms are DiffAugment's three cheap ones: integer translation by up to
1/8 of the side (zero fill), cutout of a square half the side, and colour
(brightness, saturation, contrast). Each is applied to each picture with
probability `p`. Gradients flow through all of them to the generator.

`p` is fixed ("diffaug", p = 1 as in DiffAugment) or adaptive ("ada"): ADA's
controller raises `p` while the discriminator is too sure of the training
pictures (the mean sign of its real logits above a target, 0.6) and lowers it
otherwise. Kept below 1, every transform leaves some pictures untouched, so the
generator is not pushed to draw the augmentations themselves (ADA's
"non-leaking" argument; the controller caps `p` at `ADA_MAX_P`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

AUGMENTS = ("ada", "diffaug", "none")
ADA_MAX_P = 0.8  # above this, ADA's transforms start to leak into the generated pictures
TRANSLATE_FRACTION = 0.125  # of the side, each way
CUTOUT_FRACTION = 0.5  # side of the erased square, as a fraction of the picture's


def _chosen(
    batch: int, p: float, *, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """(B, 1, 1, 1) float mask: 1 where a transform applies to that picture."""
    draw = torch.rand([batch, 1, 1, 1], generator=generator).to(device)
    return (draw < p).float()


def _uniform(
    batch: int, low: float, high: float, *, like: Tensor, generator: torch.Generator | None
) -> Tensor:
    """(B, 1, 1, 1) uniform draws in [low, high) on the tensor's device and dtype."""
    draw = torch.rand([batch, 1, 1, 1], generator=generator) * (high - low) + low
    return draw.to(device=like.device, dtype=like.dtype)


def colour(x: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Brightness +-0.5, saturation x0..2, contrast x0.5..1.5, each with probability p."""
    b = x.shape[0]
    on = _chosen(b, p, device=x.device, generator=generator).to(x.dtype)
    x = x + on * _uniform(b, -0.5, 0.5, like=x, generator=generator)
    on = _chosen(b, p, device=x.device, generator=generator).to(x.dtype)
    grey = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    scale = 1 + on * (_uniform(b, 0.0, 2.0, like=x, generator=generator) - 1)
    x = grey + (x - grey) * scale
    on = _chosen(b, p, device=x.device, generator=generator).to(x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    scale = 1 + on * (_uniform(b, 0.5, 1.5, like=x, generator=generator) - 1)
    return mean + (x - mean) * scale


def translate(x: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Shift by whole pixels, up to 1/8 of the side each way, zero fill; probability p."""
    b, _, h, w = x.shape
    on = _chosen(b, p, device=torch.device("cpu"), generator=generator).reshape(b, 1)
    limit = torch.tensor([w * TRANSLATE_FRACTION, h * TRANSLATE_FRACTION])
    shift = ((torch.rand([b, 2], generator=generator) * 2 - 1) * limit).round() * on  # (B, 2) px
    # Integer shifts sampled at pixel centres with nearest: exact copies, no blur.
    theta = torch.zeros([b, 2, 3])
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = -shift[:, 0] * 2 / w
    theta[:, 1, 2] = -shift[:, 1] * 2 / h
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def cutout(x: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Zero a square half the side, at a random place, with probability p."""
    b, _, h, w = x.shape
    on = _chosen(b, p, device=torch.device("cpu"), generator=generator).reshape(b, 1, 1)
    size_y, size_x = int(h * CUTOUT_FRACTION + 0.5), int(w * CUTOUT_FRACTION + 0.5)
    # The square's centre anywhere in the picture: near an edge, part of it falls outside.
    top = torch.randint(0, h, [b, 1, 1], generator=generator) - size_y // 2
    left = torch.randint(0, w, [b, 1, 1], generator=generator) - size_x // 2
    ys = torch.arange(h).reshape(1, h, 1)
    xs = torch.arange(w).reshape(1, 1, w)
    inside = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)  # (B, H, W)
    keep = 1 - (inside.float() * on)
    return x * keep.unsqueeze(1).to(x.device, x.dtype)


def augment(x: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Colour, translation and cutout, each per picture with probability p: (B, C, H, W)."""
    if p <= 0:
        return x
    x = colour(x, p, generator=generator)
    x = translate(x, p, generator=generator)
    return cutout(x, p, generator=generator)


@dataclass
class AdaptiveProbability:
    """ADA's controller: nudge p so the real logits' mean sign stays near `target`.

    Every `interval` steps, p moves by (images seen since) / (speed_kimg * 1000)
    toward more augmentation if the discriminator overfits, less if not.
    """

    p: float = 0.0
    target: float = 0.6
    speed_kimg: float = 100.0  # images for p to travel 0 -> 1, in thousands
    interval: int = 4  # steps between adjustments
    max_p: float = ADA_MAX_P
    _signs: float = 0.0
    _count: int = 0
    _steps: int = 0
    last_rt: float = 0.0  # the overfitting heuristic r_t at the last adjustment

    def observe(self, real_logits: Tensor) -> None:
        """Accumulate sign(D(real)) of one discriminator step."""
        self._signs += float(real_logits.detach().sign().sum())
        self._count += int(real_logits.numel())

    def step(self, batch: int) -> None:
        """Count one training step of `batch` images; adjust p every `interval` steps."""
        self._steps += 1
        if self._steps < self.interval or self._count == 0:
            return
        self.last_rt = self._signs / self._count
        delta = (
            (batch * self._steps)
            / (self.speed_kimg * 1000)
            * (1 if self.last_rt > self.target else -1)
        )
        self.p = min(max(self.p + delta, 0.0), self.max_p)
        self._signs, self._count, self._steps = 0.0, 0, 0
