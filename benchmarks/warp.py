"""What an NDI output's warp costs: building its lookups (a drag on /map) and warping a frame.

    python benchmarks/warp.py [--size 1920x1080] [--runs 5]

The left half of a canvas as one output, pinned by its four corners and by an
8 x 8 mesh with one point moved: the lookup build for the Y and the U/V planes
(server/outputs/warp.py plane_map, rebuilt whenever the mapping changes) and
one frame's warp from them, as the NDI sender's thread runs them. Medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.media.frame import Frame
from server.outputs.mapping import OutputMapping, check_mesh, mesh_grid
from server.outputs.warp import Warper

PIN = ((0.1, 0.05), (0.92, 0.12), (0.85, 0.9), (0.05, 0.97))


def mappings() -> dict[str, OutputMapping]:
    """The outputs measured."""
    mesh = [list(row) for row in mesh_grid(8, 8)]
    mesh[3][4] = (0.55, 0.45)
    rect, blend = (0.0, 0.0, 0.5, 1.0), (0.0, 0.2, 0.0, 0.0)
    return {
        "corner-pin": OutputMapping(name="o", rect=rect, corners=PIN, blend=blend),
        "8x8 mesh": OutputMapping(name="o", rect=rect, mesh=check_mesh(mesh), blend=blend),
    }


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    yuv = rng.integers(16, 235, (height * 3 // 2, width), dtype=np.uint8)
    frame = Frame(
        index=1,
        yuv=yuv,
        width=width,
        height=height,
        rendered_at=0.0,
        render_ms=0.0,
        applied_at=None,
    )
    print(f"canvas {width}x{height}, output = its left half; medians of {args.runs}")
    print(f"{'mapping':<12} {'lookup build':>14} {'warp a frame':>14}")
    for name, mapping in mappings().items():
        builds, warps = [], []
        for _ in range(args.runs):
            warper = Warper()
            start = time.perf_counter()
            warper.warp(frame, mapping)  # the first frame builds the lookups
            built = time.perf_counter()
            warper.warp(frame, mapping)
            builds.append(built - start)
            warps.append(time.perf_counter() - built)
        build = statistics.median(builds) - statistics.median(warps)
        print(f"{name:<12} {build * 1000:>11.0f} ms {statistics.median(warps) * 1000:>11.1f} ms")


if __name__ == "__main__":
    main()
