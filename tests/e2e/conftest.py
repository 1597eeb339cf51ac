"""A real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

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


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium with a throwaway profile."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install --test installs Debian's chromium")
    # Playwright gives each launch a fresh, throwaway profile of its own.
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
