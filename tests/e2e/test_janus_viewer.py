"""The / page plays from a real Janus when the config names a public Janus URL."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser

from server.bench.janus import ADMIN_KEY, janus_missing, running_janus
from server.lifecycle import running
from tests.conftest import server_config, tiny_model
from tests.e2e.test_viewer import SAMPLE_JS, frames_decoded

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


async def test_the_viewer_page_plays_from_janus(browser: Browser, webrtc_host: str) -> None:
    why = janus_missing()
    if why is not None:
        pytest.skip(why)
    async with running_janus(webrtc_host) as janus:
        config = server_config(webrtc_host).with_overrides(
            {
                "output.janus": janus.url,
                "output.janus_admin_key": ADMIN_KEY,
                "output.janus_public_url": janus.url,
            }
        )
        async with running(config, model=tiny_model()) as run:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"http://{webrtc_host}:{run.port}/")
            await page.wait_for_function(
                "() => { const v = document.getElementById('video');"
                " return v.readyState >= 2 && v.videoWidth > 0 && !v.paused; }",
                timeout=20_000,
            )
            assert await page.evaluate("() => window.ganvj.janus") == janus.url
            # Frames keep coming: ten more within 10 s (a loaded machine may stall a second
            # or two between Janus and the page; a stopped stream never gets there).
            first = await frames_decoded(page)
            for _ in range(40):
                await asyncio.sleep(0.25)
                if await frames_decoded(page) > first + 10:
                    break
            assert await frames_decoded(page) > first + 10
            picture = await page.evaluate(SAMPLE_JS)
            assert picture["width"] == 64 and picture["mean"] > 10
            # Every frame came through Janus: ganvj has no WebRTC viewer of its own.
            assert run.app.status()["viewers"] == 0
            assert errors == []
            await page.close()
