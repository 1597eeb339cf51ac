"""The /audio page over real HTTPS in Chromium: a fake microphone becomes modulation sources."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser

from server.lifecycle import running
from tests.conftest import server_config, tiny_model
from tests.e2e.conftest import start_sending

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


async def test_a_browser_microphone_feeds_the_audio_features(
    camera_browser: Browser, webrtc_host: str, tmp_path: Path
) -> None:
    config = server_config(webrtc_host, size=32).with_overrides(
        {"server.tls": True, "server.state_dir": str(tmp_path)}
    )
    async with running(config, model=tiny_model()) as run:
        page, errors = await start_sending(
            camera_browser,
            f"https://{webrtc_host}:{run.port}/audio",
            "() => window.ganvjAudio.connected",
        )
        # Chromium's fake microphone beeps: blocks arrive at the feature worker,
        # and the sources it sets rise above silence.
        loudest = 0.0
        deadline = time.monotonic() + 15
        while True:
            browser_audio = run.app.status()["audio"]["browser"]
            blocks = sum(p["blocks"] for p in browser_audio.values())
            loudest = max(loudest, run.engine.sources.snapshot().get("audio/rms", 0.0))
            if blocks > 50 and loudest > 0.1:
                break
            assert time.monotonic() < deadline, f"{blocks} blocks, loudest rms {loudest}"
            await asyncio.sleep(0.1)
        assert "48000" in browser_audio  # Opus decodes at 48 kHz
        await page.click("#stop")
        assert errors == []
