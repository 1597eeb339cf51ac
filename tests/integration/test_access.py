"""Roles at the edge, each over a real connection to the real server.

The server listens on the namespace address, which is not loopback, and these
tests drop the trust the other tests give it: a client there is a viewer
unless it brings a token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from server.bench.peers import PatternTrack, connect_camera, connect_viewer
from server.config import Config
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model

pytestmark = pytest.mark.webrtc


def untrusted(host: str, **overrides: object) -> Config:
    """The test config without the trust in the namespace address."""
    return server_config(host).with_overrides({"server.trusted": [], **overrides})


@pytest.fixture
async def server(webrtc_host: str) -> AsyncIterator[Running]:
    async with running(untrusted(webrtc_host), model=tiny_model()) as run:
        yield run


def ws_url(run: Running, token: str | None = None) -> str:
    base = f"ws://{run.app.config.server.host}:{run.port}/ws"
    return f"{base}?t={token}" if token else base


def performer(run: Running) -> str:
    return run.app.access.tokens.performer


def admin(run: Running) -> str:
    return run.app.access.tokens.admin


async def http_get(run: Running, path: str, token: str | None = None) -> tuple[int, Any]:
    url = f"http://{run.app.config.server.host}:{run.port}{path}"
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")

    def get() -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return await asyncio.to_thread(get)


async def reply(ws: ClientConnection, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of type `wanted` (state feedback in between is skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} message"
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if message.get("type") == wanted:
            return dict(message)


async def state_of(ws: ClientConnection, address: str, timeout: float = 10.0) -> list[Any]:
    """The args of the next state message for `address`."""
    deadline = time.monotonic() + timeout
    while True:
        state = await reply(ws, "state", timeout=deadline - time.monotonic())
        if state["address"] == address:
            return list(state["args"])


async def snapshot(run: Running) -> str:
    return await asyncio.to_thread(lambda: json.dumps(run.engine.play.snapshot()))


async def test_a_viewers_control_message_is_refused_and_changes_nothing(server: Running) -> None:
    await asyncio.sleep(0.3)
    before = await snapshot(server)
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"address": "/latent/seed", "args": [4242]}))
        error = await reply(ws, "error")
        assert "needs the performer role" in error["error"]
        bundle = {"bundle": [{"address": "/keyframe/3/reshuffle", "args": []}]}
        await ws.send(json.dumps(bundle))
        assert "performer" in (await reply(ws, "error"))["error"]
        await asyncio.sleep(0.3)
    assert await snapshot(server) == before
    assert server.app.status()["refused"]["messages"] == 2
    # The same connection may still watch: viewers receive video.
    viewer = await connect_viewer(ws_url(server))
    try:
        await viewer.wait_frames(5, timeout=20)
    finally:
        await viewer.close()


async def test_a_performer_token_plays_and_a_wrong_one_is_refused(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="server.http.app"):
        async with connect(ws_url(server, performer(server))) as ws:
            await ws.send(json.dumps({"address": "/latent/seed", "args": [4242]}))
            await ws.send(json.dumps({"address": "/latent/seed", "args": ["?"]}))
            assert await state_of(ws, "/latent/seed") == [4242]
    # No TLS and a token from a non-loopback address: one line says so.
    assert any("travels in the clear" in r.getMessage() for r in caplog.records)
    with pytest.raises(InvalidStatus) as refused:
        await connect(ws_url(server, "not-the-token-at-all"))
    assert refused.value.response.status_code == 403
    assert b"ask the performer" in refused.value.response.body
    status, body = await http_get(server, "/api/role", performer(server))
    assert (status, body) == (200, {"role": "performer"})
    assert (await http_get(server, "/api/role"))[1] == {"role": "viewer"}


async def test_a_foreign_origin_is_refused_at_the_handshake(webrtc_host: str) -> None:
    allowed = "http://visuals.example:3000"
    # Loopback is trusted, and still a page from elsewhere cannot drive the show.
    async with running(
        server_config("127.0.0.1").with_overrides({"server.allowed_origins": [allowed]}),
        model=tiny_model(),
    ) as run:
        url = f"ws://127.0.0.1:{run.port}/ws"
        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{run.port + 1}"):
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, origin=origin)
            assert refused.value.response.status_code == 403
            assert b"allowed_origins" in refused.value.response.body
        before = run.app.access.refused
        assert before == 3
        for origin in (f"http://127.0.0.1:{run.port}", allowed):
            async with connect(url, origin=origin) as ws:
                await ws.send(json.dumps({"address": "/latent/seed", "args": ["?"]}))
                await state_of(ws, "/latent/seed")


async def test_show_import_and_export_need_an_admin(server: Running) -> None:
    await asyncio.sleep(0.3)
    before = await snapshot(server)
    show = {"version": 1, "models": {"tiny": json.loads(before)}}
    status, body = await http_get(server, "/api/show", performer(server))
    assert status == 403 and "admin" in body["error"]
    assert (await http_get(server, "/api/show"))[0] == 403
    async with connect(ws_url(server, performer(server))) as ws:
        await ws.send(json.dumps({"type": "show/import", "show": show}))
        assert "needs the admin role" in (await reply(ws, "error"))["error"]
        await ws.send(json.dumps({"type": "show/export"}))
        assert "needs the admin role" in (await reply(ws, "error"))["error"]
    status, exported = await http_get(server, "/api/show", admin(server))
    assert status == 200 and "models" in exported
    async with connect(ws_url(server, admin(server))) as ws:
        await ws.send(json.dumps({"type": "show/export"}))
        assert (await reply(ws, "show"))["show"] == exported


async def test_a_camera_offer_without_the_performer_role_is_refused(server: Running) -> None:
    before = server.engine.inputs.status()
    with pytest.raises(ConnectionError, match="camera offer needs the performer role"):
        await connect_camera(ws_url(server), PatternTrack())
    assert not server.app.rtc.incoming
    assert server.engine.inputs.status() == before
    camera = await connect_camera(ws_url(server, performer(server)), PatternTrack())
    try:
        assert len(server.app.rtc.incoming) == 1
    finally:
        await camera.close()


async def test_json_nested_too_deeply_gets_an_error_reply_not_a_closed_socket(
    server: Running,
) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send("[" * 50_000 + "]" * 50_000)
        assert "nested too deeply" in (await reply(ws, "error"))["error"]
        await ws.send(json.dumps({"type": "ping", "t": 1}))
        assert (await reply(ws, "pong"))["t"] == 1


async def test_whip_needs_the_performer_role(server: Running) -> None:
    url = f"http://{server.app.config.server.host}:{server.port}/whip"

    def post(token: str | None) -> tuple[int, str]:
        request = urllib.request.Request(url, data=b"v=0\r\n", method="POST")
        request.add_header("Content-Type", "application/sdp")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    status, body = await asyncio.to_thread(post, None)
    assert status == 403 and "needs the performer role" in body
    assert not server.app.rtc.incoming
    status, body = await asyncio.to_thread(post, performer(server))
    assert status == 400 and "offer" in body  # past the edge, to the offer itself


async def test_a_flooding_client_is_throttled_and_others_play_on(webrtc_host: str) -> None:
    config = untrusted(
        webrtc_host, **{"limits.ws_messages_per_s": 20, "limits.ws_offers_per_min": 2}
    )
    async with running(config, model=tiny_model()) as run:
        token = performer(run)
        async with connect(ws_url(run, token)) as flood, connect(ws_url(run, token)) as calm:
            for i in range(500):
                await flood.send(json.dumps({"address": "/latent/xy", "args": [i / 500, 0.5]}))
            assert "too many messages" in (await reply(flood, "error", timeout=10))["error"]
            # The other client's command goes through while the flooder is throttled.
            await calm.send(json.dumps({"address": "/latent/seed", "args": [77]}))
            await calm.send(json.dumps({"address": "/latent/seed", "args": ["?"]}))
            assert await state_of(calm, "/latent/seed") == [77]
            assert run.app.status()["refused"]["throttled"] >= 300
        async with connect(ws_url(run)) as viewer:
            await asyncio.sleep(1.1)  # a fresh second for the message bucket
            offer = json.dumps({"type": "offer", "sdp": "v=0\r\n"})
            errors = []
            for _ in range(3):
                await viewer.send(offer)
                errors.append((await reply(viewer, "error"))["error"])
            assert "could not be used" in errors[0] and "could not be used" in errors[1]
            assert "too many offers" in errors[2]
