"""The viewer page in a real Chromium: the stream plays and the picture moves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from models.catalog import default_model_path, load_model
from server.lifecycle import running
from tests.conftest import server_config

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Draw the current video frame to a canvas and summarise its pixels.
SAMPLE_JS = """() => {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0; const pixels = [];
  for (let i = 0; i < data.length; i += 4) { sum += data[i] + data[i+1] + data[i+2]; }
  for (let i = 0; i < data.length; i += 4 * 97) pixels.push(data[i], data[i+1], data[i+2]);
  return { mean: sum / (data.length / 4 * 3), pixels, width: canvas.width };
}"""

FRAMES_DECODED_JS = """async () => {
  const pc = window.ganvj && window.ganvj.pc;
  if (!pc) return 0;
  let decoded = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = s.framesDecoded;
  });
  return decoded;
}"""


async def frames_decoded(page: Page) -> int:
    return int(await page.evaluate(FRAMES_DECODED_JS))


async def test_viewer_plays_and_the_picture_moves(browser: Browser, webrtc_host: str) -> None:
    # The shipped default model: this is what a VJ sees after the two README commands.
    model = load_model(default_model_path("unconditional"))
    config = server_config(webrtc_host, size=256)
    async with running(config, model=model) as run:
        page = await browser.new_page(viewport={"width": 640, "height": 640})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"http://{webrtc_host}:{run.port}/")
        await page.wait_for_function(
            "() => { const v = document.getElementById('video');"
            " return v.readyState >= 2 && v.videoWidth > 0 && !v.paused; }",
            timeout=20_000,
        )

        first = await frames_decoded(page)
        await asyncio.sleep(1.5)
        second = await frames_decoded(page)
        assert second > first + 10, (first, second)

        a = await page.evaluate(SAMPLE_JS)
        await asyncio.sleep(1.5)
        b = await page.evaluate(SAMPLE_JS)
        assert a["width"] == 256
        assert a["mean"] > 10 and b["mean"] > 10  # not black
        changed = sum(abs(x - y) for x, y in zip(a["pixels"], b["pixels"], strict=True))
        assert changed / len(a["pixels"]) > 0.5  # the drift moves the picture

        # The receiver plays out with no added jitter buffer.
        target = await page.evaluate("() => window.ganvj.pc.getReceivers()[0].jitterBufferTarget")
        assert target == 0

        # The status overlay toggles with a key and reads the server's numbers.
        await page.keyboard.press("s")
        await page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('fps rendered')",
            timeout=5_000,
        )
        await page.keyboard.press("s")
        assert await page.is_hidden("#status")

        # The hint fades out by itself after a few seconds: the picture alone.
        await page.wait_for_selector("#hint.gone", state="attached", timeout=10_000)
        await asyncio.sleep(1.2)
        # The README's screenshot: refreshed when asked (GANVJ_SCREENSHOTS=1) or
        # missing, so an ordinary test run leaves the work tree clean.
        shot = await page.screenshot()
        assert len(shot) > 10_000  # a real picture, not an empty page
        target = DOCS / "viewer.png"
        if os.environ.get("GANVJ_SCREENSHOTS") == "1" or not target.exists():
            DOCS.mkdir(exist_ok=True)
            target.write_bytes(shot)
        assert run.app.status()["viewers"] == 1
        assert errors == []


async def test_viewer_reconnects_after_a_server_restart(browser: Browser, webrtc_host: str) -> None:
    config = server_config(webrtc_host)
    from tests.conftest import tiny_model

    async with running(config, model=tiny_model()) as run:
        port = run.port
        page = await browser.new_page()
        await page.goto(f"http://{webrtc_host}:{port}/")
        await page.wait_for_function("() => window.ganvj && window.ganvj.connected", timeout=20_000)
    # The server is gone; start it again on the same port.
    restarted = config.with_overrides({"server.port": port})
    async with running(restarted, model=tiny_model(seed=1)) as run:
        await page.wait_for_function(
            "() => window.ganvj.connected && window.ganvj.retries == 0", timeout=20_000
        )
        deadline = asyncio.get_running_loop().time() + 15
        while run.app.status()["viewers"] < 1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        start = await frames_decoded(page)
        await asyncio.sleep(1.0)
        assert await frames_decoded(page) > start


@contextlib.contextmanager
def udp_blocked(address: str) -> Iterator[None]:
    """Drop every UDP packet to `address` in this namespace, as a firewall between machines."""
    nft = shutil.which("nft")
    if nft is None:
        pytest.fail("nft is missing: scripts/install --test installs Debian's nftables")
    table = ["inet", "ganvj_test"]
    subprocess.run([nft, "add", "table", *table], check=True)
    try:
        subprocess.run(
            [nft, "add", "chain", *table, "input", "{ type filter hook input priority 0; }"],
            check=True,
        )
        rule = ["ip", "daddr", address, "meta", "l4proto", "udp", "drop"]
        subprocess.run([nft, "add", "rule", *table, "input", *rule], check=True)
        yield
    finally:
        subprocess.run([nft, "delete", "table", *table], check=True)


async def test_viewer_says_when_the_video_cannot_get_through(
    browser: Browser, webrtc_host: str
) -> None:
    from tests.conftest import tiny_model

    async with running(server_config(webrtc_host), model=tiny_model()) as run:
        with udp_blocked(webrtc_host):
            page = await browser.new_page()
            # ?wait=3: give up on a connection after 3 s instead of 15, to keep the test short.
            await page.goto(f"http://{webrtc_host}:{run.port}/?wait=3")
            await page.wait_for_selector("#problem", state="visible", timeout=20_000)
            text = await page.text_content("#problem")
            assert text is not None
            assert "cannot reach the server's video: check that UDP is open" in text
            # And it keeps trying.
            await page.wait_for_function("() => window.ganvj.failures >= 2", timeout=20_000)
            assert not await page.evaluate("() => window.ganvj.connected")
        # Once UDP gets through again, the next try plays.
        await page.wait_for_function("() => window.ganvj.connected", timeout=30_000)
