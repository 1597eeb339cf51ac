"""Training loops for DCGAN, pix2pix and the encoder: resumable, time-boxed, Ctrl-C safe.

A run folder holds `last.safetensors` (generator weights plus discriminator and
optimiser state as extra tensors, enough to resume), `model.safetensors` (the
generator alone, what `serve` loads), `samples/step-NNNNNN.png` grids and
`loss.csv`.
"""

from __future__ import annotations

import csv
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from models.catalog import load_model
from models.checkpoint import (
    CheckpointError,
    extra_tensors,
    file_sha256,
    read_tensors,
    save_checkpoint,
)
from models.dataset import Dataset, DatasetError, load_dataset
from models.device import pick_device
from models.framing import FITS
from models.images import make_grid, write_png
from models.inversion import Inversion
from models.latent_maths import random_latent
from models.nets.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from models.nets.encoder import Encoder, EncoderConfig
from models.nets.pix2pix import PatchDiscriminator, Pix2PixConfig, UNetGenerator

logger = logging.getLogger(__name__)

LAST = "last.safetensors"
MODEL = "model.safetensors"
EVAL_SEED = 424242  # latents for sample grids and held-out quality checks


class TrainError(ValueError):
    """A training run that cannot start: bad run folder, dataset or generator."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping, shared by every model."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    time_limit: float = 0.0  # seconds of training before a clean stop; 0 = none
    checkpoint_every: int = 250
    sample_every: int = 250
    log_every: int = 10
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1"...
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    threads: int = 0  # torch CPU threads; 0 = leave torch's default
    l1_weight: float = 100.0  # pix2pix: weight of the L1 term
    image_weight: float = 1.0  # encoder: weight of the image reconstruction loss
    real_weight: float = 0.0  # encoder: weight of the loss on real images (needs a dataset)
    feature_weight: float = 1.0  # encoder: weight of the --discriminator feature loss
    half: bool = True  # store model.safetensors as float16
    fit: str = "letterbox"  # image folders: pictures not square are letterboxed or cropped
    mirror: bool = False  # also train on left-right flips (datasets made with --mirror always do)

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")


@dataclass
class TrainResult:
    """What a run did: steps, throughput, the last losses and the quality report."""

    run_dir: Path
    step: int
    images_per_second: float
    losses: dict[str, float]
    quality: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


def batches_of(count: int, *, batch_size: int, generator: torch.Generator) -> Tensor:
    """A random batch of indices in [0, count)."""
    return torch.randint(0, count, (batch_size,), generator=generator)


def to_float(images: Tensor, *, resolution: int, device: torch.device) -> Tensor:
    """uint8 (..., R, R, 3) -> float (..., 3, r, r) in [-1, 1] on the device."""
    x = images.to(device).float().div(127.5).sub(1.0)
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)  # (B, 3, R, R)
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)
    return x.reshape(*lead, 3, resolution, resolution).contiguous()


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """An optimiser's per-parameter state as flat named tensors."""
    out: dict[str, Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().cpu()
    return out


def load_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor]
) -> None:
    """Restore state written by optimizer_tensors."""
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    full = optimizer.state_dict()
    full["state"] = state
    optimizer.load_state_dict(full)


