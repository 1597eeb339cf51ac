"""The control page in a real Chromium against the real server."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
import torch
from playwright.async_api import Browser, Page
from websockets.asyncio.client import connect

from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model
from tests.e2e.conftest import wait_playing
from tests.e2e.test_viewer import SAMPLE_JS

pytestmark = pytest.mark.browser


async def open_control(browser: Browser, run: Running, host: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"http://{host}:{run.port}/control")
    await page.wait_for_selector("#status.ok")
    return page


async def until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_keyframe_tap_long_press_and_sync(browser: Browser) -> None:
    host = "127.0.0.1"
    async with running(server_config(host), model=tiny_model()) as run:
        page = await open_control(browser, run, host)
        other = await open_control(browser, run, host)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        await page.click("#keys button:nth-child(3)")
        await other.wait_for_selector("#keys button:nth-child(3).current")  # feedback to both
        await until(lambda: run.engine.play.current == 3)

        before = run.engine.play.bank[4].clone()
        button = page.locator("#keys button:nth-child(5)")
        await button.hover()
        await page.mouse.down()
        await asyncio.sleep(0.8)  # a long press stores
        await page.mouse.up()
        await until(lambda: not torch.equal(run.engine.play.bank[4], before))
        assert run.engine.play.current == 3  # stored, not jumped

        await page.click("button[data-toggle='/sequence/play']")
        await other.wait_for_selector("button[data-toggle='/sequence/play'].on")
        names = await page.locator("#model option").all_text_contents()
        assert "tiny" in names or names  # the installed models, from /api/models
        assert errors == []


@pytest.mark.webrtc
async def test_dragging_the_xy_pad_changes_the_picture(browser: Browser, webrtc_host: str) -> None:
    async with running(server_config(webrtc_host, size=64), model=tiny_model()) as run:
        control = await open_control(browser, run, webrtc_host)
        viewer = await browser.new_page()
        await viewer.goto(f"http://{webrtc_host}:{run.port}/")
        await wait_playing(viewer)
        # Hold the picture still, so only the pad can change it.
        async with connect(f"ws://{webrtc_host}:{run.port}/ws") as ws:
            await ws.send(json.dumps({"address": "/latent/wander", "args": [0]}))
        await until(lambda: not run.engine.play.wander)
        await asyncio.sleep(1.0)
        still_a = await viewer.evaluate(SAMPLE_JS)
        await asyncio.sleep(0.5)
        still_b = await viewer.evaluate(SAMPLE_JS)
        assert still_a["pixels"] == still_b["pixels"] or pixel_change(still_a, still_b) < 2

        box = await control.locator("#xy").bounding_box()
        assert box is not None
        await control.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        await control.mouse.down()
        for step in range(1, 11):
            await control.mouse.move(
                box["x"] + box["width"] * (0.5 - 0.045 * step),
                box["y"] + box["height"] * (0.5 + 0.045 * step),
            )
            await asyncio.sleep(0.03)
        await control.mouse.up()
        await until(lambda: run.engine.play.xy[0] < 0.1 and run.engine.play.xy[1] > 0.9)
        await asyncio.sleep(1.0)  # past the glide and the stream
        moved = await viewer.evaluate(SAMPLE_JS)
        assert pixel_change(still_b, moved) > 5 * max(pixel_change(still_a, still_b), 0.5)


def pixel_change(a: dict[str, list[int]], b: dict[str, list[int]]) -> float:
    return sum(abs(x - y) for x, y in zip(a["pixels"], b["pixels"], strict=True)) / len(a["pixels"])


async def test_page_reconnects_after_a_server_restart(browser: Browser) -> None:
    host = "127.0.0.1"
    config = server_config(host)
    async with running(config, model=tiny_model()) as run:
        port = run.port
        page = await open_control(browser, run, host)
    await page.wait_for_selector("#status:not(.ok)")
    async with running(config.with_overrides({"server.port": port}), model=tiny_model()):
        await page.wait_for_selector("#status.ok", timeout=10_000)


DOCS = Path(__file__).resolve().parents[2] / "docs"
PHONE = {"width": 390, "height": 844}  # held upright
TABLET = {"width": 1180, "height": 820}  # held sideways

THUMBS_JS = """() => [...document.querySelectorAll('#keys button img')].map(
    (img) => ({src: img.getAttribute('src') || '',
               loaded: img.complete && img.naturalWidth > 0}))"""


@pytest.mark.webrtc
async def test_preview_plays_and_thumbnails_appear_after_a_store(
    browser: Browser, webrtc_host: str
) -> None:
    # The shipped default model: the README's screenshots show what a user gets.
    async with running(server_config(webrtc_host, size=128)) as run:
        page = await browser.new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"http://{webrtc_host}:{run.port}/control")
        await page.wait_for_selector("#status.ok")
        # The preview: the shared stream, playing (frames presented, not just connected).
        await page.wait_for_function(
            "() => window.ganvjPreview.frames > 15 && "
            "document.getElementById('preview').videoWidth === 128",
            timeout=20_000,
        )
        assert run.app.status()["viewers"] == 1
        # Every pad shows its keyframe, drawn by the server.
        await page.wait_for_function(
            f"() => ({THUMBS_JS})().every((t) => t.loaded)", timeout=10_000
        )
        before = (await page.evaluate(THUMBS_JS))[4]["src"]
        # Move somewhere new, then long-press pad 5: stored, and its thumbnail follows.
        async with connect(f"ws://{webrtc_host}:{run.port}/ws") as ws:
            await ws.send(json.dumps({"address": "/keyframe/morph", "args": [0]}))
            await ws.send(json.dumps({"address": "/latent/seed", "args": [4242]}))
        await asyncio.sleep(0.3)
        button = page.locator("#keys button:nth-child(5)")
        await button.hover()
        await page.mouse.down()
        await asyncio.sleep(0.8)
        await page.mouse.up()
        await page.wait_for_function(
            f"() => {{ const t = ({THUMBS_JS})()[4]; return t.loaded && t.src !== {before!r}; }}",
            timeout=10_000,
        )
        # A morph shows its progress on the target pad.
        async with connect(f"ws://{webrtc_host}:{run.port}/ws") as ws:
            await ws.send(json.dumps({"address": "/keyframe/2/jump", "args": [2.0]}))
        await page.wait_for_function(
            "() => parseFloat(document.querySelector('#keys button:nth-child(2) .morph')"
            ".style.width) > 0",
            timeout=5_000,
        )
        await page.evaluate("window.scrollTo(0, 0)")
        await shoot(page, "control-phone.png")
        await page.set_viewport_size(TABLET)
        await page.evaluate("window.scrollTo(0, 0)")
        await asyncio.sleep(0.5)
        # Sideways, the preview and the pads are both on the first screen.
        pads = await page.locator("#keys").bounding_box()
        preview = await page.locator("#preview").bounding_box()
        assert pads is not None and preview is not None
        assert preview["y"] + preview["height"] <= TABLET["height"]
        assert pads["y"] + pads["height"] <= TABLET["height"]
        await shoot(page, "control-tablet.png")
        assert errors == []


WIDTHS = [360, 1280, 1366, 1440, 2560]  # a small phone, the common laptops, a wide screen
LAST_FADER = "#dirs .fader:last-child input"


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_page_fits_its_width_with_every_fader_on_screen(
    browser: Browser, width: int
) -> None:
    host = "127.0.0.1"
    async with running(server_config(host), model=tiny_model()) as run:
        page = await browser.new_page(viewport={"width": width, "height": 900})
        await page.goto(f"http://{host}:{run.port}/control")
        await page.wait_for_selector("#status.ok")
        assert await page.locator("#dirs .fader").count() == 8
        scroll, inner = await page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= inner, f"{scroll} px of content in a {inner} px window"
        await page.locator(LAST_FADER).scroll_into_view_if_needed()
        box = await page.locator(LAST_FADER).bounding_box()
        assert box is not None and box["width"] >= 16  # still a fader a finger can hold
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        # The presets, decks, mixer and bend panel fit too, with a few long-named presets.
        for name in ("intro", "a-very-long-preset-name-32-chars", "drop_2"):
            await page.fill("#preset-name", name)
            await page.click("#preset-store")
        await page.wait_for_selector("#presets button[data-preset='drop_2']")
        for section in ("#presets-section", "#mix-section"):
            right = await page.evaluate(
                f"() => document.querySelector('{section}').getBoundingClientRect().right"
            )
            assert right <= width, f"{section} ends at {right} px in a {width} px window"
        scroll, inner = await page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= inner, f"{scroll} px of content in a {inner} px window"


async def test_preset_buttons_store_and_recall_and_deck_b_errors_stay_quiet(
    browser: Browser,
) -> None:
    host = "127.0.0.1"
    async with running(server_config(host), model=tiny_model()) as run:
        page = await open_control(browser, run, host)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        truncation = page.locator("#truncation")
        await truncation.fill("0.6")  # a range input: fill sets it and fires input
        await until(lambda: run.engine.play.truncation == 0.6)
        await page.fill("#preset-name", "soft")
        await page.click("#preset-store")
        button = page.locator("#presets button[data-preset='soft']")
        await button.wait_for()

        await truncation.fill("1.4")
        await until(lambda: run.engine.play.truncation == 1.4)
        await button.click()  # a tap recalls: the value comes back on the page
        await until(lambda: run.engine.play.truncation == 0.6)
        await page.wait_for_function("() => document.querySelector('#truncation').value === '0.6'")

        await page.fill("#preset-name", "loud")  # a long press stores over a button
        await page.click("#preset-store")
        loud = page.locator("#presets button[data-preset='loud']")
        await loud.wait_for()
        await truncation.fill("1.1")
        await until(lambda: run.engine.play.truncation == 1.1)
        await loud.hover()
        await page.mouse.down()
        await asyncio.sleep(0.8)
        await page.mouse.up()
        await truncation.fill("0.3")
        await until(lambda: run.engine.play.truncation == 0.3)
        await loud.click()
        await until(lambda: run.engine.play.truncation == 1.1)

        # Deck b: the page sends /deck/b/...; a server without decks says /error, quietly.
        await page.click("#deck-select [data-deck='b']")
        await truncation.fill("0.9")
        await page.wait_for_function("() => document.querySelector('#error').textContent")
        assert run.engine.play.truncation == 1.1  # deck a untouched
        await page.click("#deck-select [data-deck='a']")
        await page.locator("#crossfade").fill("0.5")  # /mix/crossfade: /error until decks
        assert errors == []


async def shoot(page: Page, name: str) -> None:
    """The README's screenshots: written only when asked (GANVJ_SCREENSHOTS=1) or missing."""
    shot = await page.screenshot()
    assert len(shot) > 10_000
    target = DOCS / name
    if os.environ.get("GANVJ_SCREENSHOTS") == "1" or not target.exists():
        target.write_bytes(shot)


