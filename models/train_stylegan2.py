"""`ganvj train stylegan2`: StyleGAN2 training and fine-tuning on our own networks.

The objective is StyleGAN2's (Karras et al. 2020): the non-saturating logistic
loss, R1 on real pictures every `r1_every` steps (lazy regularisation), optional
path-length regularisation every `pl_every` steps, style mixing, and an
exponential moving average of the generator (G_ema) that is the model played.
Augmentation (models.augment) keeps a discriminator fed with a few hundred
frames from memorising them. Fine-tuning starts every network from a pretrained
file: one of ours or an NVIDIA pickle (read as data; D too when it has one).

A run folder is shared with the other trainers (models.train.Run):
`last.safetensors` (G_ema as the weights; G, D, both optimisers and the
augmentation state as extra tensors), `model.safetensors` (G_ema alone, fp16,
with GANSpace directions: what `serve`, `/model/load` and `ganvj render` play),
`samples/step-NNNNNN.png` at fixed seeds, `loss.csv`, and at the end `check/`
(models.sample_check).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from models.augment import AUGMENTS, AdaptiveProbability, augment
from models.checkpoint import (
    CheckpointError,
    config_from_dict,
    extra_tensors,
    read_tensors,
    stored_discriminator,
)
from models.dataset import Dataset
from models.formats.nvidia_pkl import PersistentObject, PickleError, plain, read_pickle, state_dict
from models.formats.stylegan import convert_pickle, ganspace
from models.latent_maths import seed_latent
from models.nets.stylegan2 import (
    StyleGAN2Config,
    StyleGAN2Discriminator,
    StyleGAN2DiscriminatorConfig,
    StyleGAN2Generator,
)
from models.train import (
    Run,
    TrainConfig,
    TrainError,
    TrainResult,
    dataset_metadata,
    load_module,
    load_optimizer,
    module_tensors,
    open_dataset,
    optimizer_tensors,
    to_float,
    training_metadata,
)

logger = logging.getLogger(__name__)

SAMPLE_SEEDS = range(16)  # the grid shows seeds 0..15, as `ganvj render grid` does
PL_DECAY = 0.01  # running mean of path lengths
PL_BATCH_SHRINK = 2  # the path-length pass uses half the batch
GANSPACE_SAMPLES = 2048  # W samples behind the model file's directions
# TrainConfig values `ganvj train stylegan2` starts from (StyleGAN2's Adam, a CPU-sized batch).
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 0.0025, "beta1": 0.0, "beta2": 0.99, "batch_size": 16}


@dataclass(frozen=True)
class StyleGAN2Recipe:
    """What StyleGAN2 training adds to TrainConfig: network size, losses, augmentation."""

    resolution: int = 0  # 0: the pretrained model's, else the dataset's (dataset.json)
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2  # ADA's small-data configuration (the paper's 8 for large sets)
    channel_base: int = 16384  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    kimg: float = 0.0  # thousands of real pictures to show; > 0 overrides steps
    r1_gamma: float = -1.0  # < 0: 0.0002 * resolution^2 / batch (ADA's heuristic)
    r1_every: int = 16
    pl_weight: float = 2.0  # 0 turns path-length regularisation off
    pl_every: int = 4
    style_mixing: float = 0.9
    ema_kimg: float = -1.0  # < 0: batch * 10 / 32 thousand pictures (half-life of G_ema)
    ema_rampup: float = 0.05  # G_ema's half-life at most this fraction of the pictures seen
    augment: str = "diffaug"  # "diffaug" (fixed p) | "ada" (adaptive p) | "none"
    augment_p: float = -1.0  # < 0: 0 for ada (the start), 1 for diffaug
    ada_target: float = 0.6
    ada_kimg: float = 10.0  # pictures for p to move 0 -> 1, in thousands (ADA: 500 on GPUs)
    cond: bool = True  # train on the dataset's labels when it has them
    resume_from: str = ""  # fine-tune from this model (ours or an NVIDIA .pkl)
    metrics: str = ""  # "fid" (needs --inception)
    inception: str = ""  # a feature network file for FID (TorchScript or models.sample_check)
    check: bool = True  # write check/ (loss plot, nearest neighbours, colours) at the end

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.r1_every < 1 or self.pl_every < 1:
            raise ValueError("r1_every and pl_every must be at least 1")
        if self.metrics not in ("", "fid"):
            raise ValueError(f"metrics must be 'fid' or empty, got {self.metrics!r}")
        if self.metrics == "fid" and not self.inception:
            raise ValueError(
                "--metrics fid needs --inception FILE: FID compares Inception features, "
                "and ganvj ships no Inception network (see docs/stylegan2-training.md)"
            )

    def gamma(self, resolution: int, batch: int) -> float:
        """R1 weight: the given one, or ADA's 0.0002 * R^2 / batch."""
        return self.r1_gamma if self.r1_gamma >= 0 else 0.0002 * resolution**2 / batch

    def ema_images(self, batch: int) -> float:
        """G_ema's half-life in pictures."""
        return (self.ema_kimg if self.ema_kimg >= 0 else batch * 10 / 32) * 1000

    def start_p(self) -> float:
        """The augmentation probability at the start."""
        if self.augment == "none":
            return 0.0
        if self.augment_p >= 0:
            return self.augment_p
        return 1.0 if self.augment == "diffaug" else 0.0


