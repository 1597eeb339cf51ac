"""TempoClock against a simulated clock."""

from __future__ import annotations

import pytest

from server.tempo import LinkSource, TempoClock


def test_next_beat_and_bar():
    clock = TempoClock(bpm=120.0)  # beats at 0, 0.5, 1.0 ...
    assert clock.next_beat(0.0) == 0.0
    assert clock.next_beat(0.01) == pytest.approx(0.5)
    assert clock.next_beat(0.5) == pytest.approx(0.5)
    assert clock.next_bar(0.01) == pytest.approx(2.0)
    assert clock.next_bar(2.2) == pytest.approx(4.0)
    assert clock.beats_to_seconds(4) == pytest.approx(2.0)
    assert clock.seconds_to_beats(1.0) == pytest.approx(2.0)


def test_lead_moves_quantized_times_earlier_but_never_into_the_past():
    clock = TempoClock(bpm=120.0)
    clock.lead_seconds = 0.1
    assert clock.next_beat(0.3) == pytest.approx(0.4)
    assert clock.next_beat(0.45) == pytest.approx(0.9)  # 0.4 already passed
    clock.lead_seconds = 99.0
    assert clock.lead_seconds == 1.0  # bounded


def test_set_bpm_keeps_phase():
    clock = TempoClock(bpm=120.0)
    clock.set_bpm(60.0, now=1.25)  # beat 2.5 at 1.25 s
    assert clock.beat_at(1.25) == pytest.approx(2.5)
    assert clock.next_beat(1.25) == pytest.approx(1.75)


def test_tap_tempo_averages_recent_taps_and_resets_after_a_gap():
    clock = TempoClock(bpm=120.0)
    assert clock.tap(10.0) is None
    assert clock.tap(10.6) == pytest.approx(100.0)
    assert clock.tap(11.2) == pytest.approx(100.0)
    assert clock.beat_at(11.2) == pytest.approx(round(clock.beat_at(11.2)))  # on a beat
    assert clock.tap(20.0) is None  # a long pause starts over
    assert clock.tap(20.5) == pytest.approx(120.0)


async def test_link_source_falls_back_cleanly_without_aalink(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_aalink(name, *args, **kwargs):
        if name == "aalink":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aalink)
    clock = TempoClock()
    async with LinkSource(clock) as link:
        assert not link.available and not clock.link_available
        clock.link_wanted = True
        assert not clock.following_link
