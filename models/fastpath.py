"""The CUDA fast path of a StyleGAN generator, chosen once at load.

On CUDA: the blocks the file flags as fp16 (`num_fp16_res`) compute in half
precision, as NVIDIA's training and visualizer ran them; those blocks keep
their activations channels-last, which tensor cores prefer; optionally the
synthesis network is compiled with torch.compile ("reduce-overhead" captures
CUDA graphs), with a fallback to eager when compiling fails. Nothing changes
the pictures beyond fp16 rounding. On any other device the exact fp32 path
runs unchanged.

`plan()` is the decision alone (pure, tested on the CPU); `enable()` applies it;
`prove()` applies it and then checks it: a few frames on the fast path against
the same frames in fp32, falling back to fp32 on NaN, Inf or a difference
beyond fp16 rounding (`agreement()`), and to eager when compiling fails or
runs past a deadline. Fault hooks (models.faults) make each failure happen
on purpose, on any device.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn

from models.faults import Faults

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
    verified: bool = False  # prove() compared its frames with fp32 and kept it

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
    force: bool = False,
) -> FastPath:
    """The fast path for this generator on this device; an exact fp32 path off CUDA.

    `force` plans as on CUDA anywhere (the fault hooks' test of the checks; off
    CUDA the flagged blocks still compute in fp32, see HALF_DEVICE_TYPES).
    """
    if device.type != "cuda" and not force:
        return FastPath(notes=(f"{device.type}: the exact fp32 path (the fast path is CUDA's)",))
    notes: list[str] = [] if device.type == "cuda" else [f"{device.type}: planned as on CUDA"]
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
    deadline_s: float | None = None,
    force: bool = False,
) -> FastPath:
    """Apply plan() to a generator already on `device`; compile failures fall back to eager.

    `warmup(module)` runs one forward pass so a compile error shows here, at load,
    not in the middle of a show. With `deadline_s`, a compile (its warm-up) that
    has not finished by then is abandoned for eager: a stalled compiler must not
    hold a model switch for ever.
    """
    has_compiler = compiler is not None or hasattr(torch, "compile")
    chosen = plan(
        module,
        device,
        allow_fp16=allow_fp16,
        compile=compile,
        has_compiler=has_compiler,
        force=force,
    )
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
                _within(deadline_s, lambda: warmup(module))
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


class CompileTimeout(TimeoutError):
    """A compile (its warm-up forward) ran past its deadline."""


def _within(deadline_s: float | None, work: Callable[[], Any]) -> None:
    """Run `work` here, or on a helper thread for at most `deadline_s` seconds.

    A thread that overruns is left behind (a daemon: Python cannot stop it); its
    result is never used. Inference mode is per thread, so it is entered again.
    """
    if deadline_s is None:
        work()
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="ganvj-compile", daemon=True)
    thread.start()
    thread.join(deadline_s)
    if thread.is_alive():
        raise CompileTimeout(f"did not finish within {deadline_s:g} s")
    if failure:
        raise failure[0]


# How far a fast-path frame may be from the fp32 frame, on pictures in [-1, 1].
# fp16 keeps 11 significant bits (unit roundoff 2**-11, about 5e-4); over the
# ~20 layers of a StyleGAN the rounding compounds to a mean difference near
# 0.005 (measured on the CPU with the fp16 arithmetic, tests/unit/models/
# test_fastpath.py) and a few saturated pixels further off. Allowed: 4x that
# mean (0.02, 2.5 levels of 255) and 0.1 (13 levels) at the 99th percentile.
# A broken kernel or layout is off by tenths over the whole frame.
MEAN_TOLERANCE = 0.02
P99_TOLERANCE = 0.1
VERIFY_FRAMES = 3  # distinct latents: one lucky frame proves little


def agreement(exact: list[torch.Tensor], fast: list[torch.Tensor]) -> str | None:
    """None when the fast frames match the exact ones within fp16 rounding, else why not."""
    for i, (a, b) in enumerate(zip(exact, fast, strict=True)):
        b = b.float()
        if not bool(torch.isfinite(b).all()):
            bad = int((~torch.isfinite(b)).sum())
            return f"frame {i + 1} has {bad} NaN/Inf values on the fast path"
        diff = (a.float() - b).abs().flatten()
        mean = float(diff.mean())
        p99 = float(torch.quantile(diff[:: max(1, diff.numel() // 1_000_000)], 0.99))
        if mean > MEAN_TOLERANCE or p99 > P99_TOLERANCE:
            return (
                f"frame {i + 1} differs from fp32 by {mean:.4f} on average, {p99:.4f} at the "
                f"99th percentile (fp16 rounding allows {MEAN_TOLERANCE}, {P99_TOLERANCE})"
            )
    return None


def prove(
    module: nn.Module,
    device: torch.device,
    *,
    frame: Callable[[int], torch.Tensor],
    allow_fp16: bool = True,
    compile: bool = False,
    compile_deadline_s: float | None = None,
    faults: Faults | None = None,
    compiler: Compiler | None = None,
    frames: int = VERIFY_FRAMES,
) -> FastPath:
    """Enable the fast path, then keep it only if its frames match fp32's.

    `frame(i)` renders verification frame i (1, C, R, R) with the module as it
    is now. Off CUDA and MPS nothing is verified unless a fault hook asks
    (`Faults.verify_anywhere`): there the fast path is the exact path.
    """
    faults = faults or Faults()
    force = faults.verify_anywhere
    if device.type not in ("cuda", "mps") and not force:
        return plan(module, device, allow_fp16=allow_fp16, compile=compile)
    compile = compile or faults.compile_raise or faults.compile_hang
    disable(module)
    with torch.inference_mode():
        exact = [frame(i).float().clone() for i in range(frames)]
    if not all(bool(torch.isfinite(x).all()) for x in exact):
        note = "fp32 frames are not finite either: nothing to verify against; fp32"
        logger.warning(note)
        return FastPath(notes=(note,))
    chosen = enable(
        module,
        device,
        allow_fp16=allow_fp16,
        compile=compile,
        compiler=faults.compiler(compiler or _torch_compile),
        warmup=lambda m: frame(0),
        deadline_s=compile_deadline_s,
        force=force,
    )
    if chosen.describe() == "fp32" and not force:
        return replace(chosen, verified=True)
    with torch.inference_mode():
        fast = [faults.fast_output(frame(i).float().clone()) for i in range(frames)]
    why = agreement(exact, fast)
    if why is None:
        return replace(chosen, verified=True)
    disable(module)
    note = f"fast path {chosen.describe()} rejected: {why}; fp32"
    logger.warning(note)
    return FastPath(fp16_blocks=chosen.fp16_blocks, notes=(*chosen.notes, note))