@dataclass
class Networks:
    """Everything that trains: G, G_ema, D and their configs."""

    g_config: StyleGAN2Config
    d_config: StyleGAN2DiscriminatorConfig
    g: StyleGAN2Generator
    g_ema: StyleGAN2Generator
    d: StyleGAN2Discriminator
    source: dict[str, Any] | None = None  # the pretrained file, when fine-tuning


@dataclass(frozen=True)
class Precision:
    """How the networks run: fp16 in their flagged blocks and channels-last memory."""

    fast: bool
    channels_last: bool


def precision_for(device: torch.device, amp: bool) -> Precision:
    """fp16 blocks and channels-last on CUDA with amp on; plain fp32 elsewhere."""
    on = device.type == "cuda" and amp
    return Precision(fast=on, channels_last=on)


def apply_precision(nets: Networks, precision: Precision) -> None:
    """Set the networks' fp16 flags and memory format (inputs follow in `prepare`)."""
    for g in (nets.g, nets.g_ema):
        g.synthesis.fast = precision.fast
    nets.d.fast = precision.fast
    if precision.channels_last:
        for module in (nets.g, nets.g_ema, nets.d):
            # Only 4-D weights change layout; torch's stubs omit this keyword.
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def default_configs(
    recipe: StyleGAN2Recipe, *, resolution: int, c_dim: int, batch: int
) -> tuple[StyleGAN2Config, StyleGAN2DiscriminatorConfig]:
    """Fresh networks' configs (fp16 flags on the top 4 resolutions, clamped as NVIDIA's)."""
    g = StyleGAN2Config(
        z_dim=recipe.z_dim,
        c_dim=c_dim,
        w_dim=recipe.w_dim,
        img_resolution=resolution,
        img_channels=3,
        mapping_layers=recipe.mapping_layers,
        channel_base=recipe.channel_base,
        channel_max=recipe.channel_max,
        num_fp16_res=4,
        conv_clamp=256,
    )
    d = StyleGAN2DiscriminatorConfig(
        c_dim=c_dim,
        img_resolution=resolution,
        img_channels=3,
        channel_base=recipe.channel_base,
        channel_max=recipe.channel_max,
        num_fp16_res=4,
        conv_clamp=256,
        mbstd_group_size=mbstd_group(batch),
    )
    return g, d


def mbstd_group(batch: int) -> int:
    """The largest minibatch-stddev group (at most 4) that divides the batch."""
    return next(g for g in (4, 2, 1) if batch % g == 0)


