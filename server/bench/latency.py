"""`ganvj bench latency`: an OSC cut to the first frame a browser presents showing it,
and an audio onset to the command it fires, p50 and p95 in one run.

Video: a real `ganvj serve` subprocess, Debian's headless Chromium on the
project's own viewer page, a python-osc sender. Every presented frame is
stamped by `requestVideoFrameCallback` (`performance.timeOrigin +
presentationTime`, the same wall clock as this process's `time.time()` on one
host) and reduced to an 8x8 signature; a trial sends `/keyframe/N/jump 0`
between two keyframes that look different and finds the first frame after the
send that is nearer the target's signature than the previous one's. Variants
(the browser's own jitter buffer target, 60 fps) run side by side in the same
invocation, so a comparison is always measured both ways at once.

Audio: a generated kick pattern fed in real time, block by block, to the same
feature worker a sound card feeds, with a `/mod/trigger audio/onset` route on
an engine rendering in this process; from the moment the block holding the
kick is handed over to the end of the frame that applied the command.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.catalog import default_model_path
from server.bench.netns import ADDRESS, in_namespace, reexec_in_namespace
from server.bench.server_process import ServerProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]

# Every presented frame: its wall time (ms) and an 8x8 RGB signature.
RECORDER_JS = """() => {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  canvas.width = 8; canvas.height = 8;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  window.ganvjFrames = [];
  const tick = (now, meta) => {
    ctx.drawImage(video, 0, 0, 8, 8);
    const data = ctx.getImageData(0, 0, 8, 8).data;
    const sig = [];
    for (let i = 0; i < data.length; i += 4) sig.push(data[i], data[i + 1], data[i + 2]);
    window.ganvjFrames.push([performance.timeOrigin + meta.presentationTime, sig]);
    if (window.ganvjFrames.length > 2000) window.ganvjFrames.splice(0, 1000);
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}"""

# The "before" of the jitter buffer comparison: the page's jitterBufferTarget = 0 is ignored.
BROWSER_DEFAULT_BUFFER_JS = """
Object.defineProperty(RTCRtpReceiver.prototype, 'jitterBufferTarget', {
  configurable: true, get() { return null; }, set(value) {} });
"""


@dataclass(frozen=True)
class Variant:
    """One configuration to measure."""

    name: str
    fps: float = 30.0
    browser_buffer: bool = False  # leave the jitter buffer to the browser
    playout_delay: bool = True  # send RTP playout-delay min = max = 0


@dataclass
class Result:
    """Latencies of one variant, in milliseconds."""

    variant: Variant
    latencies: list[float] = field(default_factory=list)
    missed: int = 0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def distance(a: Sequence[int], b: Sequence[int]) -> float:
    """Mean absolute difference of two signatures."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


async def measure_video(model: Path, variant: Variant, trials: int, size: int) -> Result:
    """Cuts between keyframes 1 and 2 over OSC; the first presented frame showing each."""
    from playwright.async_api import async_playwright
    from pythonosc.udp_client import SimpleUDPClient

    osc_port = free_port()
    server = ServerProcess(
        model=model,
        fps=variant.fps,
        shared_encoder=True,
        size=size,
        tables={
            "osc": {"enabled": True, "host": ADDRESS, "port": osc_port},
            "stream": {"zero_playout_delay": variant.playout_delay},
        },
    )
    result = Result(variant)
    try:
        osc = SimpleUDPClient(ADDRESS, osc_port)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                if variant.browser_buffer:
                    await page.add_init_script(BROWSER_DEFAULT_BUFFER_JS)
                await page.goto(f"http://{ADDRESS}:{server.port}/")
                await page.wait_for_function(
                    "() => { const v = document.getElementById('video');"
                    " return v.readyState >= 2 && v.videoWidth > 0; }",
                    timeout=30_000,
                )
                await page.evaluate(RECORDER_JS)
                osc.send_message("/latent/wander", 0)
                refs = {}
                for n in (1, 2, 1, 2):  # twice: the second visit is settled
                    osc.send_message(f"/keyframe/{n}/jump", 0.0)
                    await asyncio.sleep(0.8)
                    frames = await page.evaluate("() => window.ganvjFrames.slice(-3)")
                    refs[n] = frames[-1][1]
                if distance(refs[1], refs[2]) < 8:
                    raise RuntimeError("keyframes 1 and 2 look alike: no cut to measure")
                current = 2
                for _ in range(trials):
                    target = 1 if current == 2 else 2
                    await asyncio.sleep(0.15)
                    sent = time.time() * 1000.0
                    osc.send_message(f"/keyframe/{target}/jump", 0.0)
                    await asyncio.sleep(0.35)
                    frames = await page.evaluate(
                        f"() => window.ganvjFrames.filter((f) => f[0] > {sent})"
                    )
                    shown = next(
                        (
                            at
                            for at, sig in frames
                            if distance(sig, refs[target]) < distance(sig, refs[current])
                        ),
                        None,
                    )
                    if shown is None:
                        result.missed += 1
                    else:
                        result.latencies.append(shown - sent)
                    current = target
            finally:
                await browser.close()
    finally:
        server.close()
    return result


def measure_audio(onsets: int, block: int = 256, rate: int = 48000) -> list[float]:
    """Generated kicks fed in real time -> trigger fired -> frame that applied it (ms)."""
    import numpy as np
    import torch

    from controllers.audio import AudioProcessor, engine_sink
    from models.catalog import load_model
    from server.commands import Change, parse
    from server.config import RenderConfig
    from server.engine import Engine, EngineHooks

    model = load_model(default_model_path("unconditional"), device="cpu")
    applied: list[float] = []
    lock = threading.Lock()

    def changes(batch: list[Change]) -> None:
        if any(c.address == "/keyframe/current" for c in batch):
            with lock:
                applied.append(time.monotonic())

    engine = Engine(
        model=model,
        config=RenderConfig(size=128, fps=30),
        device=torch.device("cpu"),
        hooks=EngineHooks(on_changes=changes),
    )
    engine.submit(
        [
            parse("/latent/wander", [0]),
            parse("/keyframe/morph", [0.0]),
            parse("/mod/trigger", ["audio/onset", "/keyframe/next"]),
        ]
    )
    processor = AudioProcessor(
        sample_rate=rate,
        on_features=engine_sink(
            update=engine.sources.update, fire=engine.patch.fire, submit=engine.submit
        ),
    )
    # A kick every 0.5 s over faint noise, fed one block per block time.
    rng = np.random.default_rng(1)
    period = int(0.5 * rate)
    t = np.arange(int(0.2 * rate)) / rate
    hit = (0.8 * np.sin(2 * np.pi * (45 + 75 * np.exp(-t * 30)) * t) * np.exp(-t * 12)).astype(
        np.float32
    )
    fed: list[float] = []
    engine.start()
    processor.start()
    try:
        time.sleep(0.5)  # the engine settles on its first frames
        position = 0
        started = time.monotonic()
        total = (onsets + 1) * period
        while position < total:
            block_samples = (rng.standard_normal(block) * 0.002).astype(np.float32)
            offset = position % period
            if position >= period and offset < len(hit):
                end = min(offset + block, len(hit))
                block_samples[: end - offset] += hit[offset:end]
            due = started + position / rate
            time.sleep(max(0.0, due - time.monotonic()))
            if position >= period and offset < block:
                fed.append(time.monotonic())  # the block holding a kick's first sample
            processor.feed(block_samples)
            position += block
        time.sleep(0.5)
    finally:
        processor.stop()
        engine.stop()
    out = []
    with lock:
        done = list(applied)
    for at in fed:
        after = [a for a in done if a >= at]
        if after:
            out.append((min(after) - at) * 1000.0)
    return out


def encode_ms(size: int, frames: int, bitrate_kbps: int) -> tuple[float, float]:
    """VP8 as the shared encoder runs it, on the default model's frames: ms/frame, kbit/s."""
    import av
    import torch

    from models.catalog import load_model
    from server.config import RenderConfig
    from server.engine import Engine
    from server.media.stream import open_codec

    model = load_model(default_model_path("unconditional"), device="cpu")
    engine = Engine(model=model, config=RenderConfig(size=size), device=torch.device("cpu"))
    pictures = [engine.render_once().yuv for _ in range(frames)]  # a drifting picture
    codec = open_codec("vp8", width=size, height=size, bitrate=bitrate_kbps * 1000, fps=30.0)
    spent = 0.0
    sent = 0
    for i, yuv in enumerate(pictures):
        video = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        video.pts = i * 3000
        started = time.perf_counter()
        packets = codec.encode(video)
        spent += time.perf_counter() - started
        sent += sum(packet.size for packet in packets)
    return 1000.0 * spent / frames, sent * 8 / 1000.0 / (frames / 30.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `ganvj bench latency`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ganvj bench latency", description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=20, help="cuts per variant and round")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="variants take turns this many times, so a change in machine load hits all alike",
    )
    parser.add_argument("--size", type=int, default=512, help="output size (serve's default)")
    parser.add_argument("--onsets", type=int, default=20, help="kicks for the audio figure")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["shipped", "no-playout-delay", "browser-buffer", "fps60"],
        choices=["shipped", "no-playout-delay", "browser-buffer", "fps60"],
    )
    args = parser.parse_args(argv)
    if not in_namespace():
        return reexec_in_namespace(argv, module="server.bench.latency", limit_s=1200)
    model = (args.model or default_model_path("unconditional")).resolve()
    catalogue = {
        "shipped": Variant("as shipped: 30 fps, playout-delay 0, jitter 0"),
        "no-playout-delay": Variant("30 fps, no playout-delay extension", playout_delay=False),
        "browser-buffer": Variant(
            "30 fps, no playout-delay, browser's jitter buf",
            playout_delay=False,
            browser_buffer=True,
        ),
        "fps60": Variant("60 fps, playout-delay 0, jitter 0", fps=60.0),
    }
    print(f"OSC cut -> first presented frame in headless Chromium, {args.size} px, {model.name}")
    print(f"{'variant':<44} {'p50 ms':>7} {'p95 ms':>7} {'n':>4} {'missed':>6}")
    pooled = {key: Result(catalogue[key]) for key in args.variants}
    for _ in range(max(1, args.rounds)):
        for key in args.variants:
            one = asyncio.run(measure_video(model, catalogue[key], args.trials, args.size))
            pooled[key].latencies += one.latencies
            pooled[key].missed += one.missed
    results = list(pooled.values())
    for result in results:
        lat = result.latencies
        p50 = percentile(lat, 50) if lat else float("nan")
        p95 = percentile(lat, 95) if lat else float("nan")
        print(f"{result.variant.name:<44} {p50:7.1f} {p95:7.1f} {len(lat):4d} {result.missed:6d}")
    base = results[0].latencies
    for result in results[1:]:
        if base and result.latencies:
            ratio = percentile(result.latencies, 95) / percentile(base, 95)
            print(f"p95 {result.variant.name} / {results[0].variant.name}: {ratio:.2f}")
    # The control page's preview: the shared stream (bandwidth only) or a second,
    # low-resolution encoder (CPU on the render machine, every frame, always).
    shared_ms, shared_kbps = encode_ms(args.size, 150, 6000)
    small_ms, small_kbps = encode_ms(128, 150, 500)
    print()
    print(
        f"preview as the shared stream: no extra encode, {shared_kbps:.0f} kbit/s to the tablet "
        f"(the viewers' {args.size} px stream; its encode is {shared_ms:.2f} ms/frame, paid once)"
    )
    print(
        f"preview as a second 128 px stream: +{small_ms:.2f} ms of encoding per frame "
        f"({small_ms * 30 / 10:.1f}% of a core at 30 fps), {small_kbps:.0f} kbit/s"
    )
    audio = measure_audio(args.onsets)
    print()
    print(
        "audio onset (block handed over) -> trigger applied in a frame: "
        f"p50 {statistics.median(audio):.1f} ms, p95 {percentile(audio, 95):.1f} ms, "
        f"n {len(audio)} (add one audio block, 5.3 ms at 256/48 kHz, for the card's own buffer)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
