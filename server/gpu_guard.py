"""The GPU path, guarded: proved at load, measured before a load, left after a device error.

- At load (`prepare`): a model goes to its device and its fast path is proved
  against fp32 (models.fastpath.prove); a DCGAN's half precision is checked the
  same way. The path that plays, and why, is a `FastPath` the status shows.
- Before a model switch (`memory_check`): a model that would not fit in the free
  GPU memory beside the playing one is refused with a clear error.
- After a device error mid-show (`fall_back`): the deck leaves its fast path
  for fp32 on the same device; if it already played fp32 there, it moves to the
  CPU. The render thread goes on.

Everything here runs on the render thread or an io thread, never the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from models.catalog import load_model
from models.checkpoint import LoadedModel
from models.device import half_if_finite
from models.fastpath import FastPath, agreement, disable, prove
from models.faults import Faults
from models.latent_maths import seed_latent
from models.sampling import is_stylegan

logger = logging.getLogger(__name__)

# Memory a model needs on the GPU beyond what is free: its weights twice (the
# weights, then as much again for cuDNN workspaces, fp16 copies and the pools
# CUDA graphs keep), plus activations at batch 1 (a StyleGAN at R px holds a few
# (1, 32..512, R, R) fp32 maps at once: about 512 bytes a pixel at the widest).
MEMORY_FACTOR = 2.0
ACTIVATION_BYTES_PER_PIXEL = 512
MIB = 1024 * 1024


def verify_frame(model: LoadedModel, module: nn.Module) -> Callable[[int], torch.Tensor]:
    """Verification frame i: seed i at the model's native size, as the module is now."""
    generator: nn.Module = module
    z_dim = int(model.z_dim or 0)

    def frame(i: int) -> torch.Tensor:
        parameter = next(generator.parameters())
        z = seed_latent(i, z_dim)[None].to(parameter.device)  # (1, z_dim)
        if is_stylegan(model):
            net: nn.Module = generator
            c_dim = int(getattr(net, "c_dim", 0) or 0)
            c = torch.zeros([1, c_dim], device=z.device) if c_dim else None
            if c is not None:
                c[:, 0] = 1
            ws = net.mapping(z, c)  # type: ignore[operator]
            image: torch.Tensor = net.synthesis(ws, noise_mode="const")  # type: ignore[operator]
            return image
        out: torch.Tensor = generator(z.to(parameter.dtype))
        return out

    return frame


def place(module: nn.Module, device: torch.device) -> nn.Module:
    """The module on `device`; an out-of-memory move leaves it on the CPU and says so."""
    try:
        return module.to(device).eval()
    except torch.OutOfMemoryError as exc:
        module.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise RuntimeError(
            f"not enough GPU memory on {device} to load this model ({exc}); "
            "the playing model goes on"
        ) from exc


def prepare(
    model: LoadedModel,
    module: nn.Module,
    device: torch.device,
    *,
    half: bool,
    compile: bool,
    compile_deadline_s: float | None,
    faults: Faults,
) -> tuple[nn.Module, bool, FastPath]:
    """The module (already on `device`) on its proved path: (module, whole-module half, path)."""
    frame = verify_frame(model, module)
    if is_stylegan(model):
        path = prove(
            module,
            device,
            frame=frame,
            allow_fp16=half,
            compile=compile,
            compile_deadline_s=compile_deadline_s,
            faults=faults,
        )
        return module, False, path
    # A DCGAN's fast path is the whole module in half precision (CUDA), kept only if
    # its frames stay finite and within fp16 rounding of fp32.
    force = faults.verify_anywhere
    if not ((device.type == "cuda" and half) or force):
        return module, False, FastPath(notes=(f"{device.type}: fp32",))
    with torch.inference_mode():
        exact = [frame(i).float().clone() for i in range(3)]
    if device.type == "cuda" and half:
        module, is_half = half_if_finite(module, z_dim=int(model.z_dim or 0), device=device)
    else:
        is_half = False  # the CPU under a fault hook: the fp32 path stands in for fp16
    with torch.inference_mode():
        fast = [faults.fast_output(frame(i).float().clone()) for i in range(3)]
    why = agreement(exact, fast)
    if why is None:
        notes = () if is_half else ("half precision is not finite here: fp32",)
        return module, is_half, FastPath(fp16=is_half, notes=notes, verified=True)
    note = f"half precision rejected: {why}; fp32"
    logger.warning("%s: %s", model.name, note)
    return module.float(), False, FastPath(notes=(note,))


def memory_check(model: LoadedModel, device: torch.device, faults: Faults) -> str | None:
    """None if `model` fits in the device's free memory now, else the error to show."""
    if device.type != "cuda" and not faults.oom_on_load:
        return None  # the CPU's memory is the kernel's to manage; MPS shares it
    tensors = [*model.module.parameters(), *model.module.buffers()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    need = int(weights * MEMORY_FACTOR + model.resolution**2 * ACTIVATION_BYTES_PER_PIXEL)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else need
    free = faults.free_memory(free)
    if free >= need:
        return None
    return (
        f"not enough GPU memory for {model.name}: it needs about {need / MIB:.0f} MiB "
        f"({model.resolution} px, {weights / MIB:.0f} MiB of weights), {free / MIB:.0f} MiB "
        f"free on {device}; the playing model goes on (free memory: a smaller model, "
        "render.size, or one GPU per show)"
    )


def is_device_error(exc: BaseException) -> bool:
    """True for an error of the device itself (CUDA, MPS), not of the frame's inputs."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    accelerator = getattr(torch, "AcceleratorError", None)  # torch >= 2.8
    if accelerator is not None and isinstance(exc, accelerator):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "CUDA error" in text or "CUDA out of memory" in text or "MPS backend" in text
    )


@dataclass(frozen=True)
class Fallback:
    """Where a deck plays after a device error."""

    module: nn.Module
    device: torch.device
    path: FastPath
    reloaded: bool  # a new module object (the old one could not leave the device)


def fall_back(
    model: LoadedModel,
    module: nn.Module,
    device: torch.device,
    path: FastPath,
    half: bool,
    why: str,
) -> Fallback | None:
    """The last good path after a device error: fp32 there, else the CPU; None at the end."""
    if path.describe() != "fp32" or half:
        disable(module)
        if half:
            module = module.float()
        note = f"device error on {path.describe()} ({why}); fp32 on {device}"
        logger.error("%s: %s", model.name, note)
        return Fallback(module, device, replace(FastPath(), notes=(note,)), reloaded=False)
    if device.type == "cpu":
        return None  # nowhere further to go: the engine reports and holds the last frame
    cpu = torch.device("cpu")
    note = f"device error on {device} ({why}); the CPU at the model's native size"
    logger.error("%s: %s", model.name, note)
    reloaded = False
    try:
        module = module.to(cpu)
    except Exception as exc:  # noqa: BLE001 - a lost CUDA context cannot copy out: reload
        logger.warning("%s: cannot copy off %s (%s); reloading its file", model.name, device, exc)
        module = load_model(model.path, device="cpu").module
        reloaded = True
    return Fallback(module.eval(), cpu, FastPath(notes=(note,)), reloaded=reloaded)