def build_networks(g_config: StyleGAN2Config, d_config: StyleGAN2DiscriminatorConfig) -> Networks:
    """Freshly initialised G (G_ema its copy) and D."""
    g = StyleGAN2Generator(config=g_config)
    return Networks(
        g_config=g_config,
        d_config=d_config,
        g=g,
        g_ema=copy.deepcopy(g).eval().requires_grad_(False),
        d=StyleGAN2Discriminator(config=d_config),
    )


# ---------------------------------------------------------------------------------------
# Pretrained networks (fine-tuning)


def load_pretrained(path: Path, *, batch: int) -> Networks:
    """G, G_ema and (when the file has one) D from our checkpoint or an NVIDIA pickle."""
    if not path.is_file():
        raise TrainError(f"--resume-from {path}: no such file")
    if path.suffix.lower() == ".pkl":
        return pretrained_from_pickle(path, batch=batch)
    try:
        meta, tensors = read_tensors(path)
    except CheckpointError as exc:
        raise TrainError(f"--resume-from: {exc}") from exc
    if meta["arch"] != "stylegan2":
        raise TrainError(f"--resume-from {path}: is a {meta['arch']} model, not a stylegan2")
    try:
        g_config = config_from_dict(StyleGAN2Config, meta.get("config"), path=path)
        extras = extra_tensors(tensors)
        stored = stored_discriminator(meta, tensors)
        d_config = (
            config_from_dict(StyleGAN2DiscriminatorConfig, stored[0], path=path)
            if stored is not None
            else fresh_discriminator(g_config, batch)
        )
    except CheckpointError as exc:
        raise TrainError(f"--resume-from: {exc}") from exc
    nets = build_networks(g_config, d_config)
    weights = {
        k: v.float() if v.is_floating_point() else v
        for k, v in tensors.items()
        if not k.startswith("extra/")
    }
    try:
        nets.g_ema.load_state_dict(weights)
        if any(k.startswith("gen.") for k in extras):
            load_module("gen", nets.g, {k: v.float() for k, v in extras.items()})
        else:
            nets.g.load_state_dict(weights)
        if stored is not None:
            nets.d.load_state_dict({k: v.float() for k, v in stored[1].items()})
    except RuntimeError as exc:
        raise TrainError(f"--resume-from {path}: tensors do not fit its config: {exc}") from exc
    has_d = stored is not None
    if not has_d:
        logger.info("%s has no discriminator: starting a fresh one", path)
    nets.source = {"name": path.name, "format": "ganvj", "discriminator": has_d}
    return nets


def fresh_discriminator(g_config: StyleGAN2Config, batch: int) -> StyleGAN2DiscriminatorConfig:
    """A D to pair with a pretrained G that came without one: its size and channel budget."""
    return StyleGAN2DiscriminatorConfig(
        c_dim=g_config.c_dim,
        img_resolution=g_config.img_resolution,
        img_channels=g_config.img_channels,
        channel_base=g_config.channel_base,
        channel_max=g_config.channel_max,
        num_fp16_res=4,
        conv_clamp=256,
        mbstd_group_size=mbstd_group(batch),
    )


