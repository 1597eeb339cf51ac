"""The camera page over real HTTPS in Chromium: a fake camera drives the reaction."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser

from server.lifecycle import running
from tests.conftest import server_config, tiny_encoder, tiny_model, tiny_pix2pix
from tests.e2e.conftest import start_sending, wait_playing
from tests.e2e.test_viewer import SAMPLE_JS

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


def change(a: dict[str, list[int]], b: dict[str, list[int]]) -> float:
    pairs = zip(a["pixels"], b["pixels"], strict=True)
    return sum(abs(x - y) for x, y in pairs) / len(a["pixels"])


async def test_camera_over_https_drives_the_reaction(
    camera_browser: Browser, webrtc_host: str, tmp_path: Path
) -> None:
    config = server_config(webrtc_host, size=64, wander_speed=0.0).with_overrides(
        {"server.tls": True, "server.state_dir": str(tmp_path)}
    )
    async with running(
        config, model=tiny_model(), pix2pix=tiny_pix2pix(), encoder=tiny_encoder()
    ) as run:
        base = f"https://{webrtc_host}:{run.port}"
        viewer = await camera_browser.new_page()
        await viewer.goto(f"{base}/")
        await wait_playing(viewer)
        await asyncio.sleep(0.5)
        latent_a = await viewer.evaluate(SAMPLE_JS)
        await asyncio.sleep(0.5)
        latent_b = await viewer.evaluate(SAMPLE_JS)
        still = change(latent_a, latent_b)

        camera, errors = await start_sending(
            camera_browser, f"{base}/camera", "() => window.ganvjCamera.sending"
        )
        deadline = time.monotonic() + 10
        while run.engine.inputs.source != "camera" or run.engine.inputs.rate.rate() < 5:
            assert time.monotonic() < deadline, "no camera frames reached the server"
            await asyncio.sleep(0.1)

        await camera.click("button[data-mode='pix2pix']")
        await camera.wait_for_selector("button[data-mode='pix2pix'].on")
        await camera.click("#trigger")
        deadline = time.monotonic() + 5
        while not run.engine.reaction.active:
            assert time.monotonic() < deadline, "the reaction did not start"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # fade in, then the stream
        reacting = await viewer.evaluate(SAMPLE_JS)
        assert change(latent_b, reacting) > 5 * max(still, 0.5)
        assert "/react/state" in await camera.inner_text("#state")
        assert errors == []
