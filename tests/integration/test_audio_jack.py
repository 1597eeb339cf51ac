"""A kick pattern played through a real JACK server (dummy backend) into the sound card input."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from controllers.audio import AudioProcessor, Features, SoundCardInput, engine_sink
from server.commands import parse
from server.config import RenderConfig
from server.engine import Engine
from tests.conftest import tiny_model
from tests.support.jack import PERIOD, RATE, jack_server, reload_portaudio
from tests.support.signals import KICKS_S, kick_pattern


@pytest.fixture(scope="module")
def jack() -> Iterator[str]:
    with jack_server() as name:
        yield name


def start_player() -> subprocess.Popen[str]:
    """The kick player, in a process of its own, connected to our input and waiting."""
    root = Path(__file__).resolve().parents[2]
    player = subprocess.Popen(
        [sys.executable, "-m", "tests.support.jack_player"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert player.stdout is not None
    line = player.stdout.readline().strip()
    assert line == "ready", f"the JACK player did not start: {line!r}"
    return player


def test_kicks_through_jack_fire_onsets_on_time_and_bass_moves_truncation(jack: str) -> None:
    sd = reload_portaudio()
    devices = [
        d
        for d in sd.query_devices()  # type: ignore[attr-defined]
        if "JACK" in sd.query_hostapis(d["hostapi"])["name"] and d["max_input_channels"] > 0  # type: ignore[attr-defined]
    ]
    assert devices, "PortAudio sees no JACK input"
    engine = Engine(model=tiny_model(), config=RenderConfig(size=32), device=torch.device("cpu"))
    engine.submit(
        [
            parse("/latent/wander", [0]),
            parse("/keyframe/morph", [0.0]),
            parse("/keyframe/1/jump", [0.0]),
            parse("/latent/truncation", [0.5]),
            parse("/mod/route", ["audio/bass", "/latent/truncation", 0.4]),
            parse("/mod/trigger", ["audio/onset", "/keyframe/next"]),
        ]
    )
    engine.render_once()
    seen: list[Features] = []
    to_engine = engine_sink(
        update=engine.sources.update, fire=engine.patch.fire, submit=engine.submit
    )

    def sink(features: Features, arrived: float) -> None:
        seen.append(features)
        to_engine(features, arrived)

    signal, starts = kick_pattern(RATE)
    processor = AudioProcessor(sample_rate=RATE, on_features=sink)
    processor.start()
    psi: list[float] = []
    keys: list[int] = []
    player: subprocess.Popen[str] | None = None
    try:
        with SoundCardInput(processor, device=devices[0]["index"], block=PERIOD):
            player = start_player()
            assert player.stdin is not None and player.stdout is not None
            time.sleep(0.3)  # silence first: the gain and onset history settle
            player.stdin.write("go\n")
            player.stdin.flush()
            assert player.stdout.readline().strip() == "playing"
            deadline = time.monotonic() + len(signal) / RATE + 1.0
            while time.monotonic() < deadline:
                frame = engine.render_once()
                key = engine.play.bank[engine.play.current - 1]
                assert frame.latent is not None
                psi.append(float(frame.latent @ key / (key @ key)))
                keys.append(engine.play.current)
                time.sleep(0.04)
    finally:
        processor.stop()
        if player is not None:
            player.kill()
            player.communicate(timeout=5)
    onsets = [f.sample for f in seen if f.onset]
    assert len(onsets) == len(KICKS_S), (onsets, starts)
    # The same JACK cycles feed player and input: kick spacing survives exactly,
    # so each onset lands within one audio block of its kick.
    offset = onsets[0] - starts[0]
    for got, want in zip(onsets, starts, strict=True):
        assert abs(got - want - offset) < PERIOD, (onsets, starts)
    # Each onset stepped the keyframe once (1 -> 2 -> ... -> 6).
    assert keys[-1] == 1 + len(KICKS_S)
    # Bass drove truncation up by its amount (0.4 at full bass) and let it fall back.
    assert 0.5 + 0.4 * 0.75 <= max(psi) <= 0.9 + 1e-4, max(psi)
    assert min(psi) == pytest.approx(0.5, abs=0.02)
    assert engine.play.truncation == 0.5
