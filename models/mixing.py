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


class Workspace:
    """Frame-sized buffers the mixer reuses from frame to frame.

    On a CPU a fresh 3 MB tensor (512 px) costs its page faults every time,
    about 1 ms, where one pass of arithmetic over it costs about 0.1 ms. A
    mix's result lives in this workspace until the next mix into it.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def get(self, name: str, like: Tensor, channels: int | None = None) -> Tensor:
        """The buffer `name`, shaped like `like` (with `channels` channels if given)."""
        shape = (like.shape[0], channels or like.shape[1], *like.shape[2:])
        buffer = self._buffers.get(name)
        if (
            buffer is None
            or buffer.shape != shape
            or buffer.dtype != like.dtype
            or buffer.device != like.device
        ):
            buffer = self._buffers[name] = like.new_empty(shape)
        return buffer


def _mix_into(a: Tensor, b: Tensor, wa: float, wb: float, mode: str, work: Workspace) -> Tensor:
    """wa·a + wb·blend(a, b, mode), written into the workspace in two or three full passes.

    On a CPU a pass costs what it moves: a 512 px frame is 3 MB, and between
    two frames the generator has pushed the mixer's buffers out of the caches,
    so the first pass over a and b reads memory (0.3-0.45 ms on the 2-core
    EPYC, 0.1 with all in cache) and each further pass over a whole frame
    costs 0.04-0.1 ms from L3. So each mode's formula on light
    (u = (x + 1) / 2) is expanded on the pictures with the weights and
    constants folded in, one fused torch op per step (lerp, addcmul, add with
    alpha), and written into `out` itself rather than a frame-sized
    temporary. Cutting the frame into L2-sized bands was measured and lost: a
    Python-level op costs ~2.5 µs, dozens per frame.

    Where blend(a, b) = m + c (m a tensor, c a constant), with s = wa + wb and
    w = wb / s: wa·a + wb·(m + c) = s·lerp(a, m, w) + wb·c, the lerp in one
    pass and s, c in one cheap in-place pass (none when s = 1 and c = 0).
    """
    out = work.get("out", a)
    if mode == "normal":
        # Each product rounded as written (no fused multiply-add: torch.add with alpha,
        # addcmul and lerp all round differently): a linear crossfade is exactly
        # (1 - x)·a + x·b, bit for bit. Three passes and a temporary.
        torch.mul(a, wa, out=out)
        return out.add_(torch.mul(b, wb, out=work.get("tmp", b)))
    s = wa + wb
    if mode in ("screen", "multiply"):
        # screen: 2·(1 - (1-u)(1-v)) - 1 = (1 + a + b - a·b) / 2;
        # multiply: 2·u·v - 1 = (a·b + a + b - 1) / 2.
        h = 0.5 * wb
        sign = -1.0 if mode == "screen" else 1.0
        _affine(a, wa + h, -sign * h, out=out)  # (wa + h)·a ∓ h
        return out.add_(b, alpha=h).addcmul_(a, b, value=sign * h)
    if mode == "lumakey":
        # b's brightness is its opacity: its dark parts let a through. u·(1-k) + v·k on
        # light is lerp(a, b, k) on the pictures, k = clamp((Σ Lᵢ·bᵢ + 1) / 2, 0, 1) as
        # the weights Lᵢ sum to 1. Weighted: s·lerp(a, b, w·k), and w·k = clamp(w·(...),
        # 0, w) as w > 0: the key is one channel, a third of a pass per step.
        key = work.get("key", b, channels=1)  # (B, 1, H, W)
        weight = 0.5 * wb / s
        _affine(b[:, :1], _LUMA[0] * weight, weight, out=key)
        key.add_(b[:, 1:2], alpha=_LUMA[1] * weight).add_(b[:, 2:3], alpha=_LUMA[2] * weight)
        key.clamp_(0.0, wb / s)
        torch.lerp(a, b, key, out=out)  # the key broadcast over the channels
        return out if _is_one(s) else out.mul_(s)
    if mode == "add":  # 2·min(u + v, 1) - 1 = min(a + b, 0) + 1
        torch.add(a, b, out=out).clamp_(max=0.0)
        constant = 1.0
    elif mode == "difference":  # 2·|u - v| - 1 = |a - b| - 1
        torch.sub(a, b, out=out).abs_()
        constant = -1.0
    elif mode == "lighten":  # 2·max(u, v) - 1 = max(a, b)
        torch.maximum(a, b, out=out)
        constant = 0.0
    elif mode == "darken":
        torch.minimum(a, b, out=out)
        constant = 0.0
    else:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    torch.lerp(a, out, wb / s, out=out)
    if _is_one(s) and constant == 0.0:
        return out
    return _affine(out, s, wb * constant, out=out)


def _affine(x: Tensor, scale: float, offset: float, out: Tensor) -> Tensor:
    """offset + scale·x in one pass (torch.add of a 0-dim tensor and x with alpha)."""
    return torch.add(torch.tensor(offset), x, alpha=scale, out=out)


def _is_one(s: float) -> bool:
    """Whether a sum of weights is 1 but for float rounding (a linear curve's is)."""
    return math.isclose(s, 1.0, rel_tol=1e-9)


def blend(a: Tensor, b: Tensor, mode: str) -> Tensor:
    """Deck b laid over deck a by `mode`, both in [-1, 1]; the result in [-1, 1]."""
    if mode == "normal":
        return b
    return _mix_into(a, b, 0.0, 1.0, mode, Workspace())


def dim(image: Tensor, level: float, out: Tensor | None = None) -> Tensor:
    """A deck's fader: light scaled by `level` (0 black); 1 returns the picture itself.

    `out`: where to write the dimmed picture (a reused buffer), else a new tensor.
    """
    if level >= 1.0:
        return image
    # (clamp(x) + 1)·level - 1 as (level - 1) + level·clamp(x): two passes, not four.
    clamped = torch.clamp(image, -1.0, 1.0, out=out) if out is not None else image.clamp(-1.0, 1.0)
    return _affine(clamped, level, level - 1.0, out=clamped)


def mix(
    a: Tensor,
    b: Tensor,
    x: float,
    curve: str = "linear",
    mode: str = "normal",
    work: Workspace | None = None,
) -> Tensor:
    """Decks a and b (same shape) at crossfade x: a itself at 0, b itself at 1 (no arithmetic).

    Between the ends the result is written into `work` (a new workspace if None)
    and stays valid until the next mix into it.
    """
    if x <= 0.0:
        return a
    if x >= 1.0:
        return b
    wa, wb = weights(x, curve)
    if wb == 0.0:
        return a
    if wa == 0.0 and mode == "normal":
        return b
    return _mix_into(a, b, wa, wb, mode, work if work is not None else Workspace())