def module_tensors(prefix: str, module: nn.Module) -> dict[str, Tensor]:
    """A module's state dict under a prefix."""
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(prefix: str, module: nn.Module, tensors: dict[str, Tensor]) -> None:
    """Restore a module saved by module_tensors."""
    n = len(prefix) + 1
    module.load_state_dict({k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")})


class Run:
    """Bookkeeping shared by every trainer: folder, clock, loss log, progress, checkpoints."""

    def __init__(self, run_dir: Path, *, train: TrainConfig, resume: bool, force: bool) -> None:
        self.dir = Path(run_dir)
        self.train = train
        last = self.dir / LAST
        if last.exists() and not resume and not force:
            raise TrainError(
                f"{self.dir}: a run already exists (use --resume to continue or --force)"
            )
        if resume and not last.exists():
            raise TrainError(f"{last}: nothing to resume")
        self.resume = resume
        self.dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (self.dir / "loss.csv").unlink(missing_ok=True)  # --force starts the log over
        (self.dir / "samples").mkdir(exist_ok=True)
        if train.threads > 0:
            torch.set_num_threads(train.threads)
        self.device = run_device(train)
        logger.info("training on %s (--device %s)", self.device, train.device)
        self.rng = torch.Generator().manual_seed(train.seed)
        torch.manual_seed(train.seed)
        self.step = 0
        self.log_rows: list[dict[str, float]] = []

    def autocast(self) -> Any:
        """bfloat16 autocast on CUDA when amp is on; a no-op elsewhere."""
        enabled = self.device.type == "cuda" and self.train.amp
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def load_last(self) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Tensor]]:
        """(metadata, generator tensors, extra tensors) of last.safetensors."""
        meta, tensors = read_tensors(self.dir / LAST)
        weights = {k: v for k, v in tensors.items() if not k.startswith("extra/")}
        return meta, weights, extra_tensors(tensors)

    def save(
        self,
        *,
        arch: str,
        config: object,
        weights: nn.Module,
        training: dict[str, Any],
        extras: dict[str, Tensor],
        metadata: dict[str, Any] | None = None,
        model_extras: dict[str, Tensor] | None = None,
    ) -> None:
        """Write the resumable checkpoint (with optimiser state) and the model file."""
        save_checkpoint(
            self.dir / LAST,
            arch=arch,
            config=config,
            weights=weights,
            training=training,
            extra_tensors=extras,
            extra_metadata=metadata,
        )
        save_checkpoint(
            self.dir / MODEL,
            arch=arch,
            config=config,
            weights=weights,
            training=training,
            extra_tensors=model_extras,
            half=self.train.half,
            extra_metadata=metadata,
        )

    def write_sample(self, images: Tensor, *, columns: int) -> None:
        """A sample grid PNG for the current step."""
        path = self.dir / "samples" / f"step-{self.step:06d}.png"
        write_png(path, make_grid(images, columns=columns))

    def log(self, row: dict[str, float]) -> None:
        """Append one row to loss.csv."""
        path = self.dir / "loss.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def loop(
        self,
        step_fn: Callable[[], dict[str, float]],
        *,
        save: Callable[[], None],
        sample: Callable[[], None],
        images_per_step: int,
    ) -> TrainResult:
        """Run step_fn until steps or the time limit; save on the way and on Ctrl-C."""
        train = self.train
        start_step = self.step
        bar = tqdm(total=train.steps, desc="train", unit="steps", initial=self.step)
        started = time.monotonic()
        losses: dict[str, float] = {}
        interrupted = False
        stop = threading.Event()
        previous = install_stop_handlers(stop)
        try:
            while self.step < train.steps:
                if stop.is_set():
                    interrupted = True
                    logger.warning("stop requested at step %d: saving", self.step)
                    break
                if train.time_limit and time.monotonic() - started > train.time_limit:
                    logger.info("time limit reached at step %d", self.step)
                    break
                losses = step_fn()
                self.step += 1
                if not all(math.isfinite(v) for v in losses.values()):
                    raise TrainError(f"step {self.step}: a loss is not finite: {losses}")
                if self.step % train.log_every == 0:
                    self.log(
                        {
                            "step": self.step,
                            "seconds": round(time.monotonic() - started, 2),
                            **losses,
                        }
                    )
                bar.set_postfix_str(" ".join(f"{k}={v:.3f}" for k, v in losses.items()), False)
                bar.total = expected_last_step(
                    step=self.step,
                    steps=train.steps,
                    start_step=start_step,
                    elapsed=time.monotonic() - started,
                    time_limit=train.time_limit,
                )
                bar.update()
                if self.step % train.sample_every == 0:
                    sample()
                if self.step % train.checkpoint_every == 0:
                    save()
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("interrupted at step %d: saving", self.step)
        finally:
            bar.close()
            restore_handlers(previous)
        elapsed = time.monotonic() - started
        save()
        sample()
        rate = (self.step - start_step) * images_per_step / elapsed if elapsed > 0 else 0.0
        return TrainResult(
            run_dir=self.dir,
            step=self.step,
            images_per_second=rate,
            losses=losses,
            interrupted=interrupted,
        )


