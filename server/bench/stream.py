"""`ganvj bench stream`: generator-only fps against fps delivered over WebRTC, and
server CPU per second for encode-once against one encoder per viewer.

With canvas sizes (`--sizes 1920x1080 3840x1080`): for each, the generator
painting that canvas (`native`) against the frames a viewer gets, the
encoder's ms/frame for every encoder and thread count this machine has, and
the server's CPU with one viewer against four, with the encodes counted (four
viewers of the one stream must cost no more encodes than one).

Everything runs side by side in one invocation on this machine. The server is
a real `ganvj serve` subprocess; the viewers are real aiortc peers in this
process, so their decoding is not charged to the server. WebRTC needs a
non-loopback address (aioice never offers 127.0.0.1), so the benchmark runs
itself inside a private network namespace with a veth pair, as the tests do.
A second delivered row plays two decks (the same model on deck b, crossfader
in the middle), sent as the admin over the websocket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from websockets.asyncio.client import connect

from models.canvas import effective_fill, place
from models.catalog import default_model_path, load_model
from models.device import cpu_threads
from models.pixels import to_yuv420
from server.bench.netns import ADDRESS, in_namespace, reexec_in_namespace
from server.bench.outputs import janus_rows, output_rows
from server.bench.peers import connect_viewer
from server.bench.server_process import ServerProcess
from server.config import parse_size


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


async def two_decks(server: ServerProcess, model: Path) -> None:
    """Load `model` on deck b too and set the crossfader in the middle (as the admin)."""
    url = f"ws://{ADDRESS}:{server.port}/ws?t={server.admin_token}"
    async with connect(url) as ws:
        for address, args in (("/deck/b/model/load", [str(model)]), ("/mix/crossfade", [0.5])):
            await ws.send(json.dumps({"address": address, "args": args}))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            if message.get("address") == "/deck/b/model/load":
                return
            if message.get("address") == "/error":
                raise RuntimeError(f"deck b did not load: {message.get('args')}")
        raise RuntimeError("deck b did not load within 60 s")


async def delivered_fps(model: Path, seconds: float, decks: int = 1) -> dict[str, float]:
    """Render as fast as the model allows; count frames one viewer decodes."""
    server = ServerProcess(model=model, fps=1000.0, shared_encoder=True)
    try:
        viewer = await connect_viewer(f"ws://{ADDRESS}:{server.port}/ws", keep=2, pixels=False)
        try:
            if decks == 2:
                await two_decks(server, model)
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


def canvas_generator_fps(model_path: Path, size: tuple[int, int], seconds: float) -> float:
    """Frames per second of the generator painting the canvas and converting it (no encode)."""
    model = load_model(model_path, device="cpu")
    torch.set_num_threads(cpu_threads(0))
    width, height = size
    fill = effective_fill("native", model.module)
    kwargs = {"aspect": width / height} if fill == "native" and width != height else {}
    z_dim = model.z_dim or 1
    count, started = 0, time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - started < seconds or count < 3:
            image = model.module(torch.randn(1, z_dim), **kwargs)
            to_yuv420(place(image, width, height, fill), size)
            count += 1
    return count / (time.perf_counter() - started)


def canvas_frames(model_path: Path, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """`count` successive frames of a wander, as yuv420p arrays at the canvas size."""
    model = load_model(model_path, device="cpu")
    width, height = size
    fill = effective_fill("native", model.module)
    kwargs = {"aspect": width / height} if fill == "native" and width != height else {}
    z_dim = model.z_dim or 1
    a, b = torch.randn(1, z_dim), torch.randn(1, z_dim)
    frames: list[np.ndarray] = []
    with torch.inference_mode():
        for i in range(count):
            z = torch.lerp(a, b, i / count)
            image = model.module(z, **kwargs)
            frames.append(to_yuv420(place(image, width, height, fill), size).numpy())
    return frames


def encoder_rows(model_path: Path, size: tuple[int, int], frames: int = 60) -> list[str]:
    """ms/frame of each encoder this PyAV has (and opens), at 1, 2, .. cores threads."""
    import av

    from server.media.stream import CODEC_NAMES, HARDWARE, open_codec

    width, height = size
    pictures = canvas_frames(model_path, size, frames)
    rows = []
    names = [(codec, name) for codec, name in CODEC_NAMES.items()]
    names += [(codec, name) for codec, name in HARDWARE.items() if name in av.codecs_available]
    cores = os.cpu_count() or 1
    for codec, name in names:
        for threads in sorted({1, 2, cores}) if not name.endswith("_nvenc") else [1]:
            try:
                context = open_codec(
                    codec,
                    width=width,
                    height=height,
                    bitrate=6_000_000,
                    fps=30.0,
                    name=name,
                    threads=threads,
                )
            except Exception as exc:  # noqa: BLE001 - a listed encoder that cannot open here
                rows.append(f"{name:>12} {'-':>8} does not open here: {str(exc)[:60]}")
                break
            took = 0.0
            for i, yuv in enumerate(pictures):
                video = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                video.pts = i * 3000
                started = time.perf_counter()
                context.encode(video)
                took += time.perf_counter() - started
            rows.append(f"{name:>12} {threads:>8} {1000 * took / len(pictures):>10.2f}")
    return rows


async def canvas_table(
    model: Path, size: tuple[int, int], seconds: float, fps: float, viewer_counts: Sequence[int]
) -> None:
    """One canvas size: generator vs delivered, the encoders, CPU with 1 viewer against 4."""
    label = f"{size[0]}x{size[1]}"
    gen = canvas_generator_fps(model, size, seconds / 2)
    print()
    print(f"== canvas {label} (native fill) ==")
    print(f"generator painting the canvas + conversion: {gen:7.1f} fps")
    print(f"{'encoder':>12} {'threads':>8} {'ms/frame':>10}   ({label}, 60 frames of a wander)")
    for line in encoder_rows(model, size):
        print(line)
    print(
        f"server at {fps:g} fps, encode once (stream.encoder auto): CPU seconds per second, "
        "frames rendered / encoded / received per second, encodes counted"
    )
    print(
        f"{'viewers':>8} {'cpu/s':>6} {'rendered':>9} {'encoded':>8} {'received':>9} "
        f"{'encodes':>8} {'encoder':>16} {'ms/frame':>9}"
    )
    for count in viewer_counts:
        row = await canvas_cpu(model, count, seconds, fps, label)
        print(
            f"{count:>8} {row['cpu']:>6.2f} {row['rendered']:>9.1f} {row['encoded']:>8.1f} "
            f"{row['received']:>9.1f} {row['encodes']:>8d} {row['encoder']:>16} "
            f"{row['encode_ms']:>9.2f}"
        )


async def canvas_cpu(
    model: Path, viewers: int, seconds: float, fps: float, size: str
) -> dict[str, object]:
    """Server CPU and the encoder's counts over `seconds` with `viewers` on one stream."""
    server = ServerProcess(model=model, fps=fps, shared_encoder=True, size=size)
    peers = []
    try:
        for _ in range(viewers):
            peers.append(
                await connect_viewer(f"ws://{ADDRESS}:{server.port}/ws", keep=2, pixels=False)
            )
        await asyncio.gather(*(p.wait_frames(3, 120) for p in peers))
        await asyncio.sleep(1.0)
        before = server.status()
        cpu0, t0 = server.cpu(), time.monotonic()
        counts0 = [p.count for p in peers]
        await asyncio.sleep(seconds)
        cpu1, t1 = server.cpu(), time.monotonic()
        after = server.status()
        received = [(p.count - c) / (t1 - t0) for p, c in zip(peers, counts0, strict=True)]
    finally:
        for peer in peers:
            await peer.close()
        server.close()
    elapsed = t1 - t0
    threads = after.get("encoder_threads")
    return {
        "cpu": (cpu1 - cpu0) / elapsed,
        "rendered": (float(after["frames"]) - float(before["frames"])) / elapsed,
        "encoded": (float(after["encodes"]) - float(before["encodes"])) / elapsed,
        "received": min(received),
        "encodes": int(float(after["encodes"]) - float(before["encodes"])),
        "encoder": f"{after.get('encoder')} x{threads}",
        "encode_ms": float(after.get("encode_ms") or 0.0),
    }


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
    two = await delivered_fps(model, seconds, decks=2)
    print(
        f"two decks (crossfade 0.5):        {two['delivered_fps']:8.1f} fps  "
        f"(server rendered {two['rendered_fps']:.1f} fps; "
        f"{two['rendered_fps'] / delivered['rendered_fps']:.2f}x one deck's)"
    )
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


