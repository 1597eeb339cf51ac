"""Projector outputs on the real server: commands over OSC and the websocket, refusals
that keep the last good mapping, the viewer-safe watch, 404s, and the show file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from controllers.osc_packet import encode, parse_packet
from server.commands import parse
from server.config import Config
from server.lifecycle import running
from server.outputs.mapping import OutputMapping
from tests.conftest import server_config, tiny_model

HOST = "127.0.0.1"
LEFT = OutputMapping(name="left", rect=(0.0, 0.0, 0.575, 1.0), blend=(0.0, 0.26, 0.0, 0.0))


def config_with_left(**server: Any) -> Config:
    config = server_config(HOST)
    if server:
        config = config.with_overrides({f"server.{k}": v for k, v in server.items()})
    return dataclasses.replace(config, outputs=(LEFT,))


async def message(ws: ClientConnection, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no matching message"
        found = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if predicate(found):
            return dict(found)


async def get(url: str) -> tuple[int, str]:
    """GET off the event loop (the server runs on it)."""
    return await asyncio.to_thread(_get, url)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_bad_mappings_get_an_error_and_the_output_keeps_its_last_good_one() -> None:
    async with running(config_with_left(), model=tiny_model()) as run:
        url = f"http://{HOST}:{run.port}/api/outputs/left"
        async with connect(f"ws://{HOST}:{run.port}/ws") as ws:
            good = [0.02, 0.0, 1.0, 0.03, 0.98, 1.0, 0.0, 0.97]
            await ws.send(json.dumps({"address": "/out/left/corners", "args": good}))
            state = await message(ws, lambda m: m.get("address") == "/out/left/corners")
            assert state["args"] == good
            before = json.loads((await get(url))[1])["output"]
            for address, args, reason in (
                ("/out/left/corners", [0, 0, 1, 1, 1, 0, 0, 1], "fold over themselves"),
                ("/out/left/blend", [0.6, 0.5, 0, 0], "wider than the slice"),
                ("/out/nope/rect", [0, 0, 1, 1], "no output named 'nope'"),
                ("/out/bad name/rect", [0, 0, 1, 1], "1..32 of A-Z"),
            ):
                await ws.send(json.dumps({"address": address, "args": args}))
                refusal = await message(ws, lambda m: m.get("type") == "error")
                assert reason in refusal["error"], refusal
            assert json.loads((await get(url))[1])["output"] == before
            assert before["corners"] == [good[i : i + 2] for i in range(0, 8, 2)]

        # The same refusal over OSC, answered to the sender as /error.
        assert run.osc is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            udp.settimeout(5)
            folded = [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
            udp.sendto(encode("/out/left/corners", folded), (HOST, run.osc.address[1]))
            data, _ = await asyncio.to_thread(udp.recvfrom, 65536)
        [reply] = parse_packet(data)
        assert reply.address == "/error" and reply.args[0] == "/out/left/corners"
        assert "keeps its last good mapping" in str(reply.args[1])
        assert json.loads((await get(url))[1])["output"] == before

        # 404s: the page and the JSON of an output that does not exist.
        status, body = await get(f"http://{HOST}:{run.port}/out/nope")
        assert status == 404 and "No output named nope" in body and "/out/left" in body
        assert (await get(f"http://{HOST}:{run.port}/api/outputs/nope"))[0] == 404
        assert (await get(f"http://{HOST}:{run.port}/out/left"))[0] == 200


async def test_a_viewer_watches_the_mapping_and_nothing_else_and_cannot_change_it() -> None:
    # Loopback untrusted: a websocket without a token is a viewer, as a projector is.
    config = config_with_left(trust_loopback=False, trusted=[])
    async with running(config, model=tiny_model()) as run:
        viewer = await connect(f"ws://{HOST}:{run.port}/ws")
        async with viewer:
            await viewer.send(json.dumps({"type": "outputs/watch"}))
            first = await message(viewer, lambda m: m.get("type") == "outputs")
            assert first["outputs"]["left"]["rect"] == [0.0, 0.0, 0.575, 1.0]
            assert first["testcard"] is False
            await viewer.send(json.dumps({"address": "/out/left/gamma", "args": [1.8]}))
            refused = await message(viewer, lambda m: m.get("type") == "error")
            assert "performer" in refused["error"]
            # A performer's changes reach the watching viewer; other state does not.
            run.engine.submit(
                [
                    parse("/latent/truncation", [0.5]),
                    parse("/out/left/gamma", [1.8]),
                    parse("/output/testcard", [1]),
                ]
            )
            seen = [await message(viewer, lambda m: m.get("type") == "state") for _ in range(2)]
            assert {m["address"] for m in seen} == {"/out/left/gamma", "/output/testcard"}
            assert seen[0]["args"] == [1.8] or seen[1]["args"] == [1.8]


async def test_outputs_live_in_the_show_and_come_back_after_a_restart() -> None:
    config = config_with_left()
    async with running(config, model=tiny_model()) as run:
        run.engine.submit([parse("/out/floor/add", []), parse("/out/floor/rect", [0, 0.8, 1, 0.2])])
        deadline = time.monotonic() + 5
        while "floor" not in run.app.status()["outputs"]["projectors"]["outputs"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the show saver writes off the loop
    # Restarted with no [[outputs]] in the config: the show's come back.
    async with running(dataclasses.replace(config, outputs=()), model=tiny_model()) as run:
        status, body = await get(f"http://{HOST}:{run.port}/api/outputs")
        assert status == 200
        outputs = json.loads(body)["outputs"]
        assert sorted(outputs) == ["floor", "left"]
        assert outputs["floor"]["rect"] == [0.0, 0.8, 1.0, 0.2]


async def test_the_canvas_fill_lives_in_the_show_and_comes_back_after_a_restart() -> None:
    config = server_config(HOST)  # one state folder for both starts; render.fill is native
    async with (
        running(config, model=tiny_model()) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await ws.send(json.dumps({"address": "/canvas/fill", "args": ["mirror"]}))
        await message(
            ws, lambda m: m.get("address") == "/canvas/fill" and m.get("args") == ["mirror"]
        )
    # The show is written as the server stops; the next start plays it back over render.fill.
    async with (
        running(config, model=tiny_model()) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await ws.send(json.dumps({"address": "/canvas/fill", "args": ["?"]}))
        reply = await message(ws, lambda m: m.get("address") == "/canvas/fill")
        assert reply["args"] == ["mirror"]
        assert run.app.status()["fill"] == "mirror"
