"""Firefox ESR, stock preferences (mDNS host candidates only), plays the viewer page."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from server.lifecycle import Running

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("firefox_viewer.cjs")
FIREFOX = Path("/usr/bin/firefox-esr")
PUPPETEER = ROOT / ".node" / "node_modules" / "puppeteer-core"


async def test_firefox_esr_plays_with_stock_preferences(live_server: Running) -> None:
    node = shutil.which("node")
    if node is None or not FIREFOX.exists() or not PUPPETEER.exists():
        pytest.fail(
            "Firefox tests need node, /usr/bin/firefox-esr and npm puppeteer-core in .node/: "
            "scripts/install --test installs them"
        )
    url = f"http://{live_server.app.config.server.host}:{live_server.port}/"
    driver = await asyncio.create_subprocess_exec(
        node, str(DRIVER), url, "30", "45", stdout=asyncio.subprocess.PIPE, stderr=sys.stderr
    )
    try:
        out, _ = await asyncio.wait_for(driver.communicate(), timeout=90)
    finally:
        if driver.returncode is None:
            driver.kill()
            await driver.wait()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert driver.returncode == 0, result
    # Firefox hid its host addresses: the case where ganvj's answer used to be empty.
    assert result["offerHasOnlyMdns"], result
    assert result["framesDecoded"] >= 30
    assert (result["width"], result["height"]) == (64, 64)
