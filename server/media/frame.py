"""`Frame`: one rendered picture, as the render thread hands it to every encoder.

It lives below the engine and the outputs, so a stream or an NDI sender can
name it without importing the engine and its generators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Frame:
    """One rendered picture, ready for every encoder."""

    index: int
    yuv: np.ndarray  # (H * 3 // 2, W) uint8, planar yuv420p
    width: int
    height: int
    rendered_at: float  # time.monotonic() when the frame was finished
    render_ms: float  # generator + conversion time
    applied_at: float | None  # arrival time of the newest command this frame shows
    latent: torch.Tensor | None = None  # (dim,) on the CPU: the position it shows (z or W)
    input_at: float | None = None  # arrival of the incoming frame it reacts to
