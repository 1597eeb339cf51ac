"""Control over real sockets against the real server: OSC and websocket, feedback, shows."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import torch
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient
from websockets.asyncio.client import ClientConnection, connect

from server.engine import Engine
from server.lifecycle import Running, running
from server.media.frame import Frame
from tests.conftest import server_config, tiny_model

HOST = "127.0.0.1"  # no WebRTC here: loopback is enough


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    async with running(server_config(HOST), model=tiny_model()) as run:
        await frame_after(run.engine, 0)
        yield run


@pytest.fixture
def osc(server: Running) -> Iterator[SimpleUDPClient]:
    assert server.osc is not None
    client = SimpleUDPClient(HOST, server.osc.address[1])
    try:
        yield client
    finally:
        client._sock.close()


async def frame_after(engine: Engine, index: int, timeout: float = 5.0) -> Frame:
    """The first frame rendered with an index above `index`."""
    seq, frame = engine.frames.latest()
    deadline = time.monotonic() + timeout
    while frame is None or frame.index <= index:
        assert time.monotonic() < deadline, "no new frame"
        seq, frame = await asyncio.to_thread(engine.frames.wait_newer, seq, 0.2)
    return frame


async def ws_control(run: Running) -> ClientConnection:
    return await connect(f"ws://{HOST}:{run.port}/ws")


async def next_message(
    ws: ClientConnection, predicate: object, timeout: float = 5.0
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no matching message"
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if predicate(message):  # type: ignore[operator]
            return dict(message)


async def wait_keyframe_3(engine: Engine, sent_after: int) -> None:
    """Within two rendered frames of the command, the latent is keyframe 3."""
    keyframe = engine.play.bank[2].clone()
    for _ in range(2):
        frame = await frame_after(engine, sent_after)
        sent_after = frame.index
        assert frame.latent is not None
        if torch.allclose(frame.latent, keyframe, atol=1e-5):
            return
    raise AssertionError("the latent did not reach keyframe 3 within two frames")


async def test_osc_jump_reaches_keyframe_3_within_two_frames(
    server: Running, osc: SimpleUDPClient
) -> None:
    osc.send_message("/latent/wander", 0)
    await asyncio.sleep(0.2)
    before = server.engine.frames.latest()[1]
    assert before is not None
    osc.send_message("/keyframe/3/jump", 0.0)
    await wait_keyframe_3(server.engine, before.index)


async def test_ws_jump_reaches_keyframe_3_within_two_frames(server: Running) -> None:
    async with await ws_control(server) as ws:
        before = server.engine.frames.latest()[1]
        assert before is not None
        await ws.send(json.dumps({"address": "/keyframe/3/jump", "args": [0]}))
        await wait_keyframe_3(server.engine, before.index)
        # Feedback reaches the websocket client too.
        state = await next_message(ws, lambda m: m.get("address") == "/keyframe/current")
        assert state["args"] == [3]


async def test_osc_feedback_arrives_at_a_subscribed_port(
    server: Running, osc: SimpleUDPClient
) -> None:
    inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbox.bind((HOST, 0))
    inbox.settimeout(5)
    try:
        osc.send_message("/feedback/subscribe", inbox.getsockname()[1])
        await asyncio.sleep(0.1)
        osc.send_message("/latent/xy", [0.25, 0.75])
        deadline = time.monotonic() + 5
        while True:
            assert time.monotonic() < deadline
            data = await asyncio.to_thread(inbox.recv, 65536)
            message = OscMessage(data)
            # The subscription is greeted with the current state first.
            if message.address == "/latent/xy" and message.params == pytest.approx([0.25, 0.75]):
                break
    finally:
        inbox.close()


async def test_ws_clients_stay_in_sync_and_bad_messages_are_answered(server: Running) -> None:
    async with await ws_control(server) as a, await ws_control(server) as b:
        await a.send(json.dumps({"address": "/latent/truncation", "args": [0.5]}))
        state = await next_message(b, lambda m: m.get("address") == "/latent/truncation")
        assert state["args"] == [0.5]
        for bad in (
            {"address": "/latent/truncation", "args": [float("nan")]},
            {"address": "/latent/truncation", "args": ["loud"]},
            {"address": "/keyframe/99/jump", "args": []},
            {"address": "/no/such", "args": []},
            {"bundle": [{"address": "/latent/seed", "args": [3]}, {"address": "/x"}]},
        ):
            await a.send(json.dumps(bad, allow_nan=True))
            reply = await next_message(a, lambda m: m.get("type") == "error")
            assert reply["error"]
        await a.send(json.dumps({"address": "/latent/truncation", "args": ["?"]}))
        answer = await next_message(a, lambda m: m.get("address") == "/latent/truncation")
        assert answer["args"] == [0.5]  # nothing bad changed it
        assert server.engine.play.seed == 0  # the refused bundle applied nothing


async def test_engine_commands_answer_and_refuse_clearly(server: Running) -> None:
    async with await ws_control(server) as ws:
        await ws.send(json.dumps({"address": "/react/trigger", "args": [5]}))
        reply = await next_message(ws, lambda m: m.get("type") == "error")
        assert reply["address"] == "/react/trigger" and "pix2pix model" in str(reply["error"])
        await ws.send(json.dumps({"address": "/react/mix", "args": [0.3]}))
        state = await next_message(ws, lambda m: m.get("address") == "/react/mix")
        assert state["args"] == [0.3]
        await ws.send(json.dumps({"address": "/model/load", "args": ["no-such-model"]}))
        reply = await next_message(ws, lambda m: m.get("type") == "error")
        assert "no model named" in str(reply["error"])
        await ws.send(json.dumps({"address": "/model/load", "args": ["?"]}))
        state = await next_message(ws, lambda m: m.get("address") == "/model/load")
        assert state["args"] == ["tiny"]
        await ws.send(json.dumps({"address": "/react/source", "args": ["file:../../etc/passwd"]}))
        reply = await next_message(ws, lambda m: m.get("type") == "error")
        assert "media folder" in str(reply["error"])
    assert server.engine.model.name == "tiny"


FLOOD = """
import random, sys, time
from pythonosc.udp_client import SimpleUDPClient
osc = SimpleUDPClient(sys.argv[1], int(sys.argv[2]))
rng = random.Random(7)
started = time.monotonic()
for burst in range(200):  # 200 bursts of 50 = 10,000 messages in 2 s
    for _ in range(50):
        kind = rng.randrange(4)
        if kind == 0:
            osc.send_message("/latent/xy", [rng.random(), rng.random()])
        elif kind == 1:
            osc.send_message(f"/keyframe/{rng.randint(1, 16)}/jump", rng.random())
        elif kind == 2:
            osc.send_message(f"/latent/dir/{rng.randint(1, 8)}", rng.uniform(-1, 1))
        else:
            osc.send_message("/latent/truncation", rng.random())
    time.sleep(max(0.0, started + (burst + 1) * 0.01 - time.monotonic()))
