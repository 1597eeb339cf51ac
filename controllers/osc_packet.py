"""OSC 1.0 datagrams to Python values, every type tag included (no I/O).

Our own parser because python-osc 1.10 misreads some tags controllers send:
it skips a `c` (char) tag without consuming its four bytes, so whatever follows
is read from the wrong offset (`/latent/speed ,cf a 3.0` reads 1.36e-43). We
keep python-osc for building replies.

Values: `i` `h` -> int; `f` `d` -> float; `s` `S` -> str; `T` `F` -> bool;
`N` -> None; `I` -> IMPULSE; `c` -> Char; `r` -> Rgba; `m` -> Midi;
`b` -> bytes; `t` -> TimeTag; `[` ... `]` -> list.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Limits
MAX_MESSAGES = 64  # messages in one packet, bundles unpacked
MAX_DEPTH = 8  # bundles inside bundles
MAX_ARRAY_DEPTH = 8  # arrays inside arrays

_BUNDLE = b"#bundle\0"


class OscParseError(ValueError):
    """Bytes that are not an OSC packet; the message says where and why."""


@dataclass(frozen=True)
class Impulse:
    """`I`: an argument-less trigger (OSC 1.1's "impulse", 1.0's "infinitum")."""


IMPULSE = Impulse()


@dataclass(frozen=True)
class Char:
    """`c`: one character, sent as a 32-bit code."""

    value: str


@dataclass(frozen=True)
class Rgba:
    """`r`: a 32-bit RGBA colour."""

    r: int
    g: int
    b: int
    a: int


@dataclass(frozen=True)
class Midi:
    """`m`: a four-byte MIDI message (port id, status, data1, data2)."""

    port: int
    status: int
    data1: int
    data2: int


@dataclass(frozen=True)
class TimeTag:
    """`t`: an NTP time tag (seconds since 1900, fraction of 2^32)."""

    seconds: int
    fraction: int


@dataclass(frozen=True)
class OscMessage:
    """One message: its address, its type tags (without the comma), its values."""

    address: str
    tags: str
    args: tuple[object, ...]


def parse_packet(data: bytes) -> list[OscMessage]:
    """Every message in a datagram (a message, or a bundle of them), or OscParseError."""
    out: list[OscMessage] = []
    _packet(memoryview(data), out, depth=0)
    return out


def _packet(data: memoryview, out: list[OscMessage], depth: int) -> None:
    if len(data) == 0:
        raise OscParseError("empty packet")
    if bytes(data[:8]) == _BUNDLE:
        _bundle(data, out, depth)
    elif data[0] == ord("/"):
        if len(out) >= MAX_MESSAGES:
            raise OscParseError(f"more than {MAX_MESSAGES} messages in one packet")
        out.append(_message(data))
    else:
        raise OscParseError("neither an OSC message (starts with '/') nor a #bundle")


def _bundle(data: memoryview, out: list[OscMessage], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise OscParseError(f"bundles nested more than {MAX_DEPTH} deep")
    if len(data) < 16:
        raise OscParseError("bundle shorter than its header")
    offset = 16  # "#bundle\0" and the time tag, which we do not wait for
    while offset < len(data):
        if offset + 4 > len(data):
            raise OscParseError(f"bundle element size cut off at byte {offset}")
        (size,) = struct.unpack_from(">i", data, offset)
        offset += 4
        if size <= 0 or size % 4 or offset + size > len(data):
            raise OscParseError(f"bundle element of {size} bytes at byte {offset - 4} is invalid")
        _packet(data[offset : offset + size], out, depth + 1)
        offset += size


def _message(data: memoryview) -> OscMessage:
    address, offset = _string(data, 0, "address")
    if offset >= len(data):
        # OSC 1.0 lets old senders omit the type tags: no arguments.
        return OscMessage(address, "", ())
    tags, offset = _string(data, offset, "type tags")
    if not tags.startswith(","):
        raise OscParseError(f"{address}: type tags must start with ',', got {tags[:20]!r}")
    tags = tags[1:]
    reader = _Reader(data, offset, address)
    args, end = reader.values(tags, 0, depth=0)
    if end != len(tags):
        raise OscParseError(f"{address}: ']' without '[' in type tags {tags!r}")
    return OscMessage(address, tags, tuple(args))


def _string(data: memoryview, offset: int, what: str) -> tuple[str, int]:
    end = bytes(data[offset:]).find(b"\0")
    if end < 0:
        raise OscParseError(f"{what} at byte {offset} is not null-terminated")
    raw = bytes(data[offset : offset + end])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OscParseError(f"{what} at byte {offset} is not UTF-8") from exc
    return text, offset + (end // 4 + 1) * 4  # padded to a multiple of four


class _Reader:
    """Reads argument values in the order of the type tags."""

    def __init__(self, data: memoryview, offset: int, address: str) -> None:
        self.data = data
        self.offset = offset
        self.address = address

    def take(self, size: int, tag: str) -> memoryview:
        if self.offset + size > len(self.data):
            raise OscParseError(f"{self.address}: the '{tag}' argument is cut off")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def values(self, tags: str, start: int, depth: int) -> tuple[list[object], int]:
        """Values for tags[start:] up to a closing ']' (or the end); where it stopped."""
        out: list[object] = []
        index = start
        while index < len(tags):
            tag = tags[index]
            if tag == "]":
                return out, index
            if tag == "[":
                if depth >= MAX_ARRAY_DEPTH:
                    raise OscParseError(f"{self.address}: arrays nested too deep")
                inner, index = self.values(tags, index + 1, depth + 1)
                if index >= len(tags):
                    raise OscParseError(f"{self.address}: '[' without ']' in type tags")
                out.append(inner)
            else:
                out.append(self.value(tag))
            index += 1
        return out, index

    def value(self, tag: str) -> object:
        if tag == "i":
            return struct.unpack(">i", self.take(4, tag))[0]
        if tag == "f":
            return struct.unpack(">f", self.take(4, tag))[0]
        if tag == "h":
            return struct.unpack(">q", self.take(8, tag))[0]
        if tag == "d":
            return struct.unpack(">d", self.take(8, tag))[0]
        if tag in "sS":
            text, self.offset = _string(self.data, self.offset, f"{self.address}: string")
            return text
        if tag == "b":
            (size,) = struct.unpack(">i", self.take(4, tag))
            if size < 0:
                raise OscParseError(f"{self.address}: blob of negative size")
            blob = bytes(self.take(size, tag))
            self.take(-size % 4, tag)  # padding
            return blob
        if tag == "c":
            (code,) = struct.unpack(">I", self.take(4, tag))
            if code > 0x10FFFF:
                raise OscParseError(f"{self.address}: char code {code} is not a character")
            return Char(chr(code))
        if tag == "r":
            return Rgba(*struct.unpack(">4B", self.take(4, tag)))
        if tag == "m":
            return Midi(*struct.unpack(">4B", self.take(4, tag)))
        if tag == "t":
            return TimeTag(*struct.unpack(">II", self.take(8, tag)))
        if tag == "T":
            return True
        if tag == "F":
            return False
        if tag == "N":
            return None
        if tag == "I":
            return IMPULSE
        raise OscParseError(f"{self.address}: unknown type tag {tag!r}")