async def test_stylegan_section_plays_a_stylegan_and_greys_out_for_a_dcgan(
    browser: Browser,
) -> None:
    from tests.support.tiny_stylegan import tiny_stylegan

    host = "127.0.0.1"
    async with running(server_config(host), model=tiny_stylegan()) as run:
        page = await open_control(browser, run, host)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.wait_for_selector("#model-info:has-text('stylegan2')")
        assert not await page.locator("#stylegan.off").count()
        assert await page.locator("#stylegan .sg3.off").count() == 4  # no transform on SG2
        source = page.locator("[data-address='/style/coarse/keyframe']")
        await source.fill("3")
        await source.dispatch_event("change")
        await page.locator("[data-address='/style/coarse/amount']").evaluate(
            "(el) => { el.value = 0.75; el.dispatchEvent(new Event('input')); }"
        )
        await until(lambda: run.engine.play.mix["coarse"] == (3, 0.75))
        await page.select_option("[data-address='/style/noise/mode']", "random")
        await until(lambda: run.engine.play.noise_mode == "random")
        assert errors == []
    async with running(server_config(host), model=tiny_model()) as run:
        page = await open_control(browser, run, host)
        await page.wait_for_selector("#stylegan.off")
        await page.select_option("[data-address='/style/noise/mode']", "random")
        await page.wait_for_selector("#error:has-text('needs a StyleGAN')")  # said, not silent
        assert run.engine.play.noise_mode == "const"
