"""The control page in a real Chromium, from an address that is not trusted."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser

from server.http.auth import Role
from server.lifecycle import running
from tests.conftest import server_config, tiny_model

pytestmark = [pytest.mark.browser, pytest.mark.webrtc]


async def until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_control_asks_for_the_link_and_plays_with_it(
    browser: Browser, webrtc_host: str
) -> None:
    # The namespace address is not loopback, and nothing here trusts it.
    config = server_config(webrtc_host).with_overrides({"server.trusted": []})
    async with running(config, model=tiny_model()) as run:
        base = f"http://{webrtc_host}:{run.port}/control"
        tokens = run.app.access.tokens

        page = await browser.new_page()
        await page.goto(base)
        locked = page.locator("#locked")
        await locked.wait_for(state="visible")
        assert "Ask the performer for the link" in await locked.inner_text()
        assert await page.locator("main").is_hidden()
        # Its preview may watch, as anyone may; nothing on it plays.
        assert all(c.role == Role.VIEWER for c in run.app.connections)

        # Pasted into the open page: only the fragment changes, and the page starts again.
        await page.goto(f"{base}#t=not-a-token-we-made")
        await page.wait_for_function(
            "document.getElementById('locked-reason').textContent.includes('not valid')"
        )
        assert await locked.is_visible()

        player = await browser.new_page()
        await player.goto(f"{base}#t={tokens.performer}")
        await player.wait_for_selector("#status.ok")
        assert "#t=" not in player.url  # out of the address bar once kept
        await player.click("#keys button:nth-child(3)")
        await until(lambda: run.engine.play.current == 3)
        # A reload finds the token in localStorage.
        await player.reload()
        await player.wait_for_selector("#status.ok")
        await player.click("#keys button:nth-child(5)")
        await until(lambda: run.engine.play.current == 5)
        assert await player.locator("#locked").is_hidden()
