"""What the mixer costs per frame: each blend mode mid-crossfade, and a deck's fader.

.venv/bin/python benchmarks/mixer.py [--size 512] [--runs 300]

models.mixing side by side with the textbook form of the same formulas (one
tensor operation per step of the formula on light, as the first mixer did),
interleaved run by run so a busy machine slows both alike; one CPU thread, as
the render thread has on a two-core machine. Prints the median and the best ms
per frame, and checks that both give the same picture.
"""

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import Tensor

from models.mixing import CURVES, MODES, Workspace, dim, mix, weights

GOAL_MS = 1.0


def textbook_blend(a: Tensor, b: Tensor, mode: str) -> Tensor:
    """The formulas on light, one operation at a time (the reference)."""
    if mode == "normal":
        return b
    u, v = (a + 1.0) * 0.5, (b + 1.0) * 0.5
    out = {
        "add": lambda: (u + v).clamp(max=1.0),
        "screen": lambda: 1.0 - (1.0 - u) * (1.0 - v),
        "multiply": lambda: u * v,
        "difference": lambda: (u - v).abs(),
        "lighten": lambda: torch.maximum(u, v),
        "darken": lambda: torch.minimum(u, v),
        "lumakey": lambda: _lumakey(u, v),
    }[mode]()
    return out * 2.0 - 1.0


def _lumakey(u: Tensor, v: Tensor) -> Tensor:
    luma = (v[:, :1] * 0.299 + v[:, 1:2] * 0.587 + v[:, 2:3] * 0.114).clamp(0.0, 1.0)
    return u * (1.0 - luma) + v * luma


def textbook_mix(a: Tensor, b: Tensor, x: float, curve: str, mode: str) -> Tensor:
    wa, wb = weights(x, curve)
    return a * wa + textbook_blend(a, b, mode) * wb


def textbook_dim(image: Tensor, level: float) -> Tensor:
    return (image.clamp(-1.0, 1.0) + 1.0) * level - 1.0


def side_by_side(old: Callable[[], Tensor], new: Callable[[], Tensor], runs: int) -> list[float]:
    """[old median, old best, new median, new best] in ms, the two interleaved."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(3):
        old(), new()
    for _ in range(runs):
        for fn, kept in ((old, times[0]), (new, times[1])):
            t = time.perf_counter()
            fn()
            kept.append(1000 * (time.perf_counter() - t))
    result = []
    for kept in times:
        kept.sort()
        result += [kept[len(kept) // 2], kept[0]]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    size, runs = options.size, options.runs
    a = torch.rand(1, 3, size, size) * 2 - 1
    b = torch.rand(1, 3, size, size) * 2 - 1
    work, faded = Workspace(), torch.empty_like(a)  # as the engine keeps them
    print(f"{size} px, {torch.get_num_threads()} thread(s), {options.runs} runs, ms per frame")
    print(f"{'':24} {'textbook':>17} {'models.mixing':>17}")
    print(f"{'':24} {'median':>8} {'best':>8} {'median':>8} {'best':>8}  goal < {GOAL_MS:g} ms")
    with torch.inference_mode():
        for mode in MODES:
            for curve in CURVES[:2]:
                old = partial(textbook_mix, a, b, 0.4, curve, mode)
                new = partial(mix, a, b, 0.4, curve, mode, work)
                torch.testing.assert_close(new(), old(), atol=1e-5, rtol=0)
                figures = side_by_side(old, new, runs)
                _print(f"mix {mode} {curve}", figures)
        figures = side_by_side(partial(textbook_dim, a, 0.5), partial(dim, a, 0.5, faded), runs)
        _print("deck fader 0.5", figures)
        figures = side_by_side(lambda: a, partial(mix, a, b, 0.0, work=work), runs)
        _print("crossfade 0 (b idle)", figures)
    return 0


def _print(label: str, figures: list[float]) -> None:
    cells = " ".join(f"{f:8.3f}" for f in figures)
    ok = "ok" if figures[2] < GOAL_MS else "over"
    print(f"{label:24} {cells}  {ok}")


if __name__ == "__main__":
    sys.exit(main())
