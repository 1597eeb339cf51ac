"""What a stranger on the venue network tries at the HTTP edge, and what holds.

The setting of the security pass (issue 18): the server on the namespace
address 10.77.0.1, which trusts itself (the projector runs there), and a
stranger on a second address of the same subnet, 10.77.0.2, with no token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from server.bench.peers import connect_viewer
from server.config import Config
from server.lifecycle import Running, running
from tests.conftest import server_config, tiny_model
from tests.integration.test_react import until

pytestmark = pytest.mark.webrtc

STRANGER = "10.77.0.2"


@pytest.fixture
def stranger(webrtc_host: str) -> Iterator[str]:
    """A second address on the namespace's veth, for a client that is not trusted."""
    add = ["ip", "addr", "add", f"{STRANGER}/24", "dev", "v0"]
    done = subprocess.run(add, capture_output=True, text=True, check=False)
    if done.returncode != 0 and "File exists" not in done.stderr:
        pytest.fail(f"cannot add {STRANGER} to v0: {done.stderr.strip()}")
    try:
        yield STRANGER
    finally:
        subprocess.run(["ip", "addr", "del", f"{STRANGER}/24", "dev", "v0"], check=False)


def config(host: str, **limits: object) -> Config:
    """The test config (trusting the server's own address) with these `limits.*`."""
    return server_config(host).with_overrides({f"limits.{k}": v for k, v in limits.items()})


def base(run: Running) -> str:
    return f"http://{run.app.config.server.host}:{run.port}"


def from_stranger() -> aiohttp.ClientSession:
    """An HTTP client whose connections come from the stranger's address."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(STRANGER, 0)))


async def offer(direction: str = "recvonly") -> str:
    """A real offer (every candidate gathered) from a peer that then goes away: no ICE runs."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


async def post_sdp(http: aiohttp.ClientSession, url: str, sdp: str) -> tuple[int, str]:
    async with http.post(url, data=sdp, headers={"Content-Type": "application/sdp"}) as response:
        return response.status, response.headers.get("Location", "")


async def open_websockets(
    http: aiohttp.ClientSession, url: str, count: int
) -> tuple[list[aiohttp.ClientWebSocketResponse], list[int]]:
    """Open `count` idle websockets; the open ones, and the statuses of the refused."""
    opened, refused = [], []
    for _ in range(count):
        try:
            opened.append(await http.ws_connect(url, heartbeat=None))
        except aiohttp.WSServerHandshakeError as exc:
            refused.append(exc.status)
    return opened, refused


def audience(run: Running) -> int:
    return sum(not p.privileged for p in run.app.rtc.viewers)


async def players_get_in(run: Running) -> None:
    """A performer's websocket (token, from the stranger's own address) and the projector."""
    token = run.app.access.tokens.performer
    async with from_stranger() as http:
        ws = await http.ws_connect(f"{base(run)}/ws?t={token}")
        try:
            await ws.send_json({"address": "/latent/seed", "args": [77]})
            await ws.send_json({"address": "/latent/seed", "args": ["?"]})
            while (state := json.loads(await ws.receive_str(timeout=10))).get(
                "address"
            ) != "/latent/seed":
                assert state.get("type") != "error", state
            assert state["args"] == [77]
        finally:
            await ws.close()
    # The projector: a trusted machine (the server's own address), a real peer.
    projector = await connect_viewer(f"ws://{run.app.config.server.host}:{run.port}/ws")
    try:
        await projector.wait_frames(10, timeout=20)
    finally:
        await projector.close()


async def test_idle_websockets_and_unconnected_offers_lock_no_one_out(
    webrtc_host: str, stranger: str
) -> None:
    async with (
        running(config(webrtc_host, peer_connect_s=3), model=tiny_model()) as run,
        from_stranger() as http,
    ):
        sockets, refused = await open_websockets(http, f"{base(run)}/ws", 70)
        squat = await offer()
        answered = [await post_sdp(http, f"{base(run)}/whep", squat) for _ in range(20)]
        try:
            # One address holds its share, not the house.
            assert len(sockets) == run.app.config.limits.ws_connections_per_client
            assert set(refused) == {503}
            created = [status for status, _ in answered if status == 201]
            assert len(created) == run.app.config.limits.viewers_per_client
            assert audience(run) == len(created)
            await players_get_in(run)
            # Offers that never run ICE give their slots back.
            await until(lambda: audience(run) == 0, timeout=20)
            assert run.app.status()["unconnected_peers_closed"] >= len(created)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))


async def test_a_full_house_still_lets_the_performer_and_projector_in(
    webrtc_host: str, stranger: str
) -> None:
    limits: dict[str, object] = {
        "ws_max_connections": 4,
        "ws_connections_per_client": 64,
        "viewers_per_client": 64,
    }
    overrides = {"server.max_viewers": 2}
    async with (
        running(config(webrtc_host, **limits).with_overrides(overrides), model=tiny_model()) as run,
        from_stranger() as http,
    ):
        sockets, refused = await open_websockets(http, f"{base(run)}/ws", 6)
        squat = await offer()
        answered = [await post_sdp(http, f"{base(run)}/whep", squat) for _ in range(3)]
        try:
            assert (len(sockets), refused) == (4, [503, 503])  # the house is full
            assert [status for status, _ in answered] == [201, 201, 400]
            await players_get_in(run)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))


