"""MIDI mapping without ports: CCs, 14-bit CCs, notes, learn, LEDs and the clock."""

from __future__ import annotations

import pytest

from controllers.midi import Event, MidiClock, MidiDecoder, find_port, leds
from server.commands import Change, parse
from server.patch import Patch


def patched(*binds: list[object]) -> Patch:
    patch = Patch()
    for args in binds:
        patch.apply(parse("/midi/bind", args))
    return patch


def test_a_cc_scales_to_its_command_and_a_note_fires() -> None:
    patch = patched(
        ["cc", 1, 7, "/output/dim"],
        ["cc", 2, 1, "/latent/dir/3"],
        ["note", 10, 36, "/keyframe/2/jump"],
        ["cc", 1, 64, "/output/invert"],
    )
    decode = MidiDecoder().decode
    (dim,) = decode(Event("cc", 1, 7, 127), patch.tables)
    assert (dim.address, dim.args) == ("/output/dim", (1.0,))
    (offset,) = decode(Event("cc", 2, 1, 0), patch.tables)
    assert offset.args == (-1.0,)
    (jump,) = decode(Event("note_on", 10, 36, 100), patch.tables)
    assert (jump.address, jump.args) == ("/keyframe/2/jump", ())
    assert decode(Event("note_off", 10, 36, 0), patch.tables) == []
    assert decode(Event("cc", 1, 64, 100), patch.tables)[0].args == (1,)
    assert decode(Event("cc", 3, 7, 100), patch.tables) == []  # not mapped: nothing


def test_fourteen_bit_cc_combines_msb_and_lsb() -> None:
    patch = patched(["cc14", 1, 1, "/latent/truncation"])
    decoder = MidiDecoder()
    (coarse,) = decoder.decode(Event("cc", 1, 1, 64), patch.tables)
    (fine,) = decoder.decode(Event("cc", 1, 33, 127), patch.tables)
    assert coarse.args[0] == pytest.approx(2.0 * (64 << 7) / 16383)
    assert fine.args[0] == pytest.approx(2.0 * ((64 << 7) | 127) / 16383)


def test_learn_binds_the_first_control_and_spots_a_14_bit_one() -> None:
    patch = Patch()
    patch.apply(parse("/midi/learn", ["/output/dim"]))
    decoder = MidiDecoder()
    (bind,) = decoder.decode(Event("cc", 3, 20, 10), patch.tables)
    assert (bind.address, bind.args) == ("/midi/bind", ("cc", 3, 20, "/output/dim"))
    patch.apply(bind)
    assert patch.learning == "" and patch.tables.bindings == {("cc", 3, 20): "/output/dim"}
    # Learning a knob that sends an MSB then its LSB (+32) makes a 14-bit mapping.
    patch.apply(parse("/midi/learn", ["/latent/truncation"]))
    first = decoder.decode(Event("cc", 1, 2, 10), patch.tables)
    second = decoder.decode(Event("cc", 1, 34, 5), patch.tables)  # before the bind applies
    for command in [*first, *second]:
        patch.apply(command)
    assert patch.tables.bindings[("cc14", 1, 2)] == "/latent/truncation"
    assert ("cc", 1, 2) not in patch.tables.bindings


def test_pads_light_for_the_current_keyframe() -> None:
    patch = patched(["note", 1, 36, "/keyframe/1/jump"], ["note", 1, 37, "/keyframe/2/jump"])
    assert leds(Change("/keyframe/current", (2,)), patch.tables) == [(1, 36, 0), (1, 37, 127)]
    assert leds(Change("/latent/wander", (1,)), patch.tables) == []


def test_midi_clock_gives_the_tempo_and_beat() -> None:
    clock = MidiClock()
    clock.message("start", 0.0)
    samples = []
    tick = 60.0 / 125.0 / 24
    for i in range(24 * 3 + 1):
        sample = clock.message("clock", 1.0 + i * tick)
        if sample is not None:
            samples.append(sample)
    assert [s.beat for s in samples] == [1.0, 2.0, 3.0]
    assert samples[-1].bpm == pytest.approx(125.0)


def test_ports_are_found_by_name_or_part_of_it() -> None:
    names = ["nanoKONTROL2:nanoKONTROL2 MIDI 1 24:0", "Midi Through:Port-0"]
    assert find_port(names, "nanokontrol2") == names[0]
    assert find_port(names, "Midi Through:Port-0") == names[1]
    assert find_port(names, "APC40") is None
