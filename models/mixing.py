"""Two decks' pictures into one: the crossfade curves, the blend modes and the deck faders.

Pure tensor maths on the device, on pictures (B, 3, H, W) in [-1, 1], the
generators' own scale: the result goes straight into the one colour
conversion (models.pixels.to_yuv420), which applies the master grade.

The blend modes work on light in 0..1 (u = (x + 1) / 2) as image editors
define them; `normal` is deck b itself, so a linear crossfade with `normal` is
exactly (1 - x)·a + x·b on the pictures. Between the endpoints, deck b laid
over deck a by the mode is weighted against deck a by the curve:
out = wa·a + wb·blend(a, b).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CURVES = ("linear", "power", "cut")
MODES = ("normal", "add", "screen", "multiply", "difference", "lighten", "darken", "lumakey")
_LUMA = (0.299, 0.587, 0.114)  # BT.601, as the master grade's saturation


def weights(x: float, curve: str) -> tuple[float, float]:
    """(weight of a, weight of b) at crossfade x: linear, equal power, or a cut at the middle."""
    if curve == "linear":
        return 1.0 - x, x
    if curve == "power":
        return math.cos(x * math.pi / 2.0), math.sin(x * math.pi / 2.0)
    if curve == "cut":
        return (1.0, 0.0) if x < 0.5 else (0.0, 1.0)
    raise ValueError(f"curve must be one of {', '.join(CURVES)}, got {curve!r}")


def blend(a: Tensor, b: Tensor, mode: str) -> Tensor:
    """Deck b laid over deck a by `mode`, both in [-1, 1]; the result in [-1, 1]."""
    if mode == "normal":
        return b
    u, v = (a + 1.0) * 0.5, (b + 1.0) * 0.5
    if mode == "add":
        out = (u + v).clamp(max=1.0)
    elif mode == "screen":
        out = 1.0 - (1.0 - u) * (1.0 - v)
    elif mode == "multiply":
        out = u * v
    elif mode == "difference":
        out = (u - v).abs()
    elif mode == "lighten":
        out = torch.maximum(u, v)
    elif mode == "darken":
        out = torch.minimum(u, v)
    elif mode == "lumakey":
        # b's brightness is its opacity: its dark parts let a through.
        luma = (v[:, :1] * _LUMA[0] + v[:, 1:2] * _LUMA[1] + v[:, 2:3] * _LUMA[2]).clamp(0.0, 1.0)
        out = u * (1.0 - luma) + v * luma
    else:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return out * 2.0 - 1.0


def dim(image: Tensor, level: float) -> Tensor:
    """A deck's fader: light scaled by `level` (0 black); 1 returns the picture itself."""
    if level >= 1.0:
        return image
    return (image.clamp(-1.0, 1.0) + 1.0) * level - 1.0


def mix(a: Tensor, b: Tensor, x: float, curve: str = "linear", mode: str = "normal") -> Tensor:
    """Decks a and b (same shape) at crossfade x: a itself at 0, b itself at 1 (no arithmetic)."""
    if x <= 0.0:
        return a
    if x >= 1.0:
        return b
    wa, wb = weights(x, curve)
    if wb == 0.0:
        return a
    if wa == 0.0 and mode == "normal":
        return b
    return a * wa + blend(a, b, mode) * wb
