"""The show file keeps deck b and the mixer: its model, its keyframes, the crossfader, the
curve, the blend mode and each deck's fader come back after a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from websockets.asyncio.client import connect

from server.lifecycle import running
from tests.conftest import tiny_model
from tests.integration.test_model_switch import two_models_and_a_state
from tests.integration.test_stylegan_live import reply_for

HOST = "127.0.0.1"
SET = (
    ("/mix/crossfade", 0.4),
    ("/mix/curve", "power"),
    ("/mix/blend", "screen"),
    ("/dim", 0.5),
    ("/deck/b/dim", 0.75),
)


async def send_and_hear(ws: Any, address: str, value: object) -> None:
    await ws.send(json.dumps({"address": address, "args": [value]}))
    await reply_for(ws, lambda m: m.get("address") == address and m.get("args") == [value])


async def test_deck_b_and_the_mixer_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = two_models_and_a_state(tmp_path, monkeypatch)
    async with (
        running(config, model=tiny_model(resolution=32, seed=1)) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await send_and_hear(ws, "/deck/b/model/load", "beta")
        for address, value in SET:
            await send_and_hear(ws, address, value)
        # A keyframe of deck b's own: a fresh random one in place 3.
        await ws.send(json.dumps({"address": "/deck/b/keyframe/3/reshuffle", "args": []}))
        await send_and_hear(ws, "/deck/b/latent/speed", 0.5)  # applied after it: it is done
        assert run.engine.deck_b is not None
        keyframe = run.engine.deck_b.play.bank[2].clone()
    async with (
        running(config, model=tiny_model(resolution=32, seed=1)) as run,
        connect(f"ws://{HOST}:{run.port}/ws") as ws,
    ):
        await ws.send(json.dumps({"address": "/deck/b/model/load", "args": ["?"]}))
        await reply_for(
            ws, lambda m: m.get("address") == "/deck/b/model/load" and m.get("args") == ["beta"]
        )
        for address, value in SET:
            await ws.send(json.dumps({"address": address, "args": ["?"]}))
            await reply_for(
                ws, lambda m, a=address, v=value: m.get("address") == a and m.get("args") == [v]
            )
        assert run.engine.deck_b is not None and run.engine.deck_b.model.name == "beta"
        assert torch.equal(run.engine.deck_b.play.bank[2], keyframe)
