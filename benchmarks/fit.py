"""What `fit` (the letterbox) costs per frame: bars on the uint8 planes against bars in floats.

    python benchmarks/fit.py [--sizes 1920x1080 3840x1080] [--runs 30] [--picture 128]

A `--picture` px square picture (the shipped default paints 128) framed and
converted to one yuv420p frame, single-threaded, the two ways interleaved in
one run: the frame path a deck alone takes (models.canvas.frame_yuv: the
picture scaled by libswscale into its box, the bars filled on the planes)
against the float path (models.canvas.place's bars at the canvas size, then
models.pixels.to_yuv420), which every fit frame took before and a fit deck
mixed with the other still takes. Medians in ms; the ratio is float / planes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.canvas import frame_yuv, place
from models.pixels import to_yuv420


def on_planes(picture: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The frame path now: the picture into its box by libswscale, bars on the planes."""
    return frame_yuv(picture, width, height, "fit")


def in_floats(picture: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The float path: bars drawn into the picture at the canvas size, then converted."""
    return to_yuv420(place(picture, width, height, "fit"), (width, height))


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x1080"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--picture", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    picture = torch.rand(1, 3, args.picture, args.picture) * 2 - 1
    print(f"a {args.picture} px picture, fit; one thread; medians of {args.runs} (ms)")
    print(f"{'canvas':<10} {'planes (now)':>13} {'floats (before)':>16} {'ratio':>7}")
    with torch.inference_mode():
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            ways = {"planes": on_planes, "floats": in_floats}
            times: dict[str, list[float]] = {name: [] for name in ways}
            for run in range(args.runs + 2):
                for name, way in ways.items():
                    started = time.perf_counter()
                    way(picture, width, height)
                    if run >= 2:  # the first two warm up
                        times[name].append(1000 * (time.perf_counter() - started))
            planes, floats = (statistics.median(times[n]) for n in ("planes", "floats"))
            print(f"{size:<10} {planes:>13.2f} {floats:>16.2f} {floats / planes:>6.1f}x")


if __name__ == "__main__":
    main()
