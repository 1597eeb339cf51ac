"""Ableton Link through aalink, inside the test network namespace (Link multicasts)."""

from __future__ import annotations

import asyncio
import time

import aalink  # a test dependency: scripts/install --test installs it
import pytest

from server.tempo import LinkSource, TempoClock

pytestmark = pytest.mark.webrtc  # needs the private namespace of scripts/test


async def test_clock_follows_a_link_session_and_pushes_tempo_to_it(webrtc_host: str):
    """webrtc_host: fails loudly outside the namespace, where Link would multicast out."""
    peer = aalink.Link(128.0)
    peer.enabled = True
    clock = TempoClock(bpm=100.0)
    clock.link_wanted = True
    async with LinkSource(clock, poll_seconds=0.01) as source:
        assert source.available and clock.following_link
        for _ in range(500):  # peers find each other within about 2 s
            if source.peers and clock.bpm == pytest.approx(peer.tempo, abs=0.01):
                break
            await asyncio.sleep(0.01)
        assert source.peers == 1
        assert clock.bpm == pytest.approx(peer.tempo, abs=0.01)  # one session tempo
        # The next beat on our clock is when Link says the beat comes.
        await peer.sync(1)
        landed = time.monotonic()
        beat_error = abs(clock.beat_at(landed) - round(clock.beat_at(landed)))
        assert beat_error < 0.1  # under a tenth of a beat (about 50 ms at 128 bpm)
        clock.set_bpm(90.0, landed)  # /tempo/bpm with Link on sets the session tempo
        for _ in range(300):
            if peer.tempo == pytest.approx(90.0, abs=0.01):
                break
            await asyncio.sleep(0.01)
        assert peer.tempo == pytest.approx(90.0, abs=0.01)
    peer.enabled = False
    assert not clock.following_link
