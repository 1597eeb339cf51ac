"""`ganvj bench survive`: kill -9 the worker under a real Chromium viewer, N times.

Prints the time from each kill to the first frame of the new stream on the
page (p50 and max), the darkest screenshot the page showed meanwhile (it
must never be black: the viewer holds the last frame), and the supervisor's
idle CPU over a few seconds, from /proc. Bounded: `--kills` times at most
`--limit` seconds each.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.bench.netns import ADDRESS, in_namespace, reexec_in_namespace
from server.bench.server_process import ServerProcess, process_cpu_seconds

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
# Counts presented frames and notes the first one of a connection made after arming.
WATCH_JS = """() => {
  const video = document.getElementById('video');
  window.__survive = { armedAt: 0, armedPc: null, firstNew: 0 };
  const tick = () => {
    const s = window.__survive;
    if (s.armedAt && !s.firstNew && window.ganvj.pc && window.ganvj.pc !== s.armedPc)
      s.firstNew = performance.now();
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}"""
ARM_JS = """() => { const s = window.__survive; s.armedAt = performance.now();
  s.armedPc = window.ganvj.pc; s.firstNew = 0; return true; }"""
FIRST_NEW_JS = "() => { const s = window.__survive; return s.firstNew && s.firstNew - s.armedAt; }"
KILL_SPACING_S = 16.0
BLACK_MEAN = 6.0  # 0..255: a screenshot darker than this counts as black


@dataclass
class Outage:
    """One kill as the page saw it."""

    seconds: float  # kill -> first frame of the new stream
    darkest: float  # mean brightness (0..255) of the darkest screenshot meanwhile
    samples: int
    before: float  # mean brightness just before the kill


@dataclass
class Watch:
    """A Chromium page on the viewer, sampled for darkness."""

    page: Any
    outages: list[Outage] = field(default_factory=list)

    async def brightness(self) -> float:
        """The mean brightness of a screenshot of the whole page."""
        from PIL import Image

        shot = await self.page.screenshot(type="jpeg", quality=60)
        image = Image.open(io.BytesIO(shot)).convert("L")
        histogram = image.histogram()
        return sum(i * n for i, n in enumerate(histogram)) / max(1, sum(histogram))

    async def kill_and_watch(
        self,
        worker_pid: int,
        limit_s: float,
        last_word: Callable[[], Awaitable[None]] | None = None,
    ) -> Outage:
        """kill -9 the worker; sample the page every ~100 ms until the new stream plays.

        `last_word`: sent and answered just before the kill (the changes a kill must keep).
        """
        before = await self.brightness()
        await self.page.evaluate(ARM_JS)
        if last_word is not None:
            await last_word()
        os.kill(worker_pid, signal.SIGKILL)
        darkest, samples = 255.0, 0
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            darkest = min(darkest, await self.brightness())
            samples += 1
            first = await self.page.evaluate(FIRST_NEW_JS)
            if first:
                outage = Outage(first / 1000.0, darkest, samples, before)
                self.outages.append(outage)
                return outage
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the viewer did not play again within {limit_s:.0f} s")


async def open_viewer(browser: Any, port: int) -> Watch:
    """The viewer page `/`, playing, with the frame watch installed."""
    page = await browser.new_page(viewport={"width": 320, "height": 320})
    await page.goto(f"http://{ADDRESS}:{port}/")
    await page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " return v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=30_000,
    )
    await page.evaluate(WATCH_JS)
    await asyncio.sleep(1.0)  # a held copy of the picture exists (every 0.5 s)
    return Watch(page)


def worker_pid(server: ServerProcess, old: int | None, limit_s: float) -> int:
    """The playing worker's pid from /api/status (a new one, if `old` is given)."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            pid = int(server.status()["supervisor"]["worker_pid"])  # type: ignore[index]
            if pid != old:
                return pid
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("no worker answered /api/status")
        time.sleep(0.1)


async def measure(kills: int, limit_s: float, idle_s: float) -> dict[str, Any]:
    """Run the kills; the figures."""
    from playwright.async_api import async_playwright

    from models.catalog import default_model_path

    server = ServerProcess(
        model=default_model_path("unconditional"),
        fps=15.0,
        shared_encoder=True,
        size=128,
        supervised=True,
    )
    try:
        supervisor = server.process.pid
        failures = 0
        idle_start = process_cpu_seconds(supervisor)
        await asyncio.sleep(idle_s)
        idle_cpu = (process_cpu_seconds(supervisor) - idle_start) / idle_s
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                watch = await open_viewer(browser, server.port)
                pid = worker_pid(server, None, limit_s)
                for n in range(kills):
                    try:
                        outage = await watch.kill_and_watch(pid, limit_s)
                    except TimeoutError as exc:
                        print(f"kill {n + 1}: {exc}", flush=True)
                        failures += 1
                        pid = worker_pid(server, pid, limit_s)
                        continue
                    print(
                        f"kill {n + 1}: new frame after {outage.seconds:.2f} s; darkest "
                        f"{outage.darkest:.0f}/255 over {outage.samples} screenshots "
                        f"(before: {outage.before:.0f})",
                        flush=True,
                    )
                    pid = worker_pid(server, pid, limit_s)
                    # Kills spaced past the crash-loop rule (3 deaths in 30 s), which
                    # would switch to safe settings; the next standby imports meanwhile.
                    await asyncio.sleep(KILL_SPACING_S - outage.seconds)
            finally:
                await browser.close()
    finally:
        server.close()
    seconds = [o.seconds for o in watch.outages] or [float("inf")]
    return {
        "kills": len(seconds),
        "failures": failures,
        "p50_s": statistics.median(seconds),
        "max_s": max(seconds),
        "darkest": min(o.darkest for o in watch.outages),
        "black": any(o.darkest < BLACK_MEAN for o in watch.outages),
        "supervisor_idle_cpu_percent": round(100 * idle_cpu, 3),
    }


def main(argv: Sequence[str]) -> int:
    """Entry point of `ganvj bench survive`."""
    parser = argparse.ArgumentParser(prog="ganvj bench survive", description=__doc__)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--limit", type=float, default=30.0, help="seconds a restart may take")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of supervisor CPU")
    args = parser.parse_args(argv)
    if not in_namespace():
        return reexec_in_namespace(argv, __name__)
    result = asyncio.run(measure(args.kills, args.limit, args.idle))
    print(
        f"kill -9 -> first new frame on Chromium: p50 {result['p50_s']:.2f} s, "
        f"max {result['max_s']:.2f} s over {result['kills']} kills "
        f"({result['failures']} more past --limit); darkest screenshot "
        f"{result['darkest']:.0f}/255 ({'BLACK' if result['black'] else 'never black'}); "
        f"supervisor idle CPU {result['supervisor_idle_cpu_percent']}%"
    )
    return 1 if result["black"] or result["failures"] else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
