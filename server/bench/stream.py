"""`ganvj bench stream`: generator-only fps against fps delivered over WebRTC, and
server CPU per second for encode-once against one encoder per viewer.

Everything runs side by side in one invocation on this machine. The server is
a real `ganvj serve` subprocess; the viewers are real aiortc peers in this
process, so their decoding is not charged to the server. WebRTC needs a
non-loopback address (aioice never offers 127.0.0.1), so the benchmark runs
itself inside a private network namespace with a veth pair, as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from models.catalog import default_model_path, load_model
from models.device import cpu_threads
from server.bench.netns import ADDRESS, in_namespace, reexec_in_namespace
from server.bench.outputs import janus_rows, output_rows
from server.bench.peers import connect_viewer
from server.bench.server_process import ServerProcess


def generator_fps(model_path: Path, seconds: float) -> tuple[float, float]:
    """Forward passes per second in a tight loop, batch 1; and ms per pass."""
    model = load_model(model_path, device="cpu")
    torch.set_num_threads(cpu_threads(0))  # as the server's render thread runs it
    z_dim = model.z_dim or 1
    with torch.inference_mode():
        for _ in range(5):
            model.module(torch.randn(1, z_dim))
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            model.module(torch.randn(1, z_dim))
            count += 1
        elapsed = time.perf_counter() - started
    return count / elapsed, 1000.0 * elapsed / count


async def delivered_fps(model: Path, seconds: float) -> dict[str, float]:
    """Render as fast as the model allows; count frames one viewer decodes."""
    server = ServerProcess(model=model, fps=1000.0, shared_encoder=True)
    try:
        viewer = await connect_viewer(f"ws://{ADDRESS}:{server.port}/ws", keep=2, pixels=False)
        try:
            await viewer.wait_frames(10, 30)
            await asyncio.sleep(1.0)
            start_count, started = viewer.count, time.monotonic()
            await asyncio.sleep(seconds)
            count, elapsed = viewer.count - start_count, time.monotonic() - started
            status = server.status()
        finally:
            await viewer.close()
    finally:
        server.close()
    return {"delivered_fps": count / elapsed, "rendered_fps": float(status["rendered_fps"])}


async def cpu_per_second(
    model: Path, viewers: int, shared: bool, seconds: float, fps: float, size: int
) -> dict[str, float]:
    """Server CPU seconds per wall second with `viewers` connected."""
    server = ServerProcess(model=model, fps=fps, shared_encoder=shared, size=size)
    peers = []
    try:
        for _ in range(viewers):
            peers.append(
                await connect_viewer(f"ws://{ADDRESS}:{server.port}/ws", keep=2, pixels=False)
            )
        await asyncio.gather(*(p.wait_frames(5, 60) for p in peers))
        await asyncio.sleep(1.0)
        cpu0, t0 = server.cpu(), time.monotonic()
        counts0 = [p.count for p in peers]
        await asyncio.sleep(seconds)
        cpu1, t1 = server.cpu(), time.monotonic()
        received = [(p.count - c) / (t1 - t0) for p, c in zip(peers, counts0, strict=True)]
    finally:
        for peer in peers:
            await peer.close()
        server.close()
    return {"cpu_per_s": (cpu1 - cpu0) / (t1 - t0), "min_viewer_fps": min(received)}


async def run(
    model: Path,
    seconds: float,
    viewer_counts: Sequence[int],
    fps: float,
    sizes: Sequence[int],
    janus_viewers: Sequence[int] = (),
    janus_size: int = 128,
    outputs: bool = False,
) -> None:
    """Measure and print everything."""
    loaded = load_model(model)
    print(
        f"model {loaded.name}: {loaded.arch}, {loaded.resolution} px native, "
        f"torch threads {cpu_threads(0)}, {os.cpu_count()} cores"
    )
    # Generator alone before and after the streamed run, averaged: the two
    # figures of the ratio come from the same stretch of time.
    before, _ = generator_fps(model, seconds / 2)
    delivered = await delivered_fps(model, seconds)
    after, _ = generator_fps(model, seconds / 2)
    gen_fps = (before + after) / 2
    print(
        f"generator only (forward, batch 1): {gen_fps:8.1f} fps  ({1000 / gen_fps:.1f} ms/pass;"
        f" {before:.1f} before, {after:.1f} after the stream)"
    )
    ratio = delivered["delivered_fps"] / gen_fps
    print(
        f"delivered to one aiortc viewer:   {delivered['delivered_fps']:8.1f} fps  "
        f"(server rendered {delivered['rendered_fps']:.1f} fps)"
    )
    print(f"ratio delivered / generator:      {ratio:8.2f}  (goal >= 0.90)")
    for size in sizes:
        shown = f"{size} px output" if size else "native size"
        print()
        print(
            f"server CPU seconds per second at {fps:g} fps, {shown} "
            "(lower is better; min fps a viewer received):"
        )
        print(f"{'viewers':>8} {'encode once':>14} {'per viewer':>14} {'per-viewer/once':>16}")
        for count in viewer_counts:
            once = await cpu_per_second(model, count, True, seconds, fps, size)
            each = await cpu_per_second(model, count, False, seconds, fps, size)
            print(
                f"{count:>8} {once['cpu_per_s']:>7.2f} ({once['min_viewer_fps']:4.1f}) "
                f"{each['cpu_per_s']:>7.2f} ({each['min_viewer_fps']:4.1f}) "
                f"{each['cpu_per_s'] / once['cpu_per_s']:>16.2f}"
            )
    if janus_viewers or outputs:
        await output_tables(model, seconds, fps, janus_viewers, janus_size, outputs)


async def output_tables(
    model: Path,
    seconds: float,
    fps: float,
    janus_viewers: Sequence[int],
    janus_size: int,
    outputs: bool,
) -> None:
    """The Janus fan-out row and the NDI / recording cost row (server/bench/outputs.py)."""
    if janus_viewers:
        print()
        print(
            f"server CPU seconds per second, {janus_size} px at {fps:g} fps: one viewer direct "
            "against viewers through Janus (should stay flat; min fps a viewer received):"
        )
        for label, cpu, fps_min in await janus_rows(model, janus_viewers, seconds, fps, janus_size):
            print(f"{label:>24} {cpu:>7.2f} ({fps_min:4.1f})")
    if outputs:
        print()
        print(f"cost of each output, server CPU seconds per second at 512 px, {fps:g} fps:")
        rows = await output_rows(model, seconds, fps, 512)
        base = rows[0][1]
        for label, cpu, note in rows:
            extra = "" if label == rows[0][0] else f"  (+{cpu - base:.2f})"
            print(f"{label:>24} {cpu:>7.2f}{extra} {note}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `ganvj bench stream`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ganvj bench stream", description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--fps", type=float, default=30.0, help="render rate for the CPU-per-viewer table"
    )
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[0, 512],
        help="output sizes for the CPU table; 0 = native (512 is what serve streams)",
    )
    parser.add_argument(
        "--janus-viewers",
        type=int,
        nargs="*",
        default=[1, 10, 50],
        help="viewer counts through Janus (none: skip the Janus row)",
    )
    parser.add_argument("--janus-size", type=int, default=128, help="output size for that row")
    parser.add_argument(
        "--no-outputs", action="store_true", help="skip the NDI and recording cost row"
    )
    args = parser.parse_args(argv)
    if not in_namespace():
        return reexec_in_namespace(argv, module="server.bench.stream")
    model = args.model or default_model_path("unconditional")
    asyncio.run(
        run(
            model.resolve(),
            args.seconds,
            args.viewers,
            args.fps,
            args.sizes,
            janus_viewers=args.janus_viewers,
            janus_size=args.janus_size,
            outputs=not args.no_outputs,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
