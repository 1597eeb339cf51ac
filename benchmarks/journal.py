"""The write-ahead journal's cost: µs per command and per frame batch (write + flush).

    python benchmarks/journal.py [--frames 3000]

A frame here applies a batch of 4 fader moves (a TouchOSC page moving), as
the render thread journals it: JSON line, write, flush to the kernel.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.commands import parse
from server.journal import Journal, Recovery


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--per-frame", type=int, default=4, help="commands per frame")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log = Journal(Path(folder) / "journal.jsonl")
        log.begin(Recovery(), [])
        batches = [
            [
                [
                    parse(f"/latent/dir/{k % 8 + 1}", [((i + k) % 100) / 100])
                    for k in range(args.per_frame)
                ]
            ]
            for i in range(args.frames)
        ]
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            log.append(i, float(i), batch, dict)
        elapsed = time.perf_counter() - start
        log.close()
        print(
            f"journal: {elapsed / args.frames * 1e6:.1f} µs per frame batch of {args.per_frame} "
            f"commands, {elapsed / (args.frames * args.per_frame) * 1e6:.1f} µs per command "
            f"({args.frames} frames, {log.rotations} folds at {log.max_bytes // 1024} KiB)"
        )


if __name__ == "__main__":
    main()
