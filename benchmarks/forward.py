"""Forward fps of each shipped default model, batch 1, against the 25 fps goal.

.venv/bin/python benchmarks/forward.py [--threads 2] [--seconds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.checkpoint import DEFAULT_FILES, default_model_path, load_model

GOAL_FPS = 25.0


def measure(path: Path, *, seconds: float) -> tuple[float, float]:
    """(frames per second, median milliseconds) of one model's batch-1 forward pass."""
    model = load_model(path)
    if model.kind == "unconditional" and model.z_dim is not None:
        x = torch.randn(1, model.z_dim)  # (1, z_dim)
    else:
        x = torch.rand(1, 3, model.resolution, model.resolution) * 2 - 1  # (1, 3, R, R)
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(5):
            model.module(x)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            model.module(x)
            times.append(time.perf_counter() - t)
    times.sort()
    return len(times) / sum(times), 1000 * times[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 1, goal {GOAL_FPS:.0f} fps")
    print(f"{'model':34} {'size':>5} {'MB':>5} {'fps':>7} {'median ms':>10}  goal")
    for kind in DEFAULT_FILES:
        path = default_model_path(kind)
        if not path.exists():
            print(f"{path.name:34} missing")
            continue
        fps, median = measure(path, seconds=args.seconds)
        res = load_model(path).resolution
        ok = "ok" if fps >= GOAL_FPS else "SLOW"
        print(
            f"{path.name:34} {res:>5} {path.stat().st_size / 1e6:>5.1f} "
            f"{fps:>7.1f} {median:>10.2f}  {ok}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
