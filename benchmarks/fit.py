"""What `fit` (the letterbox) costs per frame: bars on the uint8 planes against bars in floats.

    python benchmarks/fit.py [--sizes 1920x1080 3840x1080] [--runs 30] [--picture 128] [--decks]

A `--picture` px square picture (the shipped default paints 128) framed and
converted to one yuv420p frame, single-threaded, the two ways side by side in
one run (alternating blocks): the frame path a deck alone takes
(models.canvas.frame_yuv: the picture scaled by libswscale into its box, the
bars filled on the planes) against the float path (models.canvas.place's bars
at the canvas size, then models.pixels.to_yuv420), which every fit frame took
before and a fit deck mixed with a deck in another box still takes. `--decks`:
two generator decks in one box at crossfade 0.5 (mixed at their own size now,
each padded to the canvas before). Medians in ms; the ratio is float / planes.
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
from models.mixing import mix
from models.pixels import to_yuv420

BLOCK = 5


def on_planes(picture: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The frame path now: the picture into its box by libswscale, bars on the planes."""
    return frame_yuv(picture, width, height, "fit")


def in_floats(picture: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The float path: bars drawn into the picture at the canvas size, then converted."""
    return to_yuv420(place(picture, width, height, "fit"), (width, height))


def mixed_on_planes(picture: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Two decks in one box at crossfade 0.5, now: mixed as they are, bars on the planes."""
    return frame_yuv(mix(picture, picture.flip(-1), 0.5), width, height, "fit")


def mixed_in_floats(picture: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The same mix with each deck's bars in floats at the canvas size (before)."""
    a, b = (place(p, width, height, "fit") for p in (picture, picture.flip(-1)))
    return to_yuv420(mix(a, b, 0.5), (width, height))


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x1080"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--picture", type=int, default=128)
    parser.add_argument("--decks", action="store_true", help="two decks mixed at 0.5")
    args = parser.parse_args()
    torch.set_num_threads(1)
    picture = torch.rand(1, 3, args.picture, args.picture) * 2 - 1
    what = "two decks' pictures mixed at 0.5" if args.decks else "a picture"
    print(f"{what}, {args.picture} px, fit; one thread; medians of {args.runs} (ms)")
    print(f"{'canvas':<10} {'planes (now)':>13} {'floats (before)':>16} {'ratio':>7}")
    with torch.inference_mode():
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            ways = {"planes": on_planes, "floats": in_floats}
            if args.decks:
                ways = {"planes": mixed_on_planes, "floats": mixed_in_floats}
            times: dict[str, list[float]] = {name: [] for name in ways}
            # Side by side in blocks of BLOCK, alternating; the first call of each block
            # is not timed: it pays for the other way's freed memory (page faults).
            for _ in range(max(1, args.runs // BLOCK)):
                for name, way in ways.items():
                    way(picture, width, height)
                    for _ in range(BLOCK):
                        started = time.perf_counter()
                        way(picture, width, height)
                        times[name].append(1000 * (time.perf_counter() - started))
            planes, floats = (statistics.median(times[n]) for n in ("planes", "floats"))
            print(f"{size:<10} {planes:>13.2f} {floats:>16.2f} {floats / planes:>6.1f}x")


if __name__ == "__main__":
    main()
