"""`ganvj bench react`: camera frame to output frame, and reaction fps.

A real aiortc camera sends a moving pattern to the real server over WebRTC.
For each incoming frame, the latency runs from its arrival at the server to
the first output frame made from it leaving the encoder (p50, p95). The
reaction fps, rendered as fast as the models allow, stands beside the forward
limit of the models a reaction runs (pix2pix; encoder + generator for
mirror), measured in the same run. Like `bench stream`, it runs itself in a
private network namespace, since WebRTC will not use 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from websockets.asyncio.client import connect

from models.catalog import default_model_path, load_model
from models.checkpoint import LoadedModel
from models.device import cpu_threads
from server.bench.control import percentile
from server.bench.netns import ADDRESS, in_namespace, reexec_in_namespace
from server.bench.peers import PatternTrack, connect_camera
from server.config import Config
from server.lifecycle import running
from server.media.stream import EncodedFrame

COLOURS = [(230, 30, 30), (20, 40, 220), (30, 200, 60), (240, 220, 40)]


def forward_fps(
    modules: Sequence[torch.nn.Module], inputs: Sequence[torch.Tensor], seconds: float
) -> float:
    """Passes per second through `modules` in turn (each fed its own input)."""
    with torch.inference_mode():
        for module, x in zip(modules, inputs, strict=True):
            module(x)
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for module, x in zip(modules, inputs, strict=True):
                module(x)
            count += 1
    return count / (time.perf_counter() - started)


async def measure(
    mode: str,
    generator: LoadedModel,
    pix2pix: LoadedModel,
    encoder: LoadedModel | None,
    seconds: float,
    size: int,
) -> tuple[list[float], float]:
    """(latencies in ms, reaction fps) for one mode, rendering as fast as possible."""
    config = Config().with_overrides(
        {
            "server.host": ADDRESS,
            "server.trusted": [ADDRESS],  # its own camera peer plays the performer
            "server.port": 0,
            "server.state_dir": "/tmp/ganvj-bench-react",
            "render.fps": 1000.0,
            "render.size": size,
            "render.react_fade_s": 0.0,
            "osc.enabled": False,
        }
    )
    latencies: list[float] = []
    seen: set[float] = set()

    def observe(encoded: EncodedFrame) -> None:
        arrived = encoded.frame.input_at
        if arrived is not None and arrived not in seen:
            seen.add(arrived)
            latencies.append((encoded.encoded_at - arrived) * 1000.0)

    async with running(config, model=generator, pix2pix=pix2pix, encoder=encoder) as run:
        assert run.app.hub is not None
        url = f"ws://{ADDRESS}:{run.port}/ws"
        track = PatternTrack(width=640, height=480)
        camera = await connect_camera(url, track)
        try:
            async with connect(url) as ws:
                deadline = time.monotonic() + 20
                while run.engine.inputs.source != "camera" or run.engine.inputs.rate.rate() < 5:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no camera frames reached the server")
                    await asyncio.sleep(0.1)
                for address, args in (("/react/mode", [mode]), ("/react/trigger", [])):
                    await ws.send(json.dumps({"address": address, "args": args}))
                await asyncio.sleep(1.0)
                run.app.hub.listeners.append(observe)
                first = run.engine.frames.latest()[0]
                started = time.monotonic()
                for step in range(int(seconds * 4)):
                    track.colour = COLOURS[step % len(COLOURS)]
                    await asyncio.sleep(0.25)
                rendered = (run.engine.frames.latest()[0] - first) / (time.monotonic() - started)
                if not run.engine.reaction.active:
                    raise RuntimeError(f"the reaction stopped: {run.engine.reaction.reason}")
        finally:
            await camera.close()
    return latencies, rendered


def report(name: str, latencies: list[float], rendered: float, limit: float) -> None:
    """Print one mode's figures."""
    print(f"{name}:")
    print(
        f"  camera frame -> output frame leaving the encoder: "
        f"p50 {percentile(latencies, 50):6.1f} ms   p95 {percentile(latencies, 95):6.1f} ms"
        f"   ({len(latencies)} frames, median {statistics.median(latencies):.1f} ms)"
    )
    print(
        f"  reaction fps {rendered:6.1f}   forward limit {limit:6.1f} fps   "
        f"ratio {rendered / limit:4.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `ganvj bench react`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ganvj bench react", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--size", type=int, default=0, help="output size; 0 = native")
    args = parser.parse_args(argv)
    if not in_namespace():
        return reexec_in_namespace(argv, module="server.bench.react")
    torch.set_num_threads(cpu_threads(0))
    generator = load_model(default_model_path("unconditional"))
    pix2pix = load_model(default_model_path("image2image"))
    encoder_path = default_model_path("encoder")
    encoder = load_model(encoder_path) if Path(encoder_path).is_file() else None

    r = pix2pix.resolution
    p2p_limit = forward_fps([pix2pix.module], [torch.rand(1, 3, r, r) * 2 - 1], args.seconds)
    latencies, rendered = asyncio.run(
        measure("pix2pix", generator, pix2pix, encoder, args.seconds, args.size)
    )
    print(
        f"pix2pix {pix2pix.name} ({r} px), generator {generator.name}, "
        f"{cpu_threads(0)} torch thread(s)"
    )
    report("pix2pix reaction", latencies, rendered, p2p_limit)
    if encoder is None:
        print("mirror: no shipped encoder for this generator; skipped")
        return 0
    e = encoder.resolution
    mirror_limit = forward_fps(
        [encoder.module, generator.module],
        [torch.rand(1, 3, e, e) * 2 - 1, torch.randn(1, generator.z_dim or 1)],
        args.seconds,
    )
    latencies, rendered = asyncio.run(
        measure("mirror", generator, pix2pix, encoder, args.seconds, args.size)
    )
    report("mirror reaction (encoder + generator)", latencies, rendered, mirror_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