async def canvas_run(
    model: Path,
    sizes: Sequence[tuple[int, int]],
    seconds: float,
    fps: float,
    viewer_counts: Sequence[int],
) -> None:
    """The canvas tables, one per size (`--sizes WxH ...`)."""
    loaded = load_model(model)
    print(
        f"model {loaded.name}: {loaded.arch}, {loaded.resolution} px native, "
        f"torch threads {cpu_threads(0)}, {os.cpu_count()} cores"
    )
    counts = [c for c in viewer_counts if c in (1, 4)] or [1, 4]
    for size in sizes:
        if size == (0, 0):
            size = (loaded.resolution, loaded.resolution)
        await canvas_table(model, size, seconds, fps, counts)


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
        nargs="+",
        default=["0", "512"],
        help="output sizes for the CPU table; 0 = native (512 is what serve streams); "
        "canvases given as WxH (1920x1080 3840x1080) get the canvas tables instead",
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
    try:
        sizes = [parse_size(text) for text in args.sizes]
    except ValueError as exc:
        parser.error(f"--sizes: {exc}")
    if any("x" in text.lower() for text in args.sizes):
        asyncio.run(canvas_run(model.resolve(), sizes, args.seconds, args.fps, args.viewers))
        return 0
    asyncio.run(
        run(
            model.resolve(),
            args.seconds,
            args.viewers,
            args.fps,
            [width for width, _ in sizes],
            janus_viewers=args.janus_viewers,
            janus_size=args.janus_size,
            outputs=not args.no_outputs,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
