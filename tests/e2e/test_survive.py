"""kill -9 of the worker during a show, a real Chromium on `/`: the picture holds, comes
back, and every change sent before the kill is still there: the model, faders, routes,
keyframe stores and a preset stored in the batch just before the kill."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Browser

from models.catalog import default_model_path
from server.bench.netns import ADDRESS
from server.bench.server_process import ServerProcess
from server.bench.survive import BLACK_MEAN, Watch, open_viewer, worker_pid

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

CHANGES: list[tuple[str, list[Any]]] = [
    ("/output/dim", [0.37]),
    ("/latent/xy", [0.25, 0.75]),
    ("/mod/route", ["audio/rms", "/latent/truncation", 0.5]),
]


async def answers(port: int, addresses: list[str]) -> dict[str, list[Any]]:
    """The "?" answer of each address, over the websocket."""
    found: dict[str, list[Any]] = {}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{ADDRESS}:{port}/ws") as ws,
    ):
        for address in addresses:
            await ws.send_json({"address": address, "args": ["?"]})
        while len(found) < len(addresses):
            message = json.loads((await ws.receive(timeout=10)).data)
            if message.get("address") in addresses and message.get("type") == "state":
                found[message["address"]] = message["args"]
    return found


async def send(port: int, changes: list[tuple[str, list[Any]]]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{ADDRESS}:{port}/ws") as ws,
    ):
        for address, args in changes:
            await ws.send_json({"address": address, "args": args})
    # Answered: applied by the engine (and journaled before that frame rendered).
    await answers(port, [a for a, _ in changes])


async def thumb(port: int, n: int) -> np.ndarray:
    """Keyframe n's thumbnail as the server draws it (once it has drawn one)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            async with session.get(f"http://{ADDRESS}:{port}/api/thumb/{n}") as response:
                if response.status == 200:
                    image = Image.open(io.BytesIO(await response.read())).convert("RGB")
                    return np.asarray(image, dtype=np.float32)
            await asyncio.sleep(0.05)
    raise AssertionError(f"keyframe {n} has no thumbnail")


def apart(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, 0..255."""
    return float(np.abs(a - b).mean())


async def send_bundle(port: int, bundle: list[dict[str, Any]], probe: str) -> None:
    """Send one bundle (applied between two frames) and hear `probe` answered after it."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{ADDRESS}:{port}/ws") as ws,
    ):
        await ws.send_json({"bundle": [*bundle, {"address": probe, "args": ["?"]}]})
        while True:
            message = json.loads((await ws.receive(timeout=10)).data)
            if message.get("address") == probe and message.get("type") == "state":
                return


@pytest.fixture
def server() -> Any:
    process = ServerProcess(
        model=default_model_path("unconditional"),
        fps=15.0,
        shared_encoder=True,
        size=128,
        supervised=True,
        # The test's websocket plays as the performer (the namespace address is not loopback).
        tables={"server": {"trusted": [ADDRESS]}},
    )
    yield process
    process.close()


async def test_kill_9_holds_the_picture_and_loses_nothing(
    browser: Browser, server: ServerProcess
) -> None:
    watch = await open_viewer(browser, server.port)
    # A second model in the models folder (the same weights under another name).
    shipped = default_model_path("unconditional")
    (server.state_dir / "models").mkdir(exist_ok=True)
    shutil.copy(shipped, server.state_dir / "models" / f"second{shipped.suffix}")
    await send(server.port, [("/model/load", ["second"])])
    await send(server.port, [("/latent/wander", [0]), *CHANGES])
    five, six = await thumb(server.port, 5), await thumb(server.port, 6)
    assert apart(five, six) > 10.0  # two seeds' pictures before the stores
    # Keyframes 5 and 6 both take the one position, and a preset is stored, in the last
    # batch before the kill: well inside the second between two show saves.
    stores = ["/keyframe/5/store", "/keyframe/6/store", "/preset/store"]
    bundle = [{"address": a, "args": ["verse"] if "preset" in a else []} for a in stores]
    pid = worker_pid(server, None, 10)
    outage = await watch.kill_and_watch(  # plays again within 5 s
        pid, limit_s=5.0, last_word=lambda: send_bundle(server.port, bundle, "/preset/list")
    )
    assert outage.darkest >= BLACK_MEAN, f"the page went black: {outage}"
    new = worker_pid(server, pid, 10)
    assert new != pid
    got = await answers(server.port, ["/model/load", "/preset/list", *(a for a, _ in CHANGES)])
    assert got["/model/load"] == ["second"]
    assert got["/output/dim"] == [0.37]
    assert got["/latent/xy"] == [0.25, 0.75]
    assert got["/mod/route"] == ["audio/rms", "/latent/truncation", 0.5]
    assert "verse" in got["/preset/list"]
    # Thumbnails are JPEGs of float renders: equal pictures are within a level or two.
    assert apart(await thumb(server.port, 5), await thumb(server.port, 6)) < 2.0
    assert server.status()["supervisor"]["restarts"] == 1  # type: ignore[index]


# Notes, every 20 ms, whether the projector page held its last frame (`frozen`).
HELD_JS = """() => { window.__held = false;
  setInterval(() => { if (window.ganvj.frozen) window.__held = true; }, 20); }"""


async def test_a_projector_output_holds_its_last_frame_through_a_kill(
    browser: Browser, server: ServerProcess
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{ADDRESS}:{server.port}/ws") as ws,
    ):
        await ws.send_json({"address": "/out/wall/add", "args": []})
    page = await browser.new_page(viewport={"width": 320, "height": 320})
    await page.goto(f"http://{ADDRESS}:{server.port}/out/wall")
    await page.wait_for_function(
        "() => window.ganvj.mapping && window.ganvj.connected && window.ganvj.drawn > 5",
        timeout=30_000,
    )
    await page.evaluate(HELD_JS)
    watch = Watch(page)
    before = await watch.brightness()
    assert before >= BLACK_MEAN  # the default model's picture, not a black page
    os.kill(worker_pid(server, None, 10), signal.SIGKILL)
    darkest = before
    for _ in range(300):  # ~30 s at most
        darkest = min(darkest, await watch.brightness())
        back = await page.evaluate(
            "() => window.__held && window.ganvj.connected && !window.ganvj.frozen"
        )
        if back:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the projector page did not play again")
    assert darkest >= BLACK_MEAN, f"the projector went black ({darkest:.0f}/255)"


async def test_a_crash_loop_falls_back_to_safe_settings_and_says_so(server: ServerProcess) -> None:
    pid = worker_pid(server, None, 10)
    for _ in range(3):
        os.kill(pid, signal.SIGKILL)
        pid = worker_pid(server, pid, 30)
    status = server.status()
    reason = status["supervisor"]["safe_mode"]  # type: ignore[index]
    assert reason and "3 times" in reason and "safe settings" in reason
    assert status["device"] == "cpu"
    assert status["canvas"] == "{0}x{0}".format(status["resolution"])  # native size
    await asyncio.sleep(0)
