"""`ganvj bench control`: control-to-frame latency.

From an OSC packet's arrival at the server to the first frame rendered with
the change leaving the encoder, for the default model, p50 and p95, against
the goal of one frame period plus one forward pass. The sender is a real
python-osc client in another process; the server is the real one, in this
process, so both ends of the measurement read the same monotonic clock.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from models.catalog import default_model_path, load_model
from models.device import cpu_threads
from server.config import Config
from server.lifecycle import running
from server.media.stream import EncodedFrame

SENDER = """
import random, sys, time
from pythonosc.udp_client import SimpleUDPClient
client = SimpleUDPClient("127.0.0.1", int(sys.argv[1]))
rng = random.Random(5)
for i in range(int(sys.argv[2])):
    time.sleep(rng.uniform(0.12, 0.25))  # off the frame grid, as a performer is
    client.send_message(f"/keyframe/{i % 16 + 1}/jump", 0.0)
"""


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def forward_ms(model_path: Path, runs: int = 50) -> float:
    """Median generator forward pass, batch 1, as the server runs it."""
    model = load_model(model_path)
    torch.set_num_threads(cpu_threads(0))
    z_dim = model.z_dim or 1
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model.module(torch.randn(1, z_dim))
        for _ in range(runs):
            started = time.perf_counter()
            model.module(torch.randn(1, z_dim))
            times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


async def measure(model_path: Path, fps: float, size: int, samples: int) -> list[float]:
    """Latencies in ms for `samples` OSC jumps."""
    config = Config().with_overrides(
        {
            "server.host": "127.0.0.1",
            "server.port": 0,
            "render.fps": fps,
            "render.size": size,
            "render.model": str(model_path),
            "osc.host": "127.0.0.1",
            "osc.port": 0,
            "server.state_dir": "/tmp/ganvj-bench-control",
        }
    )
    latencies: list[float] = []
    seen: set[float] = set()

    def observe(encoded: EncodedFrame) -> None:
        arrived = encoded.frame.applied_at
        if arrived is not None and arrived not in seen:
            seen.add(arrived)  # the first frame that shows this command
            latencies.append((encoded.encoded_at - arrived) * 1000.0)

    async with running(config) as run:
        assert run.app.hub is not None and run.osc is not None
        run.app.hub.listeners.append(observe)
        await asyncio.sleep(1.0)
        sender = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SENDER, str(run.osc.address[1]), str(samples)
        )
        await sender.wait()
        await asyncio.sleep(0.5)
    return latencies


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `ganvj bench control`."""
    parser = argparse.ArgumentParser(prog="ganvj bench control", description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=512, help="output size, as served")
    args = parser.parse_args(argv)
    model = (args.model or default_model_path("unconditional")).resolve()
    forward = forward_ms(model)
    latencies = asyncio.run(measure(model, args.fps, args.size, args.samples))
    period = 1000.0 / args.fps
    goal = period + forward
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(
        f"model {model.stem}, {args.fps:g} fps, {args.size} px output, {len(latencies)} OSC jumps"
    )
    print(f"forward pass (median):          {forward:6.1f} ms")
    print(f"control-to-frame p50:           {p50:6.1f} ms")
    print(f"control-to-frame p95:           {p95:6.1f} ms")
    print(
        f"goal p95 <= frame period + forward = {period:.1f} + {forward:.1f} = {goal:.1f} ms: "
        f"{'met' if p95 <= goal else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
