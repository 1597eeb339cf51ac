"""The CUDA fast path of a StyleGAN generator, chosen once at load.

On CUDA: the blocks the file flags as fp16 (`num_fp16_res`) compute in half
precision, as NVIDIA's training and visualizer ran them; those blocks keep
their activations channels-last, which tensor cores prefer; optionally the
synthesis network is compiled with torch.compile ("reduce-overhead" captures
CUDA graphs), with a fallback to eager when compiling fails. Nothing changes
the pictures beyond fp16 rounding. On any other device the exact fp32 path
runs unchanged.

`plan()` is the decision alone (pure, tested on the CPU); `enable()` applies it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn

logger = logging.getLogger(__name__)

Compiler = Callable[..., Any]


@dataclass(frozen=True)
class FastPath:
    """What the fast path does for one model on one device, with the reasons."""

    fp16: bool = False  # flagged blocks in half precision
    fp16_blocks: int = 0  # how many blocks the file flags
    channels_last: bool = False  # fp16 blocks' activations channels-last
    compile: bool = False  # synthesis compiled (after a successful warm-up)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for logs and benchmark tables."""
        parts = []
        if self.fp16:
            parts.append(f"fp16 x{self.fp16_blocks}")
        if self.channels_last:
            parts.append("channels-last")
        if self.compile:
            parts.append("compiled")
        return "+".join(parts) or "fp32"


def synthesis_blocks(module: nn.Module) -> list[Any]:
    """The parts of a StyleGAN synthesis network with a precision flag (SG2 blocks, SG3 layers)."""
    synthesis = getattr(module, "synthesis", None)
    if not isinstance(synthesis, nn.Module):
        return []
    return [m for m in synthesis.modules() if hasattr(m, "use_fp16")]


def plan(
    module: nn.Module,
    device: torch.device,
    *,
    allow_fp16: bool = True,
    compile: bool = False,
    has_compiler: bool | None = None,
) -> FastPath:
    """The fast path for this generator on this device; an exact fp32 path off CUDA."""
    if device.type != "cuda":
        return FastPath(notes=(f"{device.type}: the exact fp32 path (the fast path is CUDA's)",))
    notes: list[str] = []
    flagged = [b for b in synthesis_blocks(module) if getattr(b, "use_fp16", False)]
    fp16 = allow_fp16 and bool(flagged)
    if not flagged:
        notes.append("the file flags no fp16 layers: fp32 throughout")
    elif not allow_fp16:
        notes.append("fp16 turned off: fp32 throughout")
    if has_compiler is None:
        has_compiler = hasattr(torch, "compile")
    want_compile = compile and has_compiler and hasattr(module, "synthesis")
    if compile and not want_compile:
        notes.append("torch.compile is not available: eager")
    return FastPath(
        fp16=fp16,
        fp16_blocks=len(flagged),
        channels_last=fp16,
        compile=want_compile,
        notes=tuple(notes),
    )


def enable(
    module: nn.Module,
    device: torch.device,
    *,
    allow_fp16: bool = True,
    compile: bool = False,
    compiler: Compiler | None = None,
    warmup: Callable[[nn.Module], Any] | None = None,
) -> FastPath:
    """Apply plan() to a generator already on `device`; compile failures fall back to eager.

    `warmup(module)` runs one forward pass so a compile error shows here, at load,
    not in the middle of a show.
    """
    has_compiler = compiler is not None or hasattr(torch, "compile")
    chosen = plan(module, device, allow_fp16=allow_fp16, compile=compile, has_compiler=has_compiler)
    synthesis: Any = getattr(module, "synthesis", None)
    if synthesis is not None and hasattr(synthesis, "fast"):
        synthesis.fast = chosen.fp16
    for block in synthesis_blocks(module):
        if block.use_fp16 and hasattr(block, "channels_last"):
            block.channels_last = chosen.channels_last
    if chosen.compile:
        compile_fn = compiler or _torch_compile
        original = synthesis.forward
        try:
            synthesis.forward = compile_fn(original)
            if warmup is not None:
                warmup(module)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: eager still draws
            synthesis.forward = original
            note = f"torch.compile failed ({type(exc).__name__}: {exc}); eager"
            logger.warning(note)
            chosen = replace(chosen, compile=False, notes=(*chosen.notes, note))
    elif warmup is not None:
        warmup(module)
    return chosen


def disable(module: nn.Module) -> None:
    """Back to the exact fp32 eager path."""
    synthesis: Any = getattr(module, "synthesis", None)
    if synthesis is not None and hasattr(synthesis, "fast"):
        synthesis.fast = False
        synthesis.__dict__.pop("forward", None)  # drop a compiled forward


def _torch_compile(fn: Callable[..., Any]) -> Any:
    """torch.compile with CUDA graphs (reduce-overhead): batch 1, same shapes every frame."""
    return torch.compile(fn, mode="reduce-overhead", dynamic=False)
