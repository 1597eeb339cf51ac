"""Presets leave and come back one at a time: `preset/export` and `preset/import` over the
websocket; a corrupt import is refused with an error and changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import connect

from server.lifecycle import running
from tests.conftest import server_config, tiny_model
from tests.integration.test_stylegan_live import reply_for

HOST = "127.0.0.1"
VALUES = (("/latent/seed", 123), ("/output/dim", 0.625))
OTHER = (("/latent/seed", 7), ("/output/dim", 0.25))
ANSWERS = ("preset", "preset/imported", "error")


async def send(ws: Any, address: str, *args: object) -> None:
    await ws.send(json.dumps({"address": address, "args": list(args)}))


async def set_values(ws: Any, values: tuple[tuple[str, object], ...]) -> None:
    for address, value in values:
        await send(ws, address, value)
        heard = (address, [value])
        await reply_for(ws, lambda m, h=heard: (m.get("address"), m.get("args")) == h)


async def value_of(ws: Any, address: str) -> object:
    await send(ws, address, "?")
    return (await reply_for(ws, lambda m: m.get("address") == address))["args"][0]


async def names(ws: Any) -> list[object]:
    await send(ws, "/preset/list", "?")
    return list((await reply_for(ws, lambda m: m.get("address") == "/preset/list"))["args"])


async def ask(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    """A typed message and its answer (or its error)."""
    await ws.send(json.dumps(message))
    return await reply_for(ws, lambda m: m.get("type") in ANSWERS)


async def test_export_delete_import_recall_brings_the_values_back() -> None:
    async with (
        running(server_config(HOST, size=64), model=tiny_model()) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await set_values(ws, VALUES)
        await send(ws, "/preset/store", "look")
        assert "look" in await names(ws)
        # The show saver hears of the store on the event loop: the export follows it.
        deadline = time.monotonic() + 10
        while (exported := await ask(ws, {"type": "preset/export", "name": "look"}))[
            "type"
        ] == "error" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert exported["type"] == "preset" and exported["name"] == "look", exported
        preset = exported["preset"]
        assert ["/latent/seed", [123]] in preset["commands"]

        await send(ws, "/preset/delete", "look")
        assert "look" not in await names(ws)
        await set_values(ws, OTHER)

        imported = await ask(ws, {"type": "preset/import", "name": "look", "preset": preset})
        assert imported == {"type": "preset/imported", "name": "look"}
        assert "look" in await names(ws)
        await send(ws, "/preset/recall", "look")
        for address, value in VALUES:
            assert await value_of(ws, address) == value

        # Corrupt imports: refused, named, and nothing changes (not even under a new name).
        before = await names(ws)
        for bad in (
            {"commands": "all of them"},
            {"commands": [["/record/start", []]]},  # not a value a preset keeps
            {"commands": [["/latent/seed", ["many"]]]},
            [1, 2, 3],
        ):
            for name in ("look", "fresh"):
                answer = await ask(ws, {"type": "preset/import", "name": name, "preset": bad})
                assert answer["type"] == "error" and "preset" in answer["error"], answer
        answer = await ask(ws, {"type": "preset/import", "name": "../up", "preset": preset})
        assert answer["type"] == "error", answer
        assert await names(ws) == before
        again = await ask(ws, {"type": "preset/export", "name": "look"})
        assert again["preset"] == preset
