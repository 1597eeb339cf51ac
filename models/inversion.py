"""What an encoder inverts: a DCGAN's z, or a StyleGAN's W (one w) or W+ (a w per layer).

`Inversion` hides the difference from the training loop: it draws training
samples (target latent, picture), turns a predicted latent back into a
picture, scores a prediction, and measures held-out quality against floors.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import LoadedModel
from models.latent_maths import random_latent
from models.sampling import is_stylegan

EVAL_SEED = 424242 + 1000  # held-out latents: seeds never drawn in training


def psnr(a: Tensor, b: Tensor) -> float:
    """Mean PSNR in dB of images in [-1, 1] (peak 1 after mapping to [0, 1])."""
    mse = ((a.float() - b.float()) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


class Inversion:
    """One generator's latent space as an encoder sees it."""

    def __init__(self, model: LoadedModel, *, space: str, device: torch.device) -> None:
        self.model = model
        self.g: Any = cast(Any, model.module)  # a DCGAN or a StyleGAN (mapping, synthesis)
        self.device = device
        self.stylegan = is_stylegan(model)
        if self.stylegan and space == "z":
            space = "w"  # z of a StyleGAN is not what mirror moves: W is
        if not self.stylegan and space != "z":
            raise ValueError(f"{model.path}: a {model.arch} has no W space; use z")
        self.space = space
        self.z_dim = int(model.z_dim or 0)
        self.latent_dim = int(self.g.w_dim) if self.stylegan else self.z_dim
        self.num_ws = int(self.g.num_ws) if self.stylegan else 1
        self.c_dim = int(getattr(self.g, "c_dim", 0))
        self.scale = 1.0
        if self.stylegan:  # w is not unit-variance: scale the regression loss by its spread
            with torch.no_grad():
                w = self.mapping(torch.randn(512, self.z_dim, device=device))[:, 0]
            self.scale = float(w.std()) or 1.0

    def mapping(self, z: Tensor) -> Tensor:
        """z (B, z_dim) -> ws (B, num_ws, w_dim), without truncation, random classes."""
        c = None
        if self.c_dim:
            labels = torch.randint(0, self.c_dim, (z.shape[0],), device=z.device)
            c = F.one_hot(labels, self.c_dim).float()
        return self.g.mapping(z, c)

    def target(self, z: Tensor, *, mix: bool = False) -> Tensor:
        """The latent an encoder should predict for these z: z, w (B, w_dim) or ws."""
        if not self.stylegan:
            return z
        ws = self.mapping(z)
        if self.space == "w":
            return ws[:, 0]
        if mix and self.num_ws > 1:  # W+: teach per-layer styles with style mixing
            other = self.mapping(torch.randn_like(z))
            cut = int(torch.randint(1, self.num_ws, ()))
            ws = torch.cat([ws[:, :cut], other[:, cut:]], dim=1)
        return ws

    def decode(self, latent: Tensor) -> Tensor:
        """A latent (as target() gives it) -> picture (B, 3, R, R) in [-1, 1]."""
        if not self.stylegan:
            return self.g(latent)
        ws = latent[:, None].expand(-1, self.num_ws, -1) if latent.ndim == 2 else latent
        return self.g.synthesis(ws, noise_mode="const")

    def sample(self, batch: int, *, mix: bool = True) -> tuple[Tensor, Tensor]:
        """(target latent, picture) for a batch of random z; no gradients."""
        with torch.no_grad():
            z = torch.randn(batch, self.z_dim, device=self.device)
            latent = self.target(z, mix=mix)
            return latent, self.decode(latent)

    def latent_loss(self, predicted: Tensor, target: Tensor) -> Tensor:
        """Mean squared error, in units of the latent's own spread."""
        return F.mse_loss(predicted.float() / self.scale, target.float() / self.scale)

    def held_out(self, count: int, offset: int = 0) -> Tensor:
        """Targets for seeds never used in training (fixed: the same every run)."""
        z = torch.stack(
            [random_latent(EVAL_SEED + offset + i, self.z_dim) for i in range(count)]
        ).to(self.device)
        with torch.no_grad():
            torch.manual_seed(EVAL_SEED + offset)  # fixed classes for a conditional model
            return self.target(z)

    def quality(self, encoder: nn.Module, count: int = 128) -> dict[str, float]:
        """Held-out picture PSNR and latent distance, each beside a floor from unrelated samples."""
        encoder.eval()
        latent, other = self.held_out(count), self.held_out(count, offset=4000)
        with torch.no_grad():
            images = self.decode(latent)
            predicted = encoder(images)
            again = self.decode(predicted)
            base = self.decode(other)
        report = {
            "heldout_samples": float(count),
            "psnr_db": psnr(again, images),
            "psnr_random_pair_db": psnr(base, images),  # floor: an unrelated sample
        }
        if self.stylegan:
            dims = math.sqrt(latent[0].numel())

            def rms(a: Tensor, b: Tensor) -> float:
                return float((a - b).flatten(1).norm(dim=1).mean()) / dims

            w_avg = self.g.mapping.w_avg.expand_as(latent)  # (w_dim,) -> the latent's shape
            report["w_rms_error"] = rms(predicted, latent)
            report["w_rms_random_pair"] = rms(other, latent)  # floor: an unrelated w
            report["w_rms_to_mean"] = rms(w_avg, latent)  # predicting w_avg every time
        return report