def expected_last_step(
    *, step: int, steps: int, start_step: int, elapsed: float, time_limit: float
) -> int:
    """The step a run will stop at: `steps`, or sooner where its time limit comes first.

    The progress bar's total, so its ETA counts down to whichever end is nearer:
    the steps still to go at this run's rate so far, capped by the seconds left.
    """
    done = step - start_step
    if time_limit <= 0 or done <= 0 or elapsed <= 0:
        return steps
    by_time = step + int(done / elapsed * max(0.0, time_limit - elapsed))
    return max(step, min(steps, by_time))


def install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGINT / SIGTERM ask the loop to stop after the current step (it then saves).

    Installed explicitly because a process started in the background inherits an
    ignored SIGINT. A second Ctrl-C raises KeyboardInterrupt at once (still saved).
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def restore_handlers(previous: dict[int, Any]) -> None:
    """Put back the signal handlers install_stop_handlers replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def open_dataset(
    path: Path, *, paired: bool, resolution: int | None, train: TrainConfig
) -> Dataset:
    """Load a dataset at the model's resolution (None: the one dataset.json names)."""
    try:
        data = load_dataset(path, size=resolution, fit=train.fit, progress=True)
    except DatasetError as exc:
        raise TrainError(str(exc)) from exc
    if data.paired != paired:
        need = "a paired dataset (--pairing ...)" if paired else "an unpaired dataset"
        raise TrainError(f"{path}: this model needs {need}")
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable image(s): {', '.join(data.skipped[:5])}")
    if train.mirror and not data.mirror:
        data = replace(data, mirror=True)
    return data


def dataset_metadata(path: Path, data: Dataset, train: TrainConfig) -> dict[str, Any]:
    """What a checkpoint records of the data it was trained on (live input is framed by `fit`)."""
    made = data.info.get("config", {})
    fit = made.get("fit") if isinstance(made, dict) and made.get("fit") in FITS else train.fit
    return {"dataset": {"path": str(path), "count": len(data), "digest": data.digest, "fit": fit}}


def training_metadata(train: TrainConfig, step: int, **more: Any) -> dict[str, Any]:
    """The `training` block of a checkpoint: recipe, step, and whatever else is given."""
    return {"recipe": asdict(train), "step": step, **more}


def train_dcgan(
    dataset: Path,
    run_dir: Path,
    *,
    model: DCGANConfig,
    train: TrainConfig,
    resume: bool = False,
    force: bool = False,
) -> TrainResult:
    """Train an unconditional DCGAN on a folder of images."""
    run = Run(run_dir, train=train, resume=resume, force=force)
    if resume:
        meta, weights, extras = run.load_last()
        model = DCGANConfig(**meta["config"])
    data = open_dataset(dataset, paired=False, resolution=model.resolution, train=train)
    g = DCGANGenerator(config=model).to(run.device)
    d = DCGANDiscriminator(config=model).to(run.device)
    opt_g, opt_d = gan_optimizers(g, d, train)
    if resume:
        restore_gan(run, g, d, opt_g, opt_d, meta=meta, weights=weights, extras=extras)
    fixed_z = torch.stack([random_latent(EVAL_SEED + i, model.z_dim) for i in range(16)]).to(
        run.device
    )
    bce = nn.BCEWithLogitsLoss()

    def step() -> dict[str, float]:
        g.train()
        real = to_float(
            data.take(batches_of(len(data), batch_size=train.batch_size, generator=run.rng)),
            resolution=model.resolution,
            device=run.device,
        )
        z = torch.randn(train.batch_size, model.z_dim, device=run.device)
        with run.autocast():
            fake = g(z)
            logits_real, logits_fake = d(real), d(fake.detach())
            loss_d = bce(logits_real, torch.full_like(logits_real, 0.9)) + bce(
                logits_fake, torch.zeros_like(logits_fake)
            )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with run.autocast():
            logits = d(fake)
            loss_g = bce(logits, torch.ones_like(logits))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    def sample() -> None:
        g.eval()
        with torch.no_grad():
            run.write_sample(g(fixed_z), columns=4)

    def save() -> None:
        training = training_metadata(train, run.step, **dataset_metadata(dataset, data, train))
        extras = gan_extras(d, opt_g, opt_d)
        run.save(arch="dcgan", config=model, weights=g, training=training, extras=extras)

    return run.loop(step, save=save, sample=sample, images_per_step=train.batch_size)


