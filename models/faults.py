"""Fault hooks: make the GPU path fail on purpose, so its fallbacks are tested anywhere.

A testing tool, off unless asked for. `GANVJ_FAULTS` (read once, when the
engine is built) names the faults, comma separated:

    fastpath-nan           the fast path's verification frames come out NaN
    fastpath-drift         ... come out 0.1 off the fp32 frames (beyond fp16 rounding)
    compile-raise          torch.compile raises
    compile-hang           the compiled forward's first call never returns (until released)
    oom-on-load            the memory check before a model load finds no free memory
    device-error-after:N   the forward after N frames raises a device error, once

Each fault is injected at the exact point a real one would strike (the
verification frames, the compile call, the memory check, the forward), so
the same hooks run unchanged on a GPU. Any fault that touches the fast path
(device-error-after included, so there is a fast path to fall back from) also
makes the fast path planned and verified on a CPU, where it would otherwise
be off (`Faults.verify_anywhere`); there the fp16-flagged blocks still
compute in fp32, so only the checks and fallbacks are under test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

ENV = "GANVJ_FAULTS"
NAMES = (
    "fastpath-nan",
    "fastpath-drift",
    "compile-raise",
    "compile-hang",
    "oom-on-load",
    "device-error-after",
)
DRIFT = 0.1  # fastpath-drift: 5x the verification tolerance, as a broken kernel might be
HANG_LIMIT_S = 3600.0  # a hung compile thread wakes by itself after this, at the latest


class FaultError(ValueError):
    """A GANVJ_FAULTS value that names no fault, or a bad count."""


class InjectedDeviceError(RuntimeError):
    """The device error `device-error-after:N` raises (worded as CUDA words its own)."""


class InjectedCompileError(RuntimeError):
    """The compile failure `compile-raise` raises."""


@dataclass
class Faults:
    """The faults asked for; methods inject them at their points (any thread)."""

    fastpath_nan: bool = False
    fastpath_drift: bool = False
    compile_raise: bool = False
    compile_hang: bool = False
    oom_on_load: bool = False
    device_error_after: int | None = None
    _forwards: int = 0
    _fired: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Faults from "name,name,device-error-after:N"; FaultError names a bad entry."""
        faults = cls()
        for raw in spec.split(","):
            entry = raw.strip()
            if not entry:
                continue
            name, _, arg = entry.partition(":")
            if name not in NAMES:
                raise FaultError(f"{ENV}: unknown fault {name!r}; known: {', '.join(NAMES)}")
            if name == "device-error-after":
                try:
                    faults.device_error_after = int(arg)
                except ValueError:
                    raise FaultError(
                        f"{ENV}: device-error-after needs a frame count, e.g. "
                        f"device-error-after:30, got {entry!r}"
                    ) from None
                if faults.device_error_after < 0:
                    raise FaultError(f"{ENV}: device-error-after:N needs N >= 0, got {entry!r}")
            elif arg:
                raise FaultError(f"{ENV}: {name} takes no argument, got {entry!r}")
            else:
                setattr(faults, name.replace("-", "_"), True)
        return faults

    @classmethod
    def from_env(cls) -> Faults:
        """The faults GANVJ_FAULTS asks for (none when it is unset)."""
        return cls.parse(os.environ.get(ENV, ""))

    @property
    def any(self) -> bool:
        """True when any fault is armed."""
        return bool(self.names())

    def names(self) -> list[str]:
        """The armed faults, as GANVJ_FAULTS spells them."""
        out = [n for n in NAMES[:-1] if getattr(self, n.replace("-", "_"))]
        if self.device_error_after is not None:
            out.append(f"device-error-after:{self.device_error_after}")
        return out

    @property
    def verify_anywhere(self) -> bool:
        """A fault on the fast path asks for it, verified, on any device (CPU included)."""
        return (
            self.fastpath_nan
            or self.fastpath_drift
            or self.compile_raise
            or self.compile_hang
            or self.device_error_after is not None
        )

    # -- the injection points -------------------------------------------------

    def fast_output(self, image: torch.Tensor) -> torch.Tensor:
        """A verification frame of the fast path, spoiled as asked."""
        if self.fastpath_nan:
            return torch.full_like(image, float("nan"))
        if self.fastpath_drift:
            return image + DRIFT
        return image

    def compiler(self, compile_fn: Callable[..., Any]) -> Callable[..., Any]:
        """The compile call, raising or returning a forward that hangs, as asked."""
        if self.compile_raise:

            def raising(fn: Callable[..., Any]) -> Any:
                raise InjectedCompileError("injected by GANVJ_FAULTS=compile-raise")

            return raising
        if self.compile_hang:
            released = self._released

            def hanging(fn: Callable[..., Any]) -> Any:
                def forward(*args: Any, **kwargs: Any) -> Any:
                    released.wait(HANG_LIMIT_S)  # as a compile that never finishes
                    return fn(*args, **kwargs)

                return forward

            return hanging
        return compile_fn

    def free_memory(self, free: int) -> int:
        """The free bytes the memory check sees: none under oom-on-load."""
        return 0 if self.oom_on_load else free

    def before_forward(self) -> None:
        """Count a generator forward; raise the device error once, after N of them."""
        if self.device_error_after is None:
            return
        with self._lock:
            self._forwards += 1
            if self._fired or self._forwards <= self.device_error_after:
                return
            self._fired = True
        raise InjectedDeviceError(
            "CUDA error: an illegal memory access was encountered "
            f"(injected by {ENV}=device-error-after:{self.device_error_after})"
        )

    def release(self) -> None:
        """Let a hung compile's forward return (a test's cleanup)."""
        self._released.set()