async def test_dns_rebinding_is_refused_before_any_role() -> None:
    async with running(server_config("127.0.0.1"), model=tiny_model()) as run:
        await asyncio.sleep(0.3)
        before = await asyncio.to_thread(lambda: json.dumps(run.engine.play.snapshot()))
        show = {"version": 1, "models": {"tiny": {"seed": 4242}}}
        url = f"http://127.0.0.1:{run.port}"
        evil = f"attacker.example:{run.port}"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                ws = await http.ws_connect(
                    f"{url}/ws", headers={"Host": evil, "Origin": f"http://{evil}"}
                )
                await ws.send_json({"type": "show/import", "show": show})  # old code: admin
                await asyncio.sleep(0.5)
                await ws.close()
            assert refused.value.status == 421
            async with http.get(f"{url}/api/show", headers={"Host": evil}) as response:
                assert response.status == 421
            # Our own Host, a foreign Origin: the Origin is checked against our names.
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{url}/ws", headers={"Origin": f"http://{evil}"})
            assert refused.value.status == 403
            # The names of this server pass, with its port.
            own = f"localhost:{run.port}"
            ws = await http.ws_connect(
                f"{url}/ws", headers={"Host": own, "Origin": f"http://{own}"}
            )
            await ws.close()
        after = await asyncio.to_thread(lambda: json.dumps(run.engine.play.snapshot()))
        assert after == before


async def raw_get(run: Running, target: bytes) -> int:
    """The status of `GET target`, sent byte for byte (no client normalises it)."""
    reader, writer = await asyncio.open_connection(run.app.config.server.host, run.port)
    try:
        host = f"{run.app.config.server.host}:{run.port}".encode()
        writer.write(
            b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1])
    finally:
        writer.close()


async def test_odd_static_paths_are_not_found_without_a_traceback(
    webrtc_host: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(server_config(webrtc_host), model=tiny_model()) as run:
        with caplog.at_level(logging.DEBUG):
            for target in (b"/%00", b"/a%00.html", b"/" + b"a" * 4000, b"/%ff%fe", b"/%c0%af"):
                assert await raw_get(run, target) in (400, 404), target
            assert await raw_get(run, b"/control") == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_whep_location_cannot_hang_up_a_whip_session(live_server: Running) -> None:
    run = live_server
    async with aiohttp.ClientSession() as http:
        status, location = await post_sdp(http, f"{base(run)}/whip", await offer("sendonly"))
        assert status == 201 and location.startswith("/whip/")
        resource = location.rsplit("/", 1)[1]
        async with http.delete(f"{base(run)}/whep/{resource}") as response:
            assert response.status == 404
        assert len(run.app.rtc.incoming) == 1
        async with http.delete(f"{base(run)}{location}") as response:
            assert response.status == 200
        assert not run.app.rtc.incoming


def with_candidates(sdp: str, count: int) -> str:
    """The offer with `count` more host candidates, each a port of the stranger's address."""
    extra = [
        f"a=candidate:x{i} 1 udp 2130706431 {STRANGER} {20000 + i} typ host" for i in range(count)
    ]
    lines = sdp.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("a=candidate:"))
    return "\r\n".join(lines[:at] + extra + lines[at:]) + "\r\n"


async def test_an_offer_with_200_candidates_gets_at_most_the_cap(live_server: Running) -> None:
    run = live_server
    async with aiohttp.ClientSession() as http:
        status, _ = await post_sdp(http, f"{base(run)}/whep", with_candidates(await offer(), 200))
    assert status == 201
    (peer,) = run.app.rtc.viewers
    (transceiver,) = peer.pc.getTransceivers()
    ice = transceiver.receiver.transport.transport
    held = ice._connection.remote_candidates  # aioice checks each of these
    assert 0 < len(held) <= 16


async def get_status(http: aiohttp.ClientSession, run: Running, token: str = "") -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(f"{base(run)}/api/status", headers=headers) as response:
        assert response.status == 200
        return await response.text()


async def test_a_viewers_status_carries_no_paths_or_host_names(
    webrtc_host: str, stranger: str
) -> None:
    async with running(config(webrtc_host), model=tiny_model()) as run:
        state_dir = run.app.config.server.state_dir
        async with from_stranger() as http:
            seen: dict[str, Any] = json.loads(await get_status(http, run))
            text = json.dumps(seen)
            assert "rendered_fps" in seen and "viewers" in seen  # what the viewer page shows
            assert state_dir not in text and "/" not in text.replace("\\/", "")
            assert json.dumps(socket.gethostname()) not in text  # NDI's "host", say
            performer = await get_status(http, run, run.app.access.tokens.performer)
            assert state_dir in performer
