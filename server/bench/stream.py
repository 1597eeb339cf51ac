"""`ganvj bench stream`: generator-only fps against fps delivered over WebRTC, and
server CPU per second for encode-once against one encoder per viewer.

With canvas sizes (`--sizes 1920x1080 3840x1080`): for each, every stage of
one frame on one thread (generator, fill, RGB->YUV, the scaling by libswscale
and by torch's bicubic with their PSNR, the copy, each encode; wall and CPU
ms), the generator painting that canvas (`native`) against the frames a
viewer gets, the encoder's ms/frame for every encoder and thread count this
machine has, and the server's CPU with one viewer against four for each
codec (`--codecs`), with the encodes counted (four viewers of the one stream
must cost no more encodes than one) and the CPU per frame of the render
thread, the encoder and the event loop.

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
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from websockets.asyncio.client import connect

from models.canvas import effective_fill, frame_yuv, place
from models.catalog import default_model_path, load_model
from models.device import cpu_threads
from models.pixels import resize, scale_planes_swscale, scale_planes_torch, to_yuv
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
            frame_yuv(image, width, height, fill)
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
            frames.append(frame_yuv(image, width, height, fill).numpy())
    return frames


def stage_times(
    model_path: Path, size: tuple[int, int], frames: int = 30
) -> tuple[dict[str, tuple[float, float]], float]:
    """Median (wall ms, CPU ms) of each stage of one frame at `size`, and the scaling's PSNR.

    Single-threaded (one torch thread, one call at a time), each stage timed on
    the same frame before the next frame starts, so every stage sees the same
    load. CPU time is the process's (an encoder's own threads included); on a
    shared machine it is the steadier figure. PSNR: the CPU frame (libswscale)
    against the same frame scaled by torch's bicubic (the GPU path, and every
    path before), in dB, median over the frames.
    """
    import av

    from server.media.stream import encoder_threads as auto_threads
    from server.media.stream import open_codec

    model = load_model(model_path, device="cpu")
    torch.set_num_threads(1)
    width, height = size
    fill = effective_fill("native", model.module)
    kwargs = {"aspect": width / height} if fill == "native" and width != height else {}
    z_dim = model.z_dim or 1
    a, b = torch.randn(1, z_dim), torch.randn(1, z_dim)
    encoders = {
        f"encode {CODEC_LABELS[codec]} x{threads}": open_codec(
            codec, width=width, height=height, bitrate=6_000_000, fps=30.0, threads=threads
        )
        for codec in ("vp8", "h264")
        for threads in sorted({1, auto_threads(0, width, height, codec=codec)})
    }
    times: dict[str, list[tuple[float, float]]] = {}
    psnrs: list[float] = []

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        took = (1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu))
        times.setdefault(name, []).append(took)

    with torch.inference_mode():
        for i in range(frames + 2):  # the first two warm up (allocations, encoder start)
            if i == 2:
                times.clear()
                psnrs.clear()
            z = torch.lerp(a, b, i / (frames + 2))
            with stage("generator forward"):
                image = model.module(z, **kwargs).float()
            r = model.resolution  # the engine's compose size, then the fill
            with stage("fill"):
                composed = resize(image, (r, round(r * image.shape[-1] / image.shape[-2])))
                framed = place(composed, width, height, fill)
            with stage("RGB->YUV at the model's size"):
                yuv = to_yuv(framed)
            with stage("scale: libswscale (now)"):
                fast = scale_planes_swscale(yuv, width, height)
            with stage("scale: torch bicubic (before)"):
                slow = scale_planes_torch(yuv, width, height)
            psnrs.append(psnr(fast.numpy(), slow.numpy()))
            planes = fast.numpy()
            for name, context in encoders.items():
                with stage("copy into av.VideoFrame"):
                    video = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                video.pts = i * 3000
                with stage(name):
                    context.encode(video)
    medians = {
        stage: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for stage, got in times.items()
    }
    return medians, statistics.median(psnrs)


CODEC_LABELS = {"vp8": "libvpx", "h264": "libx264"}
RENDER_STAGES = ("generator forward", "fill", "RGB->YUV at the model's size")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 pictures, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * math.log10(255.0**2 / mse) if mse else math.inf


def stage_lines(model_path: Path, size: tuple[int, int], frames: int = 30) -> list[str]:
    """The stage table: each stage's median ms, then what the two threads need per frame."""
    medians, db = stage_times(model_path, size, frames)
    lines = [f"{'stage (one thread)':>34} {'wall ms':>8} {'CPU ms':>7}"]
    lines += [f"{stage:>34} {wall:>8.2f} {cpu:>7.2f}" for stage, (wall, cpu) in medians.items()]
    lines.append(f"libswscale's frame against torch's bicubic: {db:.1f} dB PSNR (median)")

    def cpu(*stages: str) -> float:
        return sum(medians[stage][1] for stage in stages)

    render = {
        "now": cpu(*RENDER_STAGES, "scale: libswscale (now)"),
        "before": cpu(*RENDER_STAGES, "scale: torch bicubic (before)"),
    }
    lines.append(
        f"render thread, CPU ms per frame: {render['now']:.1f} now, "
        f"{render['before']:.1f} before (generator + fill + RGB->YUV + scale)"
    )
    for stage in (s for s in medians if s.startswith("encode ")):
        encode = cpu("copy into av.VideoFrame", stage)
        ceiling = 1000.0 / max(render["now"], encode)
        lines.append(
            f"encoder thread, {stage[7:]}: {encode:.1f} CPU ms per frame; with the render "
            f"thread on one core and the encoder on the other: at most {ceiling:.0f} fps "
            f"(before: {1000.0 / max(render['before'], encode):.0f})"
        )
    return lines


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread of a process: its name (comm) and user + system CPU seconds, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return threads