def gan_optimizers(
    g: nn.Module, d: nn.Module, train: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for a generator and its discriminator, as the config says."""
    betas = (train.beta1, train.beta2)
    return (
        torch.optim.Adam(g.parameters(), lr=train.lr, betas=betas),
        torch.optim.Adam(d.parameters(), lr=train.lr, betas=betas),
    )


def restore_gan(
    run: Run,
    g: nn.Module,
    d: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    meta: dict[str, Any],
    weights: dict[str, Tensor],
    extras: dict[str, Tensor],
) -> None:
    """Continue a GAN run: both networks, both optimisers, the step count."""
    g.load_state_dict(weights)
    load_module("disc", d, extras)
    load_optimizer("opt_g", opt_g, extras)
    load_optimizer("opt_d", opt_d, extras)
    run.step = int(meta["training"]["step"])
    logger.info("resumed %s at step %d", run.dir, run.step)


def gan_extras(
    d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer
) -> dict[str, Tensor]:
    """What a resumable GAN checkpoint keeps besides the generator."""
    return {
        **module_tensors("disc", d),
        **optimizer_tensors("opt_g", opt_g),
        **optimizer_tensors("opt_d", opt_d),
    }


def split_held_out(data: Dataset, fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """(train, held-out) row indices: the last `fraction` of the video, with its mirrored copies."""
    n = len(data)
    # Older .npy datasets hold their mirrored copies as the second half of the rows.
    legacy_mirror = not data.names and bool(data.info.get("config", {}).get("mirror", False))
    mirrored = (data.mirror or legacy_mirror) and n % 2 == 0
    half = n // 2 if mirrored else n
    cut = max(1, int(half * (1 - fraction)))
    index = torch.arange(n)
    if cut >= half:
        return index, index
    held = (index % half) >= cut if mirrored else index >= cut
    return index[~held], index[held]


def pix2pix_quality(
    g: UNetGenerator, data: Dataset, held: Tensor, *, resolution: int, device: torch.device
) -> dict[str, float]:
    """L1 (in [0, 1] pixel units) of the model and of returning the input, on held-out pairs."""
    g.eval()
    model_l1 = identity_l1 = 0.0
    with torch.no_grad():
        for chunk in held.split(32):
            x = to_float(data.take(chunk), resolution=resolution, device=device)  # (B, 2, 3, r, r)
            src, tgt = x[:, 0], x[:, 1]
            model_l1 += float((g(src) - tgt).abs().mean(dim=(1, 2, 3)).sum()) / 2
            identity_l1 += float((src - tgt).abs().mean(dim=(1, 2, 3)).sum()) / 2
    n = held.shape[0]
    return {"heldout_pairs": float(n), "l1_model": model_l1 / n, "l1_identity": identity_l1 / n}


def train_pix2pix(
    dataset: Path,
    run_dir: Path,
    *,
    model: Pix2PixConfig,
    train: TrainConfig,
    resume: bool = False,
    force: bool = False,
) -> TrainResult:
    """Train a pix2pix model on a paired dataset; reports held-out L1 against the identity."""
    run = Run(run_dir, train=train, resume=resume, force=force)
    if resume:
        meta, weights, extras = run.load_last()
        model = Pix2PixConfig(**meta["config"])
    data = open_dataset(dataset, paired=True, resolution=model.resolution, train=train)
    pairs, held = split_held_out(data)
    g = UNetGenerator(config=model).to(run.device)
    d = PatchDiscriminator(config=model).to(run.device)
    opt_g, opt_d = gan_optimizers(g, d, train)
    if resume:
        restore_gan(run, g, d, opt_g, opt_d, meta=meta, weights=weights, extras=extras)
    bce = nn.BCEWithLogitsLoss()
    shown = held[:6]

    def step() -> dict[str, float]:
        g.train()
        x = to_float(
            data.take(
                pairs[batches_of(len(pairs), batch_size=train.batch_size, generator=run.rng)]
            ),
            resolution=model.resolution,
            device=run.device,
        )
        src, tgt = x[:, 0], x[:, 1]  # (B, 3, R, R) each
        with run.autocast():
            fake = g(src)
            logits_real, logits_fake = d(src, tgt), d(src, fake.detach())
            loss_d = 0.5 * (
                bce(logits_real, torch.ones_like(logits_real))
                + bce(logits_fake, torch.zeros_like(logits_fake))
            )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with run.autocast():
            logits = d(src, fake)
            loss_gan = bce(logits, torch.ones_like(logits))
            loss_l1 = (fake.float() - tgt).abs().mean()
            loss_g = loss_gan + train.l1_weight * loss_l1
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {
            "loss_d": float(loss_d.detach()),
            "loss_gan": float(loss_gan.detach()),
            "loss_l1": float(loss_l1.detach()),
        }

    def sample() -> None:
        g.eval()
        with torch.no_grad():
            x = to_float(data.take(shown), resolution=model.resolution, device=run.device)
            rows = torch.cat([x[:, 0], g(x[:, 0]), x[:, 1]])  # sources, outputs, targets
        run.write_sample(rows, columns=shown.shape[0])

    def save(quality: dict[str, float] | None = None) -> None:
        training = training_metadata(
            train, run.step, **dataset_metadata(dataset, data, train), quality=quality or {}
        )
        extras = gan_extras(d, opt_g, opt_d)
        run.save(arch="pix2pix", config=model, weights=g, training=training, extras=extras)

    result = run.loop(step, save=save, sample=sample, images_per_step=train.batch_size)
    result.quality = pix2pix_quality(g, data, held, resolution=model.resolution, device=run.device)
    save(result.quality)
    return result


def train_encoder(
    generator: Path,
    run_dir: Path,
    *,
    model: EncoderConfig | None,
    train: TrainConfig,
    dataset: Path | None = None,
    discriminator: Path | None = None,
    init_from: Path | None = None,
    resume: bool = False,
    force: bool = False,
) -> TrainResult:
    """Train an encoder on the generator's samples (z -> G(z) -> E -> z), real images optional.

    `discriminator` (the generator's training run's last.safetensors) adds a
    perceptual loss in its feature space; `init_from` starts from another
    encoder's weights (same shape), which converges faster than from scratch.
    """
    try:
        gen = load_model(generator, run_device(train))
    except CheckpointError as exc:
        raise TrainError(str(exc)) from exc
    if gen.kind != "unconditional" or gen.z_dim is None:
        raise TrainError(
            f"{generator}: an encoder needs an unconditional generator, this is {gen.kind}"
        )
    g = gen.module
    for p in g.parameters():
        p.requires_grad_(False)
    run = Run(run_dir, train=train, resume=resume, force=force)
    if resume:
        meta, weights, extras = run.load_last()
        model = EncoderConfig(**meta["config"])
    try:
        space = Inversion(gen, space=model.space if model else "z", device=run.device)
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    if model is None:
        model = EncoderConfig(resolution=gen.resolution, z_dim=space.latent_dim)
    elif not resume:  # the generator decides what goes in and what comes out
        model = replace(model, resolution=gen.resolution, z_dim=space.latent_dim)
    if space.stylegan and model.space == "z":
        model = replace(model, space=space.space)
    if space.space == "w+":
        model = replace(model, num_ws=space.num_ws)
    if (model.resolution, model.z_dim) != (gen.resolution, space.latent_dim):
        raise TrainError(
            f"encoder resolution/latent size {model.resolution}/{model.z_dim} do not match "
            f"the generator's {gen.resolution}/{space.latent_dim}"
        )
    real: Dataset | None = None
    if dataset is not None and train.real_weight > 0:
        real = open_dataset(dataset, paired=False, resolution=gen.resolution, train=train)
    e = Encoder(config=model).to(run.device)
    if init_from is not None and not resume:
        start_from(e, init_from)
    features = (
        discriminator_features(discriminator, gen.resolution, run.device)
        if discriminator is not None and train.feature_weight > 0
        else None
    )
    opt = torch.optim.Adam(e.parameters(), lr=train.lr, betas=(0.9, 0.999))
    if resume:
        e.load_state_dict(weights)
        load_optimizer("opt_e", opt, extras)
        run.step = int(meta["training"]["step"])
    link = {"name": Path(generator).stem, "sha256": file_sha256(generator), "space": space.space}
    fixed = space.held_out(8, offset=-1000)  # the sample grid's latents

    def step() -> dict[str, float]:
        e.train()
        with run.autocast():
            target, images = space.sample(train.batch_size)
        with run.autocast():
            predicted = e(images.float())
            loss_z = space.latent_loss(predicted, target)
            loss = loss_z
            losses = {"loss_z": 0.0}
            if train.image_weight > 0 or features is not None:
                again = space.decode(predicted).float()
                loss_img = (again - images.float()).abs().mean()
                loss = loss + train.image_weight * loss_img
                losses["loss_img"] = float(loss_img.detach())
                if features is not None:
                    loss_feat = feature_distance(features, again, images.float())
                    loss = loss + train.feature_weight * loss_feat
                    losses["loss_feat"] = float(loss_feat.detach())
            if real is not None:
                x = to_float(
                    real.take(
                        batches_of(len(real), batch_size=train.batch_size, generator=run.rng)
                    ),
                    resolution=model.resolution,
                    device=run.device,
                )
                loss_real = (space.decode(e(x)).float() - x).abs().mean()
                loss = loss + train.real_weight * loss_real
                losses["loss_real"] = float(loss_real.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses["loss_z"] = float(loss_z.detach())
        return losses

    def sample() -> None:
        e.eval()
        with torch.no_grad():
            images = space.decode(fixed)
            rows = torch.cat([images, space.decode(e(images))])  # originals, reconstructions
        run.write_sample(rows, columns=fixed.shape[0])

    def save(quality: dict[str, float] | None = None) -> None:
        training = training_metadata(
            train, run.step, generator=str(generator), quality=quality or {}
        )
        extras = optimizer_tensors("opt_e", opt)
        run.save(
            arch="encoder",
            config=model,
            weights=e,
            training=training,
            extras=extras,
            metadata={"generator": link},
        )

    result = run.loop(step, save=save, sample=sample, images_per_step=train.batch_size)
    result.quality = space.quality(e)
    save(result.quality)
    return result


def start_from(e: Encoder, path: Path) -> None:
    """Load another encoder file's weights into e (same shape), or raise TrainError."""
    try:
        other = load_model(path, "cpu")
    except CheckpointError as exc:
        raise TrainError(str(exc)) from exc
    stored = other.metadata.get("config")
    if (
        other.kind != "encoder"
        or not isinstance(stored, dict)
        or EncoderConfig(**stored) != e.config
    ):
        raise TrainError(f"{path}: --init-from needs an encoder of the same shape ({e.config})")
    e.load_state_dict({k: v.float() for k, v in other.module.state_dict().items()})
    logger.info("encoder starts from %s", path)


def discriminator_features(path: Path, resolution: int, device: torch.device) -> nn.Sequential:
    """The feature stack of a DCGAN run's discriminator (its last.safetensors), frozen."""
    try:
        meta, tensors = read_tensors(path)
    except (CheckpointError, OSError) as exc:
        raise TrainError(f"{path}: {exc}") from exc
    if meta.get("arch") != "dcgan" or not any(k.startswith("extra/disc.") for k in tensors):
        raise TrainError(f"{path}: not a DCGAN training checkpoint (last.safetensors of a run)")
    config = DCGANConfig(**meta["config"])
    if config.resolution != resolution:
        raise TrainError(f"{path}: its discriminator sees {config.resolution} px, not {resolution}")
    d = DCGANDiscriminator(config=config)
    load_module("disc", d, extra_tensors(tensors))
    d = d.to(device).eval()
    for p in d.parameters():
        p.requires_grad_(False)
    return d.features


def feature_distance(features: nn.Sequential, a: Tensor, b: Tensor) -> Tensor:
    """Mean L1 between two images' activations after every stage of a feature stack."""
    total = a.new_zeros(())
    count = 0
    for layer in features:
        a, b = layer(a), layer(b)
        if isinstance(layer, nn.LeakyReLU):  # the end of a stage
            total = total + (a - b).abs().mean()
            count += 1
    return total / max(count, 1)


def run_device(train: TrainConfig) -> torch.device:
    """The device a training config names, "auto" resolved as `ganvj serve` resolves it."""
    try:
        return pick_device(train.device, setting="--device")
    except RuntimeError as exc:  # no such device here, or a name torch does not know
        raise TrainError(str(exc)) from exc
