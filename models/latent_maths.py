"""Latent-space maths shared by the live engine and offline renders.

Pure functions on tensors: no state, no threads. The live engine and
`ganvj render` call the same code, so a tour looks the same on stage and on
disk.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

EASINGS = ("linear", "smooth", "exponential")


def lerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Straight-line blend: a at t=0, b at t=1."""
    return a + (b - a) * t


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical blend along the great circle, with norms blended linearly.

    Gaussian latents live near a sphere; lerp cuts through the low-norm middle
    and greys the picture out halfway, slerp keeps the norm.
    """
    if a.dim() == 1 and b.dim() == 1:
        return _slerp_vector(a, b, t)
    a_norm = a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b_norm = b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    a_unit, b_unit = a / a_norm, b / b_norm
    dot = (a_unit * b_unit).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    # Nearly parallel vectors: the formula divides by ~0, and lerp is exact enough.
    if bool((sin_omega.abs() < 1e-6).all()):
        return lerp(a, b, t)
    safe = sin_omega.clamp_min(1e-6)
    direction = (torch.sin((1.0 - t) * omega) * a_unit + torch.sin(t * omega) * b_unit) / safe
    return direction * lerp(a_norm, b_norm, t)


def _slerp_vector(a: Tensor, b: Tensor, t: float) -> Tensor:
    """slerp for one pair of vectors, with the scalar maths in Python.

    The live engine applies thousands of these a second (XY pads, jumps);
    a dozen tiny tensor ops each cost more than the arithmetic.
    """
    a_norm = max(float(a.norm()), 1e-8)
    b_norm = max(float(b.norm()), 1e-8)
    cos = min(max(float(a @ b) / (a_norm * b_norm), -1.0), 1.0)
    omega = math.acos(cos)
    sin_omega = math.sin(omega)
    if sin_omega < 1e-6:
        return lerp(a, b, t)
    norm = a_norm + (b_norm - a_norm) * t
    wa = math.sin((1.0 - t) * omega) / sin_omega * norm / a_norm
    wb = math.sin(t * omega) / sin_omega * norm / b_norm
    return a * wa + b * wb


def interpolate(
    a: Tensor, b: Tensor, t: float, *, mode: str, centre: Tensor | None = None
) -> Tensor:
    """Blend by name: "lerp" or "slerp"; slerp turns about `centre` (StyleGAN: w_avg) if given.

    In W, halfway between two pictures then stays as far from the average
    picture as they are, as slerp in z keeps the norm (lerp is the same either way).
    """
    if mode == "slerp":
        if centre is not None:
            return centre + slerp(a - centre, b - centre, t)
        return slerp(a, b, t)
    if mode == "lerp":
        return lerp(a, b, t)
    raise ValueError(f"unknown interpolation {mode!r}: expected 'lerp' or 'slerp'")


def ease(name: str, t: float) -> float:
    """Map progress 0..1 to eased progress 0..1, exact at both ends."""
    t = min(max(t, 0.0), 1.0)
    if name == "linear":
        return t
    if name == "smooth":
        return t * t * (3.0 - 2.0 * t)
    if name == "exponential":
        # Exponential in-out, rescaled so 0 -> 0 and 1 -> 1 exactly.
        if t <= 0.0 or t >= 1.0:
            return t
        k = 10.0
        low = 2.0 ** (-k)
        if t < 0.5:
            return (2.0 ** (k * (2.0 * t - 1.0)) - low) / (2.0 * (1.0 - low))
        return 1.0 - (2.0 ** (-k * (2.0 * t - 1.0)) - low) / (2.0 * (1.0 - low))
    raise ValueError(f"unknown easing {name!r}: expected one of {', '.join(EASINGS)}")


def seed_latent(seed: int, dim: int) -> Tensor:
    """Seed N's latent as NVIDIA's gen_images.py draws it: RandomState(N).randn(dim), float32.

    Every model kind uses it, so a performer's favourite seeds from any
    StyleGAN notebook come out the same here.
    """
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed {seed} out of range: expected 0 <= seed < 2**32")
    values = np.random.RandomState(int(seed)).randn(int(dim))
    return torch.from_numpy(values.astype(np.float32))


def random_latent(seed: int, z_dim: int) -> Tensor:
    """The latent of a seed: the same seed gives the same vector on every machine."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn(z_dim, generator=generator)


class Wander:
    """A smooth, looping drift through latent space.

    The path is a closed curve: each component is a sum of a few sinusoids of
    whole-number frequencies over one period, so it never jumps, never stops,
    and comes back to its start. Its radius stays near sqrt(z_dim), where a
    Gaussian generator expects its inputs.
    """

    PERIOD_SECONDS = 120.0
    HARMONICS = 3

    def __init__(self, *, z_dim: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(int(seed) + 7919)
        shape = (self.HARMONICS, z_dim)
        self.z_dim = z_dim
        self._cos = torch.randn(shape, generator=generator)
        self._sin = torch.randn(shape, generator=generator)
        self._freq = torch.arange(1, self.HARMONICS + 1, dtype=torch.float32)[:, None]
        # Each harmonic contributes cos^2 + sin^2 of unit-variance weights: divide so
        # the sum keeps unit variance per component.
        self._scale = 1.0 / math.sqrt(self.HARMONICS)

    def at(self, t_seconds: float) -> Tensor:
        """Position at wander-clock time t (one loop per PERIOD_SECONDS).

        The caller advances its clock by dt * speed each frame, so a change of
        speed bends the pace, never the position.
        """
        phase = 2.0 * math.pi * (t_seconds / self.PERIOD_SECONDS)
        angles = self._freq * phase  # (H, 1)
        z = (self._cos * torch.cos(angles) + self._sin * torch.sin(angles)).sum(dim=0)
        return z * self._scale  # (z_dim,)
