"""Our OSC packet parser, every type tag, and OSC values turned into command arguments."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.osc import command_args
from controllers.osc_packet import (
    IMPULSE,
    MAX_ARGUMENTS,
    MAX_DEPTH,
    Char,
    Midi,
    OscMessage,
    OscParseError,
    Rgba,
    TimeTag,
    parse_packet,
)
from server.commands import CommandError, lookup


def pad(raw: bytes) -> bytes:
    """An OSC string: null-terminated, padded to four bytes."""
    raw += b"\0"
    return raw + b"\0" * (-len(raw) % 4)


def message(address: str, tags: str, *payload: bytes) -> bytes:
    return pad(address.encode()) + pad(b"," + tags.encode()) + b"".join(payload)


def bundle(*elements: bytes) -> bytes:
    body = b"#bundle\0" + struct.pack(">Q", 1)
    return body + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def test_every_tag_is_read_at_the_right_offset() -> None:
    data = message(
        "/all",
        "ifhdsScrmbtTFNI[if]f",
        struct.pack(">i", -7),
        struct.pack(">f", 0.5),
        struct.pack(">q", 2**40),
        struct.pack(">d", 0.25),
        pad(b"hello"),
        pad(b"sym"),
        struct.pack(">I", ord("a")),
        bytes([1, 2, 3, 4]),
        bytes([0, 0x90, 64, 127]),
        struct.pack(">i", 5) + b"abcde\0\0\0",
        struct.pack(">II", 3, 4),
        struct.pack(">i", 9),
        struct.pack(">f", 1.5),
        struct.pack(">f", 3.0),
    )
    (parsed,) = parse_packet(data)
    assert parsed.address == "/all"
    assert parsed.args == (
        -7,
        0.5,
        2**40,
        0.25,
        "hello",
        "sym",
        Char("a"),
        Rgba(1, 2, 3, 4),
        Midi(0, 0x90, 64, 127),
        b"abcde",
        TimeTag(3, 4),
        True,
        False,
        None,
        IMPULSE,
        [9, 1.5],
        3.0,
    )


def test_a_char_before_a_float_keeps_the_float() -> None:
    # python-osc skips the char's four bytes and reads 3.0 as 1.36e-43.
    (parsed,) = parse_packet(
        message("/latent/speed", "cf", struct.pack(">I", ord("a")), struct.pack(">f", 3.0))
    )
    assert parsed.args == (Char("a"), 3.0)


def test_bundles_nest_up_to_a_bound() -> None:
    inner = message("/x", "i", struct.pack(">i", 1))
    assert [m.args for m in parse_packet(bundle(bundle(inner), inner))] == [(1,), (1,)]
    deep = inner
    for _ in range(64):
        deep = bundle(deep)
    with pytest.raises(OscParseError, match="nested"):
        parse_packet(deep)
    ok = inner
    for _ in range(MAX_DEPTH):
        ok = bundle(ok)
    assert len(parse_packet(ok)) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"/no-terminator",
        message("/x", "i"),  # int cut off
        message("/x", "f", b"\0\0"),
        message("/x", "b", struct.pack(">i", 100)),  # blob longer than the packet
        message("/x", "[i", struct.pack(">i", 1)),
        message("/x", "i]", struct.pack(">i", 1)),
        message("/x", "q", struct.pack(">i", 1)),  # no such tag
        pad(b"/x") + pad(b"i"),  # tags without the comma
        bundle(b"xyz\0"),  # an element that is not a message
        b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", 400),
    ],
)
def test_broken_packets_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(OscParseError):
        parse_packet(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_a_parse_error(data: bytes) -> None:
    with contextlib.suppress(OscParseError):
        parse_packet(data)


def args_for(address: str, tags: str, *values: object) -> list[object]:
    spec, _ = lookup(address)
    return command_args(OscMessage(address, tags, values), spec)


def test_booleans_triggers_and_numbers_as_command_arguments() -> None:
    assert args_for("/latent/wander", "T", True) == [1]
    assert args_for("/latent/wander", "F", False) == [0]
    assert args_for("/sequence/stop", "I", IMPULSE) == []
    assert args_for("/keyframe/next", "N", None) == []
    assert args_for("/latent/speed", "d", 0.25) == [0.25]
    assert args_for("/latent/seed", "h", 2**20) == [2**20]
    assert args_for("/latent/speed", "s", "?") == ["?"]


@pytest.mark.parametrize(
    ("address", "tags", "values", "reason"),
    [
        ("/latent/speed", "s", ("0.5",), "expected a number, got the string '0.5'"),
        ("/latent/wander", "I", (IMPULSE,), "impulse (I) is a trigger"),
        ("/latent/speed", "c", (Char("a"),), "char (c)"),
        ("/latent/speed", "r", (Rgba(1, 2, 3, 4),), "RGBA colour (r)"),
        ("/latent/speed", "m", (Midi(0, 1, 2, 3),), "MIDI message (m)"),
        ("/latent/speed", "b", (b"x",), "blob (b)"),
        ("/latent/speed", "t", (TimeTag(1, 2),), "time tag (t)"),
        ("/latent/xy", "[ff]", ([0.1, 0.2],), "array"),
    ],
)
def test_values_no_command_takes_are_refused_with_a_reason(
    address: str, tags: str, values: tuple[object, ...], reason: str
) -> None:
    with pytest.raises(CommandError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        args_for(address, tags, *values)


def test_a_message_of_many_arguments_is_refused_before_its_values_are_read():
    # The security pass's flood: 64 KB of 12,900 empty strings in one message.
    flood = message("/latent/xy", "s" * 12_900, *(pad(b"") for _ in range(12_900)))
    assert len(flood) < 65_536
    with pytest.raises(OscParseError, match=f"12900 arguments, at most {MAX_ARGUMENTS}"):
        parse_packet(flood)
    # The same with its strings cut off: refused by the count, not by reading them.
    with pytest.raises(OscParseError, match="arguments, at most"):
        parse_packet(message("/latent/xy", "s" * (MAX_ARGUMENTS + 1)))


def test_the_cap_counts_values_not_brackets():
    strings = [pad(f"v{i}".encode()) for i in range(MAX_ARGUMENTS)]
    (parsed,) = parse_packet(message("/a", "[" + "s" * MAX_ARGUMENTS + "]", *strings))
    assert parsed.args == ([f"v{i}" for i in range(MAX_ARGUMENTS)],)


def test_strings_in_bundled_messages_read_at_their_own_offsets():
    first = message("/a", "ss", pad(b"one"), pad(b"three"))
    second = message("/b", "si", pad(b"two"), struct.pack(">i", 7))
    assert parse_packet(bundle(first, second)) == [
        OscMessage("/a", "ss", ("one", "three")),
        OscMessage("/b", "si", ("two", 7)),
    ]