def pretrained_from_pickle(path: Path, *, batch: int) -> Networks:
    """An NVIDIA snapshot read as data (models.formats): G_ema, G and D when present."""
    try:
        imported = convert_pickle(path)
        root = read_pickle(path).root
    except PickleError as exc:
        raise TrainError(f"--resume-from: {exc}") from exc
    if imported.arch != "stylegan2":
        raise TrainError(
            f"--resume-from {path}: is a {imported.arch} network; ganvj fine-tunes stylegan2 only"
        )
    g_config: StyleGAN2Config = imported.config
    snapshot = root if isinstance(root, dict) else {}
    d_obj = snapshot.get("D")
    flavor = str(imported.source.get("flavor", "sg3"))
    try:
        d_config = (
            StyleGAN2DiscriminatorConfig.from_nvidia_kwargs(plain(d_obj.init_kwargs), flavor=flavor)
            if isinstance(d_obj, PersistentObject)
            else fresh_discriminator(g_config, batch)
        )
        nets = build_networks(g_config, d_config)
        nets.g_ema.load_state_dict(imported.module.state_dict())
        g_obj = snapshot.get("G")
        if isinstance(g_obj, PersistentObject):
            nets.g.load_state_dict({k: v.float() for k, v in state_dict(g_obj).items()})
        else:
            nets.g.load_state_dict(imported.module.state_dict())
        if isinstance(d_obj, PersistentObject):
            nets.d.load_state_dict({k: v.float() for k, v in state_dict(d_obj).items()})
    except (ValueError, TypeError, RuntimeError) as exc:
        raise TrainError(f"--resume-from {path}: its networks do not load: {exc}") from exc
    nets.source = {**imported.source, "discriminator": isinstance(d_obj, PersistentObject)}
    if not isinstance(d_obj, PersistentObject):
        logger.info("%s has no discriminator: starting a fresh one", path)
    return nets


def check_fit(
    nets: Networks, *, recipe: StyleGAN2Recipe, data: Dataset, c_dim: int, path: Path
) -> None:
    """Raise TrainError when a pretrained model and the dataset do not fit each other."""
    r = nets.g_config.img_resolution
    if recipe.resolution and recipe.resolution != r:
        raise TrainError(
            f"--resume-from: the model draws {r} px pictures, --resolution asks for "
            f"{recipe.resolution}: a pretrained StyleGAN2 keeps its resolution "
            f"(leave --resolution out, or make the dataset at {r})"
        )
    native = data.info.get("resolution")
    if not recipe.resolution and isinstance(native, int) and native != r:
        raise TrainError(
            f"--resume-from: the model draws {r} px pictures, {path} holds {native} px ones; "
            f"pass --resolution {r} to rescale them, or make the dataset with --size {r}"
        )
    if nets.g_config.img_channels != 3:
        raise TrainError(
            f"--resume-from: the model draws {nets.g_config.img_channels}-channel pictures; "
            f"datasets are RGB (3 channels)"
        )
    if nets.g_config.c_dim != c_dim:
        have = f"{c_dim} label dimensions" if c_dim else "no labels"
        raise TrainError(
            f"--resume-from: the model is conditioned on {nets.g_config.c_dim} classes, "
            f"the dataset has {have}"
        )


# ---------------------------------------------------------------------------------------
# Training


def labels_of(data: Dataset, c_dim: int) -> Tensor | None:
    """(N, c_dim) float conditioning rows (one-hot for class indices), mirror rows repeated."""
    if c_dim == 0 or data.labels is None:
        return None
    raw = torch.from_numpy(np.asarray(data.labels))
    c = F.one_hot(raw, c_dim).float() if raw.ndim == 1 else raw.float()
    return torch.cat([c, c]) if data.mirror else c


def sample_c(labels: Tensor | None, batch: int, *, rng: torch.Generator) -> Tensor | None:
    """Labels for fakes: drawn from the dataset's own rows (its class balance)."""
    if labels is None:
        return None
    return labels[torch.randint(0, labels.shape[0], (batch,), generator=rng)]


def grid_c(labels: Tensor | None, count: int) -> Tensor | None:
    """The sample grid's labels: class k for seed k (one-hot), or the first rows' vectors."""
    if labels is None:
        return None
    c_dim = labels.shape[1]
    if bool(((labels == 0) | (labels == 1)).all()) and bool((labels.sum(1) == 1).all()):
        return F.one_hot(torch.arange(count) % c_dim, c_dim).float()
    return labels[torch.arange(count) % labels.shape[0]]


@dataclass
class LossState:
    """What the losses carry between steps: the path-length mean and the last reg values."""

    pl_mean: Tensor
    last: dict[str, float]


