"""The performer-facing latent state: where in latent space the picture is.

Pure and clock-driven: the render thread calls `latent()` once per frame with
the frame's time. No threads, no I/O, so it is tested with a simulated clock.
"""

from __future__ import annotations

from torch import Tensor

from models.latent import Wander


class PlayState:
    """Latent position of the live picture (drift only, for now)."""

    def __init__(self, *, z_dim: int, seed: int = 0, wander_speed: float = 1.0) -> None:
        self.z_dim = z_dim
        self.wander_speed = wander_speed
        self._wander = Wander(z_dim=z_dim, seed=seed)
        self._wander_clock = 0.0

    def latent(self, now: float, dt: float) -> Tensor:
        """The latent for the frame at `now`, `dt` seconds after the previous one."""
        del now  # keyframe morphs will need it; drift only needs dt
        self._wander_clock += dt * self.wander_speed
        return self._wander.at(self._wander_clock)  # (z_dim,)