def thread_shares(
    pid: int, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds between two `thread_cpu` readings, by role.

    The main thread runs the event loop (network, packetizing); threads named
    ganvj-encode are the encoder's (FFmpeg's own threads inherit the name of
    the thread that opens the codec); the busiest other thread is the render
    thread (Python 3.11 names no thread in the OS, and the engine's is not
    named); the rest is `other`.
    """
    spent = {
        tid: seconds - before.get(tid, (name, 0.0))[1] for tid, (name, seconds) in after.items()
    }
    shares = {"event loop": spent.pop(pid, 0.0), "encoder": 0.0, "render": 0.0, "other": 0.0}
    for tid in [t for t in spent if after[t][0].startswith("ganvj-encode")]:
        shares["encoder"] += spent.pop(tid)
    if spent:
        busiest = max(spent, key=lambda t: spent[t])
        shares["render"] = spent.pop(busiest)
    shares["other"] = sum(spent.values())
    return shares


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
    model: Path,
    size: tuple[int, int],
    seconds: float,
    fps: float,
    viewer_counts: Sequence[int],
    codecs: Sequence[str] = ("vp8", "h264"),
) -> None:
    """One canvas size: the stages, generator vs delivered, the encoders, CPU with 1 viewer
    against 4, for each codec."""
    label = f"{size[0]}x{size[1]}"
    print()
    print(f"== canvas {label} (native fill) ==")
    print(f"each stage of one frame ({label}, 30 frames of a wander), median:")
    for line in stage_lines(model, size):
        print(line)
    gen = canvas_generator_fps(model, size, seconds / 2)
    print(f"generator painting the canvas + conversion: {gen:7.1f} fps")
    print(f"{'encoder':>12} {'threads':>8} {'ms/frame':>10}   ({label}, 60 frames of a wander)")
    for line in encoder_rows(model, size):
        print(line)
    print(
        f"server at {fps:g} fps, encode once (stream.encoder auto): CPU seconds per second, "
        "frames rendered / encoded / received per second, encodes counted; the render "
        "thread's frame_ms (wall); CPU ms per encoded frame by thread; load average (1 min)"
    )
    print(
        f"{'codec':>5} {'viewers':>7} {'cpu/s':>6} {'rendered':>9} {'encoded':>8} "
        f"{'received':>9} {'encodes':>8} {'encoder':>16} {'ms/frame':>9} {'frame_ms':>9} "
        f"{'render':>7} {'encoder':>8} {'loop':>6} {'other':>6} {'load':>5}"
    )
    for codec in codecs:
        for count in viewer_counts:
            row = await canvas_cpu(model, count, seconds, fps, label, codec)
            shares = row["shares"]
            assert isinstance(shares, dict)
            print(
                f"{codec:>5} {count:>7} {row['cpu']:>6.2f} {row['rendered']:>9.1f} "
                f"{row['encoded']:>8.1f} {row['received']:>9.1f} {row['encodes']:>8d} "
                f"{row['encoder']:>16} {row['encode_ms']:>9.2f} {row['frame_ms']:>9.2f} "
                + " ".join(
                    f"{shares[k]:>{w}.1f}"
                    for k, w in (("render", 7), ("encoder", 8), ("event loop", 6), ("other", 6))
                )
                + f" {row['load']:>5.1f}"
            )


async def canvas_cpu(
    model: Path, viewers: int, seconds: float, fps: float, size: str, codec: str = "vp8"
) -> dict[str, object]:
    """Server CPU and the encoder's counts over `seconds` with `viewers` on one stream."""
    server = ServerProcess(
        model=model, fps=fps, shared_encoder=True, size=size, tables={"stream": {"codec": codec}}
    )
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
        threads0 = thread_cpu(server.process.pid)
        counts0 = [p.count for p in peers]
        await asyncio.sleep(seconds)
        cpu1, t1 = server.cpu(), time.monotonic()
        threads1 = thread_cpu(server.process.pid)
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
        "frame_ms": float(after.get("frame_ms") or 0.0),
        # CPU ms per encoded frame, by thread.
        "shares": {
            role: 1000.0 * spent / max(1.0, float(after["encodes"]) - float(before["encodes"]))
            for role, spent in thread_shares(server.process.pid, threads0, threads1).items()
        },
        "load": os.getloadavg()[0],
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
    codecs: Sequence[str] = ("vp8", "h264"),
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
        await canvas_table(model, size, seconds, fps, counts, codecs)


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
        "--codecs",
        nargs="+",
        choices=("vp8", "h264"),
        default=["vp8", "h264"],
        help="stream.codec of the canvas tables' server rows",
    )
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
        asyncio.run(
            canvas_run(model.resolve(), sizes, args.seconds, args.fps, args.viewers, args.codecs)
        )
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
