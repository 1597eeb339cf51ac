"""The picture sizes ganvj makes datasets at and trains at: one range, read by every check.

`dataset --size`, `train --resolution`, the nets' configs and their help texts
all take the range from here. (An imported StyleGAN keeps the size it was
trained at: models/nets/stylegan2.py reads those within its own wider bounds.)
"""

from __future__ import annotations

MIN_RESOLUTION = 8  # the smallest DCGAN / pix2pix / encoder stack: one 4x4 stage after the first
MAX_RESOLUTION = 1024  # the largest the default nets' configs and datasets are sized for
RESOLUTIONS = f"a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}"


def check_resolution(resolution: int) -> None:
    """Raise ValueError unless resolution is a power of two in [MIN_RESOLUTION, MAX_RESOLUTION]."""
    ok = isinstance(resolution, int) and not isinstance(resolution, bool)
    low, high = MIN_RESOLUTION, MAX_RESOLUTION
    if not ok or resolution < low or resolution > high or resolution & (resolution - 1):
        raise ValueError(f"resolution must be {RESOLUTIONS}, got {resolution!r}")