class StyleGAN2Trainer:
    """One training step of StyleGAN2 (G main, G path length, D main, D R1) plus G_ema."""

    def __init__(
        self,
        nets: Networks,
        *,
        recipe: StyleGAN2Recipe,
        train: TrainConfig,
        device: torch.device,
        rng: torch.Generator,
    ) -> None:
        self.nets = nets
        self.recipe = recipe
        self.train = train
        self.device = device
        self.rng = rng
        self.batch = train.batch_size
        self.gamma = recipe.gamma(nets.g_config.img_resolution, self.batch)
        self.ada = AdaptiveProbability(
            p=recipe.start_p(), target=recipe.ada_target, speed_kimg=recipe.ada_kimg
        )
        self.adaptive = recipe.augment == "ada"
        self.opt_g = lazy_adam(nets.g, train, every=recipe.pl_every if recipe.pl_weight else 0)
        self.opt_d = lazy_adam(nets.d, train, every=recipe.r1_every if self.gamma else 0)
        self.state = LossState(pl_mean=torch.zeros([], device=device), last={"r1": 0.0, "pl": 0.0})
        self.nimg = 0  # real pictures shown so far
        self.step_index = 0
        self.channels_last = False

    # -- pieces

    def prepare(self, x: Tensor) -> Tensor:
        """Images in the networks' memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def augmented(self, x: Tensor) -> Tensor:
        """The discriminator's view: augmented with the current probability."""
        if self.recipe.augment == "none" or self.ada.p <= 0:
            return x
        return augment(x, self.ada.p, generator=self.rng)

    def latents(self, batch: int) -> Tensor:
        """(B, z_dim) normal latents from the run's generator."""
        return torch.randn([batch, self.nets.g_config.z_dim], generator=self.rng).to(self.device)

    def generate(self, z: Tensor, c: Tensor | None, *, update_w_avg: bool) -> tuple[Tensor, Tensor]:
        """G(z, c) with style mixing: (images, ws)."""
        g = self.nets.g
        ws = g.mapping(z, c, update_w_avg=update_w_avg)  # (B, num_ws, w_dim)
        mixing = self.recipe.style_mixing
        if mixing > 0 and g.num_ws > 1 and float(torch.rand([], generator=self.rng)) < mixing:
            cutoff = int(torch.randint(1, g.num_ws, [], generator=self.rng))
            other = g.mapping(self.latents(z.shape[0]), c)
            ws = torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)
        return g.synthesis(ws, noise_mode="random"), ws

    def discriminate(self, images: Tensor, c: Tensor | None) -> Tensor:
        """D's logits (B, 1) for augmented images."""
        return self.nets.d(self.prepare(self.augmented(images)), c)

    # -- phases

    def g_main(self, c: Tensor | None) -> float:
        """Non-saturating loss: softplus(-D(G(z)))."""
        images, _ = self.generate(self.latents(self.batch), c, update_w_avg=True)
        loss = F.softplus(-self.discriminate(images, c)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        step_with_clean_grads(self.opt_g, self.nets.g)
        return float(loss.detach())

    def g_path_length(self, c: Tensor | None) -> float:
        """Path-length penalty: |J_w^T y| close to its running mean (smooth W -> image)."""
        n = max(self.batch // PL_BATCH_SHRINK, 1)
        c = c[:n] if c is not None else None
        images, ws = self.generate(self.latents(n), c, update_w_avg=False)
        noise = torch.randn(images.shape, generator=self.rng).to(images) / math.sqrt(
            images.shape[2] * images.shape[3]
        )
        (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()  # (n,)
        pl_mean = self.state.pl_mean.lerp(lengths.mean().detach(), PL_DECAY)
        self.state.pl_mean.copy_(pl_mean)
        penalty = (lengths - pl_mean).square().mean()
        loss = penalty * self.recipe.pl_weight * self.recipe.pl_every
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        step_with_clean_grads(self.opt_g, self.nets.g)
        return float(penalty.detach())

    def d_main(self, real: Tensor, c_real: Tensor | None, c_fake: Tensor | None) -> float:
        """softplus(D(G(z))) + softplus(-D(x)); feeds ADA the real logits' signs."""
        with torch.no_grad():
            fake, _ = self.generate(self.latents(self.batch), c_fake, update_w_avg=False)
        logits_fake = self.discriminate(fake, c_fake)
        logits_real = self.discriminate(real, c_real)
        self.ada.observe(logits_real)
        loss = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        step_with_clean_grads(self.opt_d, self.nets.d)
        return float(loss.detach())

    def d_r1(self, real: Tensor, c_real: Tensor | None) -> float:
        """R1: gamma/2 * |grad_x D(x)|^2 on real pictures (through the augmentation)."""
        x = real.detach().requires_grad_(True)
        logits = self.discriminate(x, c_real)
        (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        penalty = grads.square().sum(dim=(1, 2, 3))  # (B,)
        loss = (penalty * (self.gamma / 2)).mean() * self.recipe.r1_every
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        step_with_clean_grads(self.opt_d, self.nets.d)
        return float(penalty.mean().detach())

    def update_ema(self) -> None:
        """G_ema <- G with a half-life of ema_kimg (shorter while few pictures were seen)."""
        half_life = self.recipe.ema_images(self.batch)
        if self.recipe.ema_rampup > 0:
            half_life = min(half_life, self.nimg * self.recipe.ema_rampup)
        beta = 0.5 ** (self.batch / max(half_life, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(
                self.nets.g_ema.parameters(), self.nets.g.parameters(), strict=True
            ):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(self.nets.g_ema.buffers(), self.nets.g.buffers(), strict=True):
                b_ema.copy_(b)

    def step(self, real: Tensor, c_real: Tensor | None, labels: Tensor | None) -> dict[str, float]:
        """One round: G main [+ path length], D main [+ R1], G_ema; returns the losses."""
        nets, recipe = self.nets, self.recipe
        nets.g.train()
        nets.d.train()
        real = self.prepare(real)
        nets.d.requires_grad_(False)
        nets.g.requires_grad_(True)
        loss_g = self.g_main(sample_c(labels, self.batch, rng=self.rng))
        if recipe.pl_weight > 0 and self.step_index % recipe.pl_every == 0:
            self.state.last["pl"] = self.g_path_length(sample_c(labels, self.batch, rng=self.rng))
        nets.g.requires_grad_(False)
        nets.d.requires_grad_(True)
        loss_d = self.d_main(real, c_real, sample_c(labels, self.batch, rng=self.rng))
        if self.gamma > 0 and self.step_index % recipe.r1_every == 0:
            self.state.last["r1"] = self.d_r1(real, c_real)
        nets.d.requires_grad_(False)
        self.nimg += self.batch
        self.step_index += 1
        self.update_ema()
        if self.adaptive:
            self.ada.step(self.batch)
        return {
            "loss_g": loss_g,
            "loss_d": loss_d,
            "r1": self.state.last["r1"],
            "pl": self.state.last["pl"],
            "augment_p": round(self.ada.p, 4),
            "rt": round(self.ada.last_rt, 4),
            "kimg": self.nimg / 1000,
        }

    # -- saving

    def extras(self) -> dict[str, Tensor]:
        """Resumable state: G, D, optimisers, augmentation p, path-length mean, counters."""
        return {
            **module_tensors("gen", self.nets.g),
            **module_tensors("disc", self.nets.d),
            **optimizer_tensors("opt_g", self.opt_g),
            **optimizer_tensors("opt_d", self.opt_d),
            "state.augment_p": torch.tensor(self.ada.p, dtype=torch.float64),
            "state.pl_mean": self.state.pl_mean.detach().cpu().reshape([]),
            "state.nimg": torch.tensor(self.nimg, dtype=torch.int64),
        }

    def restore(self, extras: dict[str, Tensor], *, step: int) -> None:
        """Continue from extras written by `extras()`."""
        load_module("gen", self.nets.g, extras)
        load_module("disc", self.nets.d, extras)
        load_optimizer("opt_g", self.opt_g, extras)
        load_optimizer("opt_d", self.opt_d, extras)
        if "state.augment_p" in extras:
            self.ada.p = float(extras["state.augment_p"])
        if "state.pl_mean" in extras:
            self.state.pl_mean.copy_(extras["state.pl_mean"].to(self.device))
        if "state.nimg" in extras:
            self.nimg = int(extras["state.nimg"])
        self.step_index = step


def lazy_adam(module: nn.Module, train: TrainConfig, *, every: int) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction of lr and betas (every=0: none)."""
    ratio = every / (every + 1) if every else 1.0
    return torch.optim.Adam(
        module.parameters(),
        lr=train.lr * ratio,
        betas=(train.beta1**ratio, train.beta2**ratio),
        eps=1e-8,
    )


def step_with_clean_grads(optimizer: torch.optim.Optimizer, module: nn.Module) -> None:
    """Optimizer step after replacing NaN/inf gradients (fp16 overflow) as NVIDIA does."""
    for p in module.parameters():
        if p.grad is not None:
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
    optimizer.step()


def merged_recipe(
    saved: Any, recipe: StyleGAN2Recipe, changed: Collection[str] | None
) -> StyleGAN2Recipe:
    """On resume: the run's saved recipe, with the flags given now on top."""
    if not isinstance(saved, dict):
        return recipe
    names = {f.name for f in fields(StyleGAN2Recipe)}
    base = StyleGAN2Recipe(**{k: v for k, v in saved.items() if k in names})
    given = names if changed is None else set(changed) & names
    return replace(base, **{k: getattr(recipe, k) for k in given})


def train_stylegan2(
    dataset: Path,
    run_dir: Path,
    *,
    recipe: StyleGAN2Recipe,
    train: TrainConfig,
    resume: bool = False,
    force: bool = False,
    changed: Collection[str] | None = None,
) -> TrainResult:
    """Train (or fine-tune, with recipe.resume_from) a StyleGAN2 on a folder of images.

    `changed` names the recipe fields given on the command line: on resume they
    replace the run's saved values (None: the whole recipe replaces them).
    """
    if recipe.metrics == "fid":  # a bad feature network fails now, not after hours of training
        from models.sample_check import load_feature_network

        load_feature_network(Path(recipe.inception), torch.device("cpu"))
    run = Run(run_dir, train=train, resume=resume, force=force)
    nets: Networks | None = None
    saved_step = 0
    extras: dict[str, Tensor] = {}
    if resume:
        meta, weights, extras = run.load_last()
        recipe = merged_recipe(meta.get("training", {}).get("stylegan2"), recipe, changed)
        g_config = config_from_dict(StyleGAN2Config, meta["config"], path=run.dir)
        d_config = config_from_dict(
            StyleGAN2DiscriminatorConfig, meta.get("discriminator"), path=run.dir
        )
        nets = build_networks(g_config, d_config)
        nets.g_ema.load_state_dict({k: v.float() for k, v in weights.items()})
        nets.source = meta.get("source")
        saved_step = int(meta["training"]["step"])
    elif recipe.resume_from:
        nets = load_pretrained(Path(recipe.resume_from), batch=train.batch_size)
    if nets is not None:
        resolution: int | None = nets.g_config.img_resolution
    else:
        resolution = recipe.resolution or None
    data = open_dataset(dataset, paired=False, resolution=resolution, train=train)
    r = int(data.images.shape[1])
    c_dim = data.label_dim if recipe.cond else 0
    if nets is None:
        g_config, d_config = default_configs(
            recipe, resolution=r, c_dim=c_dim, batch=train.batch_size
        )
        nets = build_networks(g_config, d_config)
    elif not resume:
        if c_dim and nets.g_config.c_dim == 0:
            logger.warning("the pretrained model is unconditional: the dataset's labels are unused")
            c_dim = 0
        check_fit(nets, recipe=recipe, data=data, c_dim=c_dim, path=dataset)
    else:
        c_dim = nets.g_config.c_dim
    group = nets.d_config.mbstd_group_size
    if group and train.batch_size % min(group, train.batch_size):
        raise TrainError(
            f"--batch-size {train.batch_size}: the discriminator compares pictures in groups "
            f"of {group}; use a multiple of {group}"
        )
    if recipe.kimg > 0:
        train = replace(train, steps=math.ceil(recipe.kimg * 1000 / train.batch_size))
        run.train = train
    device = run.device
    for module in (nets.g, nets.g_ema, nets.d):
        module.to(device)
    nets.g_ema.eval().requires_grad_(False)
    trainer = StyleGAN2Trainer(nets, recipe=recipe, train=train, device=device, rng=run.rng)
    precision = precision_for(device, train.amp)
    apply_precision(nets, precision)
    trainer.channels_last = precision.channels_last
    if resume:
        trainer.restore({k: v.to(device) for k, v in extras.items()}, step=saved_step)
        run.step = saved_step
        logger.info("resumed %s at step %d (%.1f kimg)", run.dir, run.step, trainer.nimg / 1000)
    labels = labels_of(data, c_dim)
    if labels is not None:
        labels = labels.to(device)
    grid_z = torch.stack([seed_latent(s, nets.g_config.z_dim) for s in SAMPLE_SEEDS]).to(device)
    grid_labels = grid_c(labels, len(SAMPLE_SEEDS))

    def step() -> dict[str, float]:
        index = torch.randint(0, len(data), (train.batch_size,), generator=run.rng)
        real = to_float(data.take(index), resolution=r, device=device)
        c_real = labels[index.to(labels.device)] if labels is not None else None
        return trainer.step(real, c_real, labels)

    def sample() -> None:
        with torch.no_grad():
            run.write_sample(fakes(nets.g_ema, grid_z, grid_labels), columns=4)

    def save(quality: dict[str, float] | None = None) -> None:
        training = training_metadata(
            train,
            run.step,
            **dataset_metadata(dataset, data, train),
            stylegan2=asdict(recipe),
            kimg=trainer.nimg / 1000,
            r1_gamma=trainer.gamma,
            quality=quality or {},
        )
        components, stdev = ganspace(nets.g_ema, samples=GANSPACE_SAMPLES)
        metadata: dict[str, Any] = {
            "w_dim": nets.g_config.w_dim,
            "num_ws": nets.g_ema.num_ws,
            "c_dim": nets.g_config.c_dim,
            "discriminator": asdict(nets.d_config),
            "ganspace": {"samples": GANSPACE_SAMPLES, "components": int(components.shape[0])},
        }
        if nets.source:
            metadata["source"] = nets.source
        run.save(
            arch="stylegan2",
            config=nets.g_config,
            weights=nets.g_ema,
            training=training,
            extras=trainer.extras(),
            metadata=metadata,
            model_extras={"ganspace/components": components, "ganspace/stdev": stdev},
        )

    result = run.loop(step, save=save, sample=sample, images_per_step=train.batch_size)
    if recipe.check or recipe.metrics:
        from models.sample_check import run_checks

        result.quality = run_checks(
            run.dir,
            nets.g_ema,
            data,
            resolution=r,
            labels=labels,
            device=device,
            inception=Path(recipe.inception) if recipe.metrics == "fid" else None,
            write=recipe.check,
        )
        save(result.quality)
    return result


def fakes(g: StyleGAN2Generator, z: Tensor, c: Tensor | None, *, batch: int = 16) -> Tensor:
    """G(z, c) in batches, constant noise, no truncation: (N, 3, R, R) float on the CPU."""
    out = []
    g.eval()
    with torch.no_grad():
        for start in range(0, z.shape[0], batch):
            cc = c[start : start + batch] if c is not None else None
            out.append(g(z[start : start + batch], cc, noise_mode="const").float().cpu())
    return torch.cat(out)
