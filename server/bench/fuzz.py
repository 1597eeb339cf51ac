"""Hostile input for the soak bench and its CI test: OSC packets and websocket messages.

Pure generators: each yields bytes or text from a seeded RNG, so a failing run
can be replayed. None of them produces a message that changes the stored show
(keyframe banks and persisted settings): the only state the soak compares is
changed by the valid commands it sends on purpose, so "the show equals what
the valid commands made of it" is a fair test that hostile input changed
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import socket
import struct
import sys
import time
from collections.abc import Iterator

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from controllers.osc_packet import encode

# Addresses whose valid forms move the picture but touch nothing stored.
MOVING = ("/latent/xy", "/latent/seed", "/keyframe/2/jump", "/keyframe/next")
# Stored settings: fuzzed only with argument types no coercion can accept.
STORED = ("/keyframe/interp", "/keyframe/ease", "/keyframe/morph", "/latent/speed")
NESTING = 64  # bundles inside bundles


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (4 - len(data) % 4)


def _blob_message(address: str, blob: bytes) -> bytes:
    """An OSC message with one blob argument (python-osc's encoder is not asked for it)."""
    return _pad(address.encode()) + _pad(b",b") + struct.pack(">i", len(blob)) + _pad(blob)


def _bundle(elements: list[bytes]) -> bytes:
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return _pad(b"#bundle") + struct.pack(">Q", 1) + body


def _valid_moving(rng: random.Random) -> bytes:
    address = rng.choice(MOVING)
    if address == "/latent/xy":
        return encode(address, [rng.random(), rng.random()])
    if address == "/latent/seed":
        return encode(address, [rng.randrange(2**31)])
    return encode(address, [])


def osc_packets(count: int, seed: int = 0) -> Iterator[bytes]:
    """`count` hostile datagrams: noise, cut or mutated messages, bad types, big or deep bundles."""
    rng = random.Random(seed)
    # Building a 1,500-message bundle costs far more than sending it: a few are made
    # once and sent again, so the sender keeps its rate.
    big = [_bundle([_valid_moving(rng) for _ in range(1500)]) for _ in range(4)]
    for i in range(count):
        kind = i % 8
        if kind == 0:  # random bytes
            yield rng.randbytes(rng.randint(0, 512))
        elif kind == 1:  # a valid message cut short
            data = _valid_moving(rng)
            yield data[: rng.randint(0, len(data) - 1)]
        elif kind == 2:  # a valid message with bytes flipped (type tags and lengths included)
            mutated = bytearray(_valid_moving(rng))
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            yield bytes(mutated)
        elif kind == 3:  # stored settings with types nothing may coerce
            address = rng.choice(STORED)
            yield _blob_message(address, rng.randbytes(rng.randint(0, 64)))
        elif kind == 4:  # a string where a number or choice belongs
            yield encode(rng.choice(STORED), ["not-a-" + str(rng.randint(0, 9))])
        elif kind == 5:  # a huge bundle of valid moving messages (one datagram, ~60 KB)
            yield rng.choice(big)
        elif kind == 6:  # bundles nested NESTING deep
            packet = _valid_moving(rng)
            for _ in range(NESTING):
                packet = _bundle([packet])
            yield packet
        else:  # a bundle whose element length lies
            inner = _valid_moving(rng)
            yield _pad(b"#bundle") + struct.pack(">Q", 1) + struct.pack(">i", 10**6) + inner


def ws_messages(count: int, seed: int = 0, max_bytes: int = 256 * 1024) -> Iterator[str | bytes]:
    """`count` hostile websocket messages (text and binary)."""
    rng = random.Random(seed)
    for i in range(count):
        kind = i % 10
        if kind == 0:
            yield rng.randbytes(rng.randint(1, 256))  # binary frame
        elif kind == 1:
            yield "{" + "x" * rng.randint(0, 64)  # broken JSON
        elif kind == 2:
            yield json.dumps([1, 2, {"address": "/latent/xy"}])  # JSON, not an object
        elif kind == 3:
            yield json.dumps({"address": rng.choice(STORED), "args": [{"nested": [1, 2]}]})
        elif kind == 4:
            yield json.dumps({"address": "/" + "a/" * 200, "args": []})  # overlong address
        elif kind == 5:
            yield json.dumps({"type": "offer", "sdp": "v=0\r\n" + "a=garbage\r\n" * 20})
        elif kind == 6:
            yield json.dumps({"type": "show/import", "show": {"version": 99, "models": []}})
        elif kind == 7:
            yield json.dumps({"type": rng.choice(["", None, 5, "x" * 300, "offer"])})
        elif kind == 8:
            yield json.dumps({"address": "/latent/speed", "args": ["NaN"]})
        else:
            yield "[" * rng.randint(1000, 20000)  # deep nesting: a parser's recursion
        if i % 500 == 499:
            yield "x" * (max_bytes + 1)  # over the size limit: the server closes this one


def send_osc(host: str, port: int, packets: Iterator[bytes], rate: float) -> int:
    """Send datagrams at about `rate` per second; returns how many went out."""
    sent = 0
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            with contextlib.suppress(OSError):  # too big for a datagram: that is fuzz too
                sock.sendto(packet, (host, port))
            sent += 1
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    return sent


def faders(seconds: float, rate: float) -> Iterator[bytes]:
    """A performer's steady fader flood: XY moves, `rate` a second for `seconds`."""
    for i in range(int(seconds * rate)):
        phase = i / rate
        yield encode("/latent/xy", [0.5 + 0.4 * math.sin(phase), 0.5 + 0.4 * math.cos(phase)])


async def send_ws(url: str, count: int, connections: int, seed: int, token: str | None) -> int:
    """`count` hostile messages over `connections` sockets at once; reconnect when closed.

    Even-numbered connections bring `token` (a performer's client gone bad), odd
    ones bring none (a stranger, refused at the edge).
    """

    async def one(index: int) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token and index % 2 == 0 else None
        sent = 0
        messages = ws_messages(count // connections, seed=seed + index)
        ws = await connect(url, additional_headers=headers, max_size=None)
        try:
            for message in messages:
                try:
                    await ws.send(message)
                    sent += 1
                except ConnectionClosed:
                    ws = await connect(url, additional_headers=headers, max_size=None)
        finally:
            await ws.close()
        return sent

    return sum(await asyncio.gather(*(one(i) for i in range(connections))))


def main(argv: list[str] | None = None) -> int:
    """`python -m server.bench.fuzz osc HOST PORT COUNT RATE SEED | faders HOST PORT SECONDS
    RATE | ws URL COUNT CONNECTIONS SEED [TOKEN]`: a sender process for the soak bench."""
    args = sys.argv[1:] if argv is None else argv
    what = args[0]
    if what == "osc":
        host, port, count, rate, seed = (
            args[1],
            int(args[2]),
            int(args[3]),
            float(args[4]),
            int(args[5]),
        )
        sent = send_osc(host, port, osc_packets(count, seed), rate)
    elif what == "faders":
        host, port, seconds, rate = args[1], int(args[2]), float(args[3]), float(args[4])
        sent = send_osc(host, port, faders(seconds, rate), rate)
    else:
        token = args[5] if len(args) > 5 else None
        sent = asyncio.run(send_ws(args[1], int(args[2]), int(args[3]), int(args[4]), token))
    print(json.dumps({"sent": sent}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
