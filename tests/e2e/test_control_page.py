"""The control page in a real Chromium, against a stand-in /ws that speaks the protocol.

The stand-in applies commands to a PlayState and broadcasts its Changes, as the
engine will; the real server's wiring is tested by the lead's tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from controllers.ws_control import error_message, parse_control, state_message
from server.commands import CommandError, describe
from server.play import PlayState

pytestmark = pytest.mark.browser

WEB = Path(__file__).resolve().parents[2] / "web"
TYPES = {".html": "text/html", ".js": "text/javascript", ".json": "application/json"}


class StandIn:
    """A minimal /ws control endpoint with a PlayState behind it."""

    def __init__(self) -> None:
        self.play = PlayState(z_dim=8)
        self.clients: set[ServerConnection] = set()
        self.received: list[str] = []
        self.now = 0.0

    def http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?")[0]
        if path == "/ws":
            return None
        if path == "/api/commands":
            body, kind = json.dumps(describe()).encode(), TYPES[".json"]
        elif path == "/api/models":
            body, kind = b'["dcgan64", "dcgan256"]', TYPES[".json"]
        elif path in ("/control", "/control.js"):
            file = WEB / ("control.html" if path == "/control" else "control.js")
            body, kind = file.read_bytes(), TYPES[file.suffix]
        else:
            return connection.respond(404, "not found\n")
        headers = Headers({"Content-Type": kind, "Content-Length": str(len(body))})
        return Response(200, "OK", headers, body)

    async def handler(self, connection: ServerConnection) -> None:
        self.clients.add(connection)
        try:
            async for raw in connection:
                message = json.loads(raw)
                try:
                    commands = parse_control(message, origin=connection)
                except CommandError as exc:
                    await connection.send(json.dumps(error_message(exc)))
                    continue
                for command in commands:
                    self.received.append(command.address)
                    if not self.play.handles(command):
                        continue
                    self.now += 0.01
                    for change in self.play.apply(command, self.now):
                        targets = self.clients if change.to is None else {change.to}
                        for client in targets:
                            await client.send(json.dumps(state_message(change)))  # type: ignore[attr-defined]
        finally:
            self.clients.discard(connection)


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, Server]]:
    fake = StandIn()
    async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.http) as server:
        yield fake, server


async def test_keyframe_tap_and_long_press_and_sync(browser: Browser, stand_in):
    fake, server = stand_in
    port = server.sockets[0].getsockname()[1]
    page = await browser.new_page()
    other = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"http://127.0.0.1:{port}/control")
    await other.goto(f"http://127.0.0.1:{port}/control")
    await page.wait_for_selector("#status.ok")
    await other.wait_for_selector("#status.ok")

    await page.click("#keys button:nth-child(3)")
    await other.wait_for_selector("#keys button:nth-child(3).current")  # feedback reached both
    assert "/keyframe/3/jump" in fake.received

    button = page.locator("#keys button:nth-child(5)")
    await button.hover()
    await page.mouse.down()
    await asyncio.sleep(0.8)
    await page.mouse.up()
    await asyncio.sleep(0.1)
    assert "/keyframe/5/store" in fake.received and "/keyframe/5/jump" not in fake.received

    box = await page.locator("#xy").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    for _ in range(50):
        if fake.play.xy != (0.5, 0.5):
            break
        await asyncio.sleep(0.02)
    assert fake.play.xy[0] == pytest.approx(0.25, abs=0.02)
    assert fake.play.xy[1] == pytest.approx(0.75, abs=0.02)

    await page.click("button[data-toggle='/sequence/play']")
    await other.wait_for_selector("button[data-toggle='/sequence/play'].on")
    assert options_ok(await page.locator("#model option").all_text_contents())
    assert errors == []


def options_ok(names: list[str]) -> bool:
    return names == ["dcgan64", "dcgan256"]


async def test_page_reconnects_after_a_server_restart(browser: Browser):
    fake = StandIn()
    server = await serve(fake.handler, "127.0.0.1", 0, process_request=fake.http)
    port = server.sockets[0].getsockname()[1]
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{port}/control")
    await page.wait_for_selector("#status.ok")
    server.close()
    await server.wait_closed()
    await page.wait_for_selector("#status:not(.ok)")
    async with serve(fake.handler, "127.0.0.1", port, process_request=fake.http):
        await page.wait_for_selector("#status.ok", timeout=10_000)
