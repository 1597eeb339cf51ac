"""Where the generator runs: device choice, CPU threads, half precision."""

from __future__ import annotations

import os

import torch


def pick_device(name: str, *, setting: str = "render.device") -> torch.device:
    """Resolve "auto" to CUDA, then MPS, then CPU; check an explicit choice exists.

    `setting` names where the choice came from in the error (a config key or a flag).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{setting} = {name!r} but no CUDA device is available")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError(f"{setting} = {name!r} but MPS is not available")
    return device


def cpu_threads(requested: int) -> int:
    """Torch threads for a CPU generator: as asked, or one less than the cores.

    The encoder and the network need a core of their own: with every core
    running OpenMP workers, a 2-core machine ran a small DCGAN 200x slower
    (5 fps against 1,247) while another process was busy.
    """
    if requested > 0:
        return requested
    return max(1, (os.cpu_count() or 1) - 1)


def half_if_finite(
    module: torch.nn.Module, *, z_dim: int, device: torch.device
) -> tuple[torch.nn.Module, bool]:
    """The module in half precision if a probe render stays finite there, else float32.

    Some generators overflow fp16 (large activations before a tanh); those
    keep rendering in float32 rather than drawing NaN.
    """
    half = module.half()
    with torch.inference_mode():
        probe = half(torch.randn(2, z_dim, device=device).half())
    if bool(torch.isfinite(probe).all()):
        return half, True
    return module.float(), False
