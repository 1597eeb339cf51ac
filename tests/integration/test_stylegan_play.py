"""A live server playing a StyleGAN, steered by real OSC packets and websockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import torch
from pythonosc.osc_message import OscMessage

from controllers.osc_packet import encode
from models.checkpoint import LoadedModel
from models.latent_maths import seed_latent
from server.engine import Engine
from server.lifecycle import Running, running
from server.media.frame import Frame
from tests.conftest import server_config, tiny_model
from tests.integration.test_control_server import frame_after, next_message, ws_control
from tests.integration.test_model_switch import watch
from tests.support.tiny_stylegan import tiny_stylegan

HOST = "127.0.0.1"


def stylegan() -> LoadedModel:
    return tiny_stylegan(name="tiny-sg")


@pytest.fixture
async def sg_server() -> AsyncIterator[Running]:
    async with running(server_config(HOST), model=stylegan()) as run:
        await frame_after(run.engine, 0)
        yield run


class Osc:
    """One UDP socket that sends OSC to the server and reads what comes back to it."""

    def __init__(self, run: Running) -> None:
        assert run.osc is not None
        self.server = (HOST, run.osc.address[1])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)

    def send(self, address: str, *args: object) -> None:
        self.sock.sendto(encode(address, args), self.server)

    async def reply(self, address: str, *params: object, timeout: float = 5.0) -> OscMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = await asyncio.to_thread(self.sock.recv, 65536)
            except TimeoutError:
                continue
            message = OscMessage(data)
            if message.address == address and (not params or message.params == list(params)):
                return message
        raise AssertionError(f"no {address} reply")

    def close(self) -> None:
        self.sock.close()


async def frame_where(engine: Engine, test: object, timeout: float = 5.0) -> Frame:
    """The first new frame for which test(frame) holds."""
    index = -1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await frame_after(engine, index)
        index = frame.index
        if test(frame):  # type: ignore[operator]
            return frame
    raise AssertionError("no such frame")


def mapped(model: LoadedModel, seed: int) -> torch.Tensor:
    with torch.no_grad():
        return model.module.mapping(seed_latent(seed, 16)[None], None)[0, 0]


async def test_osc_seed_truncation_and_mixing_move_the_live_w(sg_server: Running) -> None:
    engine = sg_server.engine
    osc = Osc(sg_server)
    try:
        osc.send("/feedback/subscribe")  # state changes come back to this socket
        osc.send("/keyframe/morph", 0.0)
        osc.send("/latent/seed", 42)
        await osc.reply("/latent/seed", 42)  # after the greeting's current state
        target = mapped(engine.model, 42)
        seeded = await frame_where(
            engine, lambda f: f.latent is not None and torch.allclose(f.latent, target, atol=1e-5)
        )
        osc.send("/latent/truncation", 0.0)
        w_avg = engine.model.module.mapping.w_avg
        average = await frame_where(
            engine, lambda f: f.latent is not None and torch.allclose(f.latent, w_avg, atol=1e-6)
        )
        assert np.abs(seeded.yuv.astype(float) - average.yuv).mean() > 1.0  # the picture moved
        osc.send("/latent/truncation", 1.0)
        async with await ws_control(sg_server) as ws:
            before = await frame_where(engine, lambda f: torch.equal(f.latent, seeded.latent))
            await ws.send(json.dumps({"address": "/style/coarse/keyframe", "args": [4]}))
            await ws.send(json.dumps({"address": "/style/coarse/amount", "args": [1.0]}))
            state = await next_message(ws, lambda m: m.get("address") == "/style/coarse/amount")
            assert state["args"] == [1.0]
            mixed = await frame_where(engine, lambda f: f.index > before.index + 1)
            assert np.abs(mixed.yuv.astype(float) - before.yuv).mean() > 0.5
            assert torch.equal(mixed.latent, before.latent)  # W stays; its coarse layers mix
            await ws.send(json.dumps({"address": "/model/info", "args": ["?"]}))
            info = await next_message(ws, lambda m: m.get("address") == "/model/info")
            assert info["args"] == ["stylegan2", "w", 0, 0]
    finally:
        osc.close()
    assert engine.errors == 0


async def test_a_dcgan_answers_stylegan_controls_with_an_error() -> None:
    async with running(server_config(HOST), model=tiny_model()) as run:
        await frame_after(run.engine, 0)
        osc = Osc(run)
        try:
            osc.send("/style/noise/mode", "random")
            reply = await osc.reply("/error")
            assert reply.params[0] == "/style/noise/mode"
            assert "needs a StyleGAN" in reply.params[1] and "tiny" in reply.params[1]
        finally:
            osc.close()
        async with await ws_control(run) as ws:
            await ws.send(json.dumps({"address": "/transform/spin", "args": [20]}))
            reply = await next_message(ws, lambda m: m.get("type") == "error")
            assert reply["address"] == "/transform/spin" and "StyleGAN3" in str(reply["error"])
            await ws.send(json.dumps({"address": "/latent/class", "args": [1]}))
            reply = await next_message(ws, lambda m: m.get("type") == "error")
            assert "not conditional" in str(reply["error"])
        assert run.engine.play.spin == 0.0 and run.engine.errors == 0


async def test_sg3_spins_live() -> None:
    model = tiny_stylegan(name="tiny-sg3", sg3=True)
    async with running(server_config(HOST), model=model) as run:
        engine = run.engine
        async with await ws_control(run) as ws:
            await ws.send(json.dumps({"address": "/latent/wander", "args": [0]}))
            await ws.send(json.dumps({"address": "/transform/spin", "args": [90.0]}))
            await next_message(ws, lambda m: m.get("address") == "/transform/spin")
            first = await frame_where(engine, lambda f: True)
            later = await frame_where(engine, lambda f: f.index >= first.index + 5)
            assert np.abs(first.yuv.astype(float) - later.yuv).mean() > 0.5  # it turns
            assert torch.equal(first.latent, later.latent)  # by the transform alone
            await ws.send(json.dumps({"address": "/transform/rotate", "args": ["?"]}))
            answer = await next_message(ws, lambda m: m.get("address") == "/transform/rotate")
            assert answer["args"][0] != 0.0


async def test_dcgan_to_stylegan_and_back_crossfades_without_a_black_frame() -> None:
    async with running(server_config(HOST), model=tiny_model()) as run:
        engine = run.engine
        await frame_after(engine, 0)
        watching = asyncio.ensure_future(asyncio.to_thread(watch, engine, 3.0))
        await asyncio.sleep(0.2)
        engine.offer_model(stylegan())
        await asyncio.sleep(1.4)
        assert engine.model.name == "tiny-sg" and engine.play.space.name == "w"
        engine.offer_model(tiny_model())
        frames = await watching
        assert engine.model.name == "tiny" and engine.play.space.name == "z"
    assert min(f.mean() for f in frames) > 30  # never black (luma 16)
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) < 0.5 * max(np.abs(frames[0] - f).mean() for f in frames)
