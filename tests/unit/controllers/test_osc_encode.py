"""Our OSC encoder: our parser reads back what it wrote; python-osc builds the same bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pythonosc.osc_message_builder import OscMessageBuilder

from controllers.osc_packet import (
    IMPULSE,
    Char,
    Midi,
    OscEncodeError,
    OscMessage,
    Rgba,
    TimeTag,
    encode,
    parse_packet,
)

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=20)
BYTE = st.integers(0, 255)
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(width=32, allow_nan=False),
    TEXT,
    st.binary(max_size=20),
    st.booleans(),
    st.none(),
    st.just(IMPULSE),
    st.characters(exclude_categories=("Cs",)).map(Char),
    st.builds(Rgba, BYTE, BYTE, BYTE, BYTE),
    st.builds(Midi, BYTE, BYTE, BYTE, BYTE),
    st.builds(TimeTag, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
ADDRESS = TEXT.map(lambda text: "/" + text)


@given(ADDRESS, st.lists(VALUES, max_size=6))
def test_what_we_encode_our_parser_reads_back(address: str, args: list[object]) -> None:
    (back,) = parse_packet(encode(address, args))
    assert back.address == address
    assert list(back.args) == args


# The values feedback sends (python-osc built them before): the same bytes.
PLAIN = st.recursive(
    st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        TEXT,
        st.binary(min_size=1, max_size=20),  # python-osc refuses an empty blob
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=8,
)


@given(ADDRESS, st.lists(PLAIN, max_size=6))
def test_the_same_bytes_as_python_osc(address: str, args: list[object]) -> None:
    builder = OscMessageBuilder(address=address)
    for value in args:
        builder.add_arg(value)  # type: ignore[arg-type]
    assert encode(address, args) == builder.build().dgram


def test_integers_at_the_edges_of_32_and_64_bits() -> None:
    for value, tag in ((2**31 - 1, "i"), (-(2**31), "h"), (2**63 - 1, "h"), (-(2**63), "h")):
        assert parse_packet(encode("/n", [value])) == [OscMessage("/n", tag, (value,))]


def test_a_reply_reads_as_sent() -> None:
    data = encode("/error", ["/latent/speed", "out of range"])
    assert parse_packet(data) == [OscMessage("/error", "ss", ("/latent/speed", "out of range"))]
    assert parse_packet(encode("/react/state")) == [OscMessage("/react/state", "", ())]


@pytest.mark.parametrize(
    ("address", "args"),
    [
        ("no/slash", []),
        ("/x", [object()]),
        ("/x", [2**63]),
        ("/x", ["a\0b"]),
        ("/x", [(1, 2)]),  # a tuple is not an array: use a list
        ("/x", [[[[[[[[[[1]]]]]]]]]]),
    ],
)
def test_what_osc_cannot_carry_is_refused_with_a_reason(address: str, args: list[object]) -> None:
    with pytest.raises(OscEncodeError):
        encode(address, args)
