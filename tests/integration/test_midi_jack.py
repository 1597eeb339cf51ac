"""A virtual MIDI controller on a real JACK server (dummy backend) plays the running server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from server.commands import parse
from server.config import Config
from server.lifecycle import running
from tests.conftest import server_config, tiny_model
from tests.support.jack import jack_server

HOST = "127.0.0.1"
CONTROLLER = "ganvj-test-knobs"


@pytest.fixture(scope="module")
def jack() -> Iterator[str]:
    with jack_server() as name:
        yield name


class Controller:
    """A MIDI controller with a knob bank (out) and pads with LEDs (in), as JACK ports."""

    def __init__(self) -> None:
        import rtmidi

        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=CONTROLLER)
        self.out.open_virtual_port("knobs")
        self.leds = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=CONTROLLER + "-leds")
        self.leds.open_virtual_port("pads")

    def cc(self, number: int, value: int, channel: int = 1) -> None:
        self.out.send_message([0xB0 | (channel - 1), number, value])

    def note(self, number: int, channel: int = 1) -> None:
        self.out.send_message([0x90 | (channel - 1), number, 100])
        self.out.send_message([0x80 | (channel - 1), number, 0])

    def lit(self) -> dict[int, int]:
        """Pad note -> last velocity the server sent to it."""
        out: dict[int, int] = {}
        while (message := self.leds.get_message()) is not None:
            status, note, velocity = message[0]
            if status & 0xF0 == 0x90:
                out[note] = velocity
        return out

    def close(self) -> None:
        self.out.close_port()
        self.leds.close_port()
        del self.out, self.leds


def midi_config(state_dir: str | None = None) -> Config:
    config = server_config(HOST)
    overrides: dict[str, object] = {
        "midi.inputs": (CONTROLLER + ":knobs",),
        "midi.outputs": (CONTROLLER + "-leds:pads",),
        "midi.api": "jack",
    }
    if state_dir is not None:
        overrides["server.state_dir"] = state_dir
    return config.with_overrides(overrides)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_learn_maps_a_knob_that_moves_its_command_and_survives_a_restart(jack: str) -> None:
    controller = Controller()
    try:
        config = midi_config()
        async with running(config, model=tiny_model()) as run:
            engine = run.engine
            assert run.app.status()["midi"]["inputs"]
            engine.submit([parse("/midi/learn", ["/output/dim"])])
            await until(lambda: engine.patch.learning == "/output/dim", "learn mode")
            controller.cc(7, 127)  # touch the knob: learned
            await until(lambda: ("cc", 1, 7) in engine.patch.bindings, "the knob to be learned")
            assert engine.patch.learning == ""
            controller.cc(7, 0)  # the knob down: the master fader follows
            await until(lambda: engine.master.dim == 0.0, "dim 0 from the knob")
            controller.cc(7, 64)
            await until(lambda: abs(engine.master.dim - 64 / 127) < 1e-6, "dim at half")
            # Pads: a note mapped by hand jumps, and its LED lights for the current keyframe.
            engine.submit(
                [
                    parse("/midi/bind", ["note", 1, 36, "/keyframe/1/jump"]),
                    parse("/midi/bind", ["note", 1, 37, "/keyframe/2/jump"]),
                ]
            )
            await until(lambda: len(engine.patch.bindings) == 3, "the pad mappings")
            controller.note(37)
            await until(lambda: engine.play.current == 2, "the pad to jump to keyframe 2")
            await until(lambda: controller.lit().get(37) == 127, "pad 37 to light")
            controller.note(36)
            await until(lambda: engine.play.current == 1, "the pad to jump to keyframe 1")
            await asyncio.sleep(1.5)  # the show file is written at most once a second
        # A restart reads the mappings back from the show file.
        async with running(midi_config(config.server.state_dir), model=tiny_model()) as run:
            engine = run.engine
            await until(lambda: ("cc", 1, 7) in engine.patch.bindings, "mappings restored")
            assert engine.patch.bindings[("note", 1, 37)] == "/keyframe/2/jump"
            controller.cc(7, 127)
            await until(lambda: engine.master.dim == 1.0, "the restored knob to work")
    finally:
        controller.close()


async def test_an_unknown_port_stops_the_start_and_says_what_exists(jack: str) -> None:
    from server.lifecycle import StartupError

    config = server_config(HOST).with_overrides(
        {"midi.inputs": ("no-such-controller",), "midi.api": "jack"}
    )
    with pytest.raises(StartupError, match="no MIDI input 'no-such-controller'"):
        async with running(config, model=tiny_model()):
            pass