print(time.monotonic() - started)
"""


async def test_render_rate_holds_under_10000_osc_messages_in_2s(server: Running) -> None:
    # The sender is another process, as a tablet or a sequencer would be.
    engine = server.engine
    assert server.osc is not None
    await asyncio.sleep(1.0)
    unloaded = await rate_over(engine, 1.5)
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FLOOD,
        HOST,
        str(server.osc.address[1]),
        stdout=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(0.3)  # past the sender's start-up
    loaded = await rate_over(engine, 1.5)
    out, _ = await sender.communicate()
    assert sender.returncode == 0
    assert float(out) < 3.0  # it really sent 10,000 in about 2 s
    await asyncio.sleep(0.3)
    assert server.osc.stats.packets >= 9900  # the raised receive buffer lost almost none
    assert loaded >= 0.9 * unloaded, (loaded, unloaded)
    assert engine.errors == 0


async def rate_over(engine: Engine, seconds: float) -> float:
    first = engine.frames.latest()[0]
    await asyncio.sleep(seconds)
    return (engine.frames.latest()[0] - first) / seconds


async def test_random_osc_bytes_and_wrong_types_change_no_state(
    server: Running, osc: SimpleUDPClient
) -> None:
    osc.send_message("/latent/wander", 0)
    await asyncio.sleep(0.2)
    before = await asyncio.to_thread(lambda: json.dumps(server.engine.play.snapshot()))
    rng = random.Random(3)
    assert server.osc is not None
    target = (HOST, server.osc.address[1])
    for _ in range(300):
        osc._sock.sendto(rng.randbytes(rng.randint(1, 200)), target)
    for address in ("/latent/xy", "/keyframe/3/store", "/latent/seed", "/tempo/bpm"):
        for args in (["x", "y"], [float("inf")], [1e9, -1e9], [b"\x00"], [True, False]):
            builder = OscMessageBuilder(address=address)
            for arg in args:
                builder.add_arg(arg)
            osc.send(builder.build())
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessageBuilder(address="/latent/seed").build())  # missing arg
    osc.send(bundle.build())
    await asyncio.sleep(0.5)
    after = await asyncio.to_thread(lambda: json.dumps(server.engine.play.snapshot()))
    assert after == before
    assert server.osc is not None
    stats = server.osc.stats.as_dict()
    assert stats["parse_errors"] > 0 and stats["invalid"] > 0
    assert server.app.status()["osc"]["invalid"] == stats["invalid"]
    assert server.engine.errors == 0


async def test_show_file_survives_a_restart_and_exports(tmp_path: Path) -> None:
    config = server_config(HOST).with_overrides({"server.state_dir": str(tmp_path)})
    async with running(config, model=tiny_model()) as run, await ws_control(run) as ws:
        await ws.send(json.dumps({"address": "/keyframe/5/reshuffle", "args": []}))
        await ws.send(json.dumps({"address": "/keyframe/morph", "args": [3.5]}))
        await next_message(ws, lambda m: m.get("address") == "/keyframe/morph")
        await asyncio.sleep(Engine.SHOW_SAVE_SECONDS + 0.5)
        bank = run.engine.play.bank.clone()
        await ws.send(json.dumps({"type": "show/export"}))
        exported = await next_message(ws, lambda m: m.get("type") == "show")
    saved = json.loads((tmp_path / "show.json").read_text())
    assert saved["models"]["tiny"]["keyframes"][4] == pytest.approx(bank[4].tolist())
    assert exported["show"] == saved

    async with running(config, model=tiny_model()) as run, await ws_control(run) as ws:
        assert torch.allclose(run.engine.play.bank, bank)
        assert run.engine.play.morph_time == 3.5
        # Import replaces the bank; a bad import is refused and changes nothing.
        await ws.send(json.dumps({"type": "show/import", "show": {"version": 99}}))
        reply = await next_message(ws, lambda m: m.get("type") == "error")
        assert "version" in str(reply["error"])
        edited = saved
        edited["models"]["tiny"]["keyframes"][0] = [0.5] * 16
        await ws.send(json.dumps({"type": "show/import", "show": edited}))
        await next_message(ws, lambda m: m.get("type") == "show/imported")
        await asyncio.sleep(0.3)
        assert torch.allclose(run.engine.play.bank[0], torch.full((16,), 0.5))


async def test_api_commands_and_models(server: Running) -> None:
    def get(path: str) -> object:
        import urllib.request

        with urllib.request.urlopen(f"http://{HOST}:{server.port}{path}", timeout=5) as r:
            return json.loads(r.read())

    commands = await asyncio.to_thread(get, "/api/commands")
    assert isinstance(commands, list)
    addresses = {c["address"] for c in commands}
    assert {"/keyframe/{n}/jump", "/latent/xy", "/react/trigger"} <= addresses
    models = await asyncio.to_thread(get, "/api/models")
    assert isinstance(models, dict) and isinstance(models["models"], list)


async def test_render_lead_follows_the_measured_output_latency(server: Running) -> None:
    # Quantized jumps render early by this much, so they land on the beat on screen.
    await asyncio.sleep(1.0)
    status = server.app.status()
    display_ms = server.app.config.tempo.display_latency_ms
    assert status["render_lead_ms"] > display_ms
    assert status["render_lead_ms"] < display_ms + 500
    assert server.engine.tempo.lead_seconds * 1000 == pytest.approx(
        status["render_lead_ms"], abs=20
    )


async def test_every_page_names_the_favicon_and_both_of_its_addresses_serve_it(
    server: Running,
) -> None:
    import urllib.request
    import xml.etree.ElementTree as ET

    from server.http.app import WEB_ROOT

    def get(path: str) -> tuple[int, str, bytes]:
        with urllib.request.urlopen(f"http://{HOST}:{server.port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()

    pages = sorted(p.stem for p in WEB_ROOT.glob("*.html"))
    assert {"index", "control", "camera", "audio"} <= set(pages)
    for page in pages:
        _, _, html = await asyncio.to_thread(get, "/" if page == "index" else f"/{page}")
        assert b'<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in html, page
    code, ctype, svg = await asyncio.to_thread(get, "/favicon.svg")
    assert code == 200 and ctype == "image/svg+xml"
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    # Browsers ask for /favicon.ico before reading any page: the same picture, not a 404.
    assert await asyncio.to_thread(get, "/favicon.ico") == (code, ctype, svg)


async def test_refusals_while_a_command_runs_are_counted(
    server: Running, osc: SimpleUDPClient
) -> None:
    """A refusal the engine answers (not the parser) counts in /api/status too."""
    rejected = server.app.status()["rejected_commands"]
    async with await ws_control(server) as ws:
        await ws.send(json.dumps({"address": "/model/load", "args": ["no-such-model"]}))
        await next_message(ws, lambda m: m.get("type") == "error")
        await ws.send(json.dumps({"address": "/style/coarse/amount", "args": [0.5]}))
        reply = await next_message(ws, lambda m: m.get("type") == "error")
        assert reply["address"] == "/style/coarse/amount"  # a DCGAN has no styles
        status = server.app.status()
        assert status["rejected_commands"] == rejected + 2
        assert status["encoded_keyframes"] is not None and "keyframes" not in status
    before = server.app.status()["osc"]["error_replies"]
    osc.send_message("/model/load", "no-such-model")
    deadline = time.monotonic() + 5
    while server.app.status()["osc"]["error_replies"] == before:
        assert time.monotonic() < deadline, "the OSC refusal was not counted"
        await asyncio.sleep(0.05)
    assert server.app.status()["osc"]["error_replies"] == before + 1
