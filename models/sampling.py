"""One way to turn seeds and latents into pictures, for every model kind.

A DCGAN maps z straight to an image. A StyleGAN maps z (and a class) to W,
pulls W toward `w_avg` by the truncation psi, broadcasts it to every layer and
synthesises; StyleGAN3 also takes a rotation and translation of its input.
`ganvj render` and the benchmarks call these, so a seed gives the same picture
everywhere, and the same as NVIDIA's gen_images.py for an imported pickle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.canvas import aspect_kwargs
from models.checkpoint import LoadedModel
from models.nets.ops import NOISE_MODES

STYLEGAN_ARCHS = ("stylegan2", "stylegan3")
MAX_SEEDS = 100_000  # a range like 0-99999 is a lot of PNGs already


class SamplingError(ValueError):
    """A sampling option the model cannot honour (truncation on a DCGAN, a class out of range)."""


@dataclass(frozen=True)
class Sampling:
    """How to draw a picture from a latent: gen_images.py's options and defaults."""

    truncation_psi: float = 1.0
    class_index: int | None = None
    noise_mode: str = "const"
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0  # degrees

    @property
    def transformed(self) -> bool:
        """Whether the StyleGAN3 input transform differs from identity."""
        return self.rotate != 0.0 or self.translate != (0.0, 0.0)


DEFAULT_SAMPLING = Sampling()


def is_stylegan(model: LoadedModel) -> bool:
    """A StyleGAN generator (mapping + synthesis), as opposed to a plain z -> image net."""
    return model.arch in STYLEGAN_ARCHS


def check_sampling(model: LoadedModel, sampling: Sampling) -> None:
    """Raise SamplingError for options this model has no use for, naming the option."""
    if sampling.noise_mode not in NOISE_MODES:
        raise SamplingError(f"--noise-mode must be one of {', '.join(NOISE_MODES)}")
    if not math.isfinite(sampling.truncation_psi):
        raise SamplingError("--trunc must be a finite number")
    stylegan = is_stylegan(model)
    if not stylegan and sampling.truncation_psi != 1.0:
        raise SamplingError(f"{model.name} is a {model.arch} model: truncation needs a StyleGAN")
    c_dim = int(getattr(model.module, "c_dim", 0) or 0)
    if sampling.class_index is not None:
        if c_dim == 0:
            raise SamplingError(f"{model.name} is not conditional: --class needs a class model")
        if not 0 <= sampling.class_index < c_dim:
            raise SamplingError(f"--class {sampling.class_index}: {model.name} has {c_dim} classes")
    if sampling.transformed and model.arch != "stylegan3":
        raise SamplingError(
            f"{model.name} is a {model.arch} model: --translate/--rotate need a StyleGAN3"
        )


def class_vector(model: LoadedModel, index: int | None, batch: int, device: Any) -> Tensor | None:
    """One-hot classes (B, c_dim) for a conditional StyleGAN (class 0 unless given), else None."""
    c_dim = int(getattr(model.module, "c_dim", 0) or 0)
    if c_dim == 0:
        return None
    c = torch.zeros([batch, c_dim], device=device)
    c[:, index or 0] = 1.0
    return c


def apply_transform(model: LoadedModel, sampling: Sampling) -> None:
    """Set a StyleGAN3's input transform (rotation, translation) the way gen_images.py does."""
    if model.arch != "stylegan3":
        return
    from models.nets import stylegan3  # type: ignore[attr-defined,unused-ignore]

    stylegan3.set_transform(
        model.module, angle_deg=sampling.rotate, translate=tuple(sampling.translate)
    )


def map_to_w(model: LoadedModel, z: Tensor, sampling: Sampling) -> Tensor:
    """z (B, z_dim) -> untruncated w (B, w_dim) of a StyleGAN."""
    module: Any = model.module
    c = class_vector(model, sampling.class_index, z.shape[0], z.device)
    return module.mapping(z, c)[:, 0]


def truncate(model: LoadedModel, w: Tensor, psi: float) -> Tensor:
    """w (..., w_dim) pulled toward the model's w_avg: w_avg + psi * (w - w_avg)."""
    if psi == 1.0:
        return w
    module: Any = model.module
    w_avg: Tensor = module.mapping.w_avg
    return w_avg.lerp(w, psi)


def synthesize_w(model: LoadedModel, w: Tensor, sampling: Sampling, aspect: float = 1.0) -> Tensor:
    """w (B, w_dim), untruncated -> images (B, C, R, R) of a StyleGAN (wider: `aspect`)."""
    module: Any = model.module
    ws = truncate(model, w, sampling.truncation_psi)
    ws = ws[:, None].expand(-1, module.num_ws, -1)  # (B, num_ws, w_dim)
    return module.synthesis(ws, noise_mode=sampling.noise_mode, **aspect_kwargs(aspect))


def generate(
    model: LoadedModel, z: Tensor, sampling: Sampling = DEFAULT_SAMPLING, aspect: float = 1.0
) -> Tensor:
    """z (B, z_dim) -> images (B, C, R, R) roughly in [-1, 1], for any unconditional model.

    `aspect` != 1: the network paints about that shape (models.canvas, `native`).
    """
    if not is_stylegan(model):
        return model.module(z, **aspect_kwargs(aspect))
    module: Any = model.module
    c = class_vector(model, sampling.class_index, z.shape[0], z.device)
    # Truncation in mapping, as gen_images.py asks for it: the same numbers, bit for bit.
    ws = module.mapping(z, c, truncation_psi=sampling.truncation_psi)
    return module.synthesis(ws, noise_mode=sampling.noise_mode, **aspect_kwargs(aspect))


def nvidia_uint8(images: Tensor) -> np.ndarray:
    """(B, C, H, W) -> (B, H, W, C) uint8 as gen_images.py saves: img * 127.5 + 128, clamped."""
    x = (images.detach().float().cpu().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255)
    return x.to(torch.uint8).numpy()


def parse_seed_range(text: str) -> list[int]:
    """ "0-3,42" -> [0, 1, 2, 3, 42], gen_images.py's seed syntax."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise SamplingError(f"--seeds: expected numbers and ranges like 0-3,42, got {text!r}")
        start = int(match[1])
        end = int(match[2]) if match[2] is not None else start
        if end < start:
            raise SamplingError(f"--seeds: {part!r} runs backwards")
        if len(seeds) + end - start + 1 > MAX_SEEDS:
            raise SamplingError(f"--seeds: more than {MAX_SEEDS} seeds")
        seeds.extend(range(start, end + 1))
    if not seeds:
        raise SamplingError("--seeds: no seeds given")
    if seeds[-1] >= 2**32 or max(seeds) >= 2**32:
        raise SamplingError("--seeds: seeds must be below 2**32")
    return seeds
