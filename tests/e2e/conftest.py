"""A real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine has no network: stop Chromium's own background requests.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Offer the namespace address itself rather than an mDNS name, so ICE
    # needs no multicast resolution inside the test namespace.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


# A fake camera (a moving test pattern), allowed without a prompt, and our
# self-signed certificate accepted: the camera page only works over HTTPS.
CAMERA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--ignore-certificate-errors",
]


@contextlib.asynccontextmanager
async def launch(args: list[str]) -> AsyncIterator[Browser]:
    """Headless Chromium; Playwright gives each launch a throwaway profile of its own."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install --test installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium."""
    async with launch(CHROMIUM_ARGS) as browser:
        yield browser


@pytest.fixture
async def camera_browser() -> AsyncIterator[Browser]:
    """Headless Chromium with a fake camera that accepts self-signed certificates."""
    async with launch([*CHROMIUM_ARGS, *CAMERA_ARGS]) as browser:
        yield browser


async def wait_playing(page: Page) -> None:
    """Until the page's <video id="video"> shows decoded frames."""
    await page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " return v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=20_000,
    )


async def start_sending(browser: Browser, url: str, ready: str) -> tuple[Page, list[str]]:
    """Open a sender page (camera, audio) over HTTPS, press Send, wait until `ready` (JS) holds.

    Returns the page and the list its uncaught page errors collect into.
    """
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    assert await page.evaluate("() => window.isSecureContext")
    await page.click("#send")
    await page.wait_for_function(ready, timeout=20_000)
    return page, errors
