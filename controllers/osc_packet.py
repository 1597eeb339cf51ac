"""OSC 1.0 datagrams to Python values and back, every type tag included (no I/O).

Our own parser because python-osc 1.10 misreads some tags controllers send:
it skips a `c` (char) tag without consuming its four bytes, so whatever follows
is read from the wrong offset (`/latent/speed ,cf a 3.0` reads 1.36e-43). The
encoder for replies and feedback lives next to it, so one module holds both
directions of the wire format and a round trip tests them against each other.

Values: `i` `h` -> int; `f` `d` -> float; `s` `S` -> str; `T` `F` -> bool;
`N` -> None; `I` -> IMPULSE; `c` -> Char; `r` -> Rgba; `m` -> Midi;
`b` -> bytes; `t` -> TimeTag; `[` ... `]` -> list. `encode` writes the same
values back, choosing the tag from the Python type as python-osc's builder did:
int -> `i` (`h` past 32 bits), float -> `f`, bool -> `T`/`F`, None -> `N`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

# Limits
MAX_MESSAGES = 64  # messages in one packet, bundles unpacked
MAX_DEPTH = 8  # bundles inside bundles
MAX_ARRAY_DEPTH = 8  # arrays inside arrays
# Arguments in one message, arrays' brackets not counted. No command takes more
# than a handful; a 64 KB datagram of 12,900 empty strings is refused before
# one of them is read.
MAX_ARGUMENTS = 64

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


class OscEncodeError(ValueError):
    """A value no OSC type tag carries; the message names it."""


def encode(address: str, args: Iterable[object] = ()) -> bytes:
    """One OSC message as a datagram; OscEncodeError for an address or value OSC cannot carry."""
    if not address.startswith("/"):
        raise OscEncodeError(f"an OSC address starts with '/': {address!r}")
    tags: list[str] = []
    payload: list[bytes] = []
    for value in args:
        _encode_value(value, tags, payload, depth=0)
    return _pad_string(address) + _pad_string("," + "".join(tags)) + b"".join(payload)


def _pad_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    if b"\0" in raw:
        raise OscEncodeError(f"an OSC string cannot hold a null character: {text[:40]!r}")
    return raw + b"\0" * (4 - len(raw) % 4)  # at least one null, then to a multiple of four


def _encode_value(value: object, tags: list[str], payload: list[bytes], depth: int) -> None:
    # bool before int: True is an int in Python, but T on the wire.
    if value is True or value is False:
        tags.append("T" if value else "F")
    elif value is None:
        tags.append("N")
    elif value is IMPULSE:
        tags.append("I")
    elif isinstance(value, int):
        wide = value.bit_length() > 31  # as python-osc: -2**31 goes out as `h` too
        if not -(2**63) <= value < 2**63:
            raise OscEncodeError(f"{value} does not fit a 64-bit OSC integer")
        tags.append("h" if wide else "i")
        payload.append(struct.pack(">q" if wide else ">i", value))
    elif isinstance(value, float):
        tags.append("f")
        payload.append(struct.pack(">f", value))
    elif isinstance(value, str):
        tags.append("s")
        payload.append(_pad_string(value))
    elif isinstance(value, bytes):
        tags.append("b")
        payload.append(struct.pack(">i", len(value)) + value + b"\0" * (-len(value) % 4))
    elif isinstance(value, Char):
        tags.append("c")
        payload.append(struct.pack(">I", ord(value.value)))
    elif isinstance(value, Rgba):
        tags.append("r")
        payload.append(struct.pack(">4B", value.r, value.g, value.b, value.a))
    elif isinstance(value, Midi):
        tags.append("m")
        payload.append(struct.pack(">4B", value.port, value.status, value.data1, value.data2))
    elif isinstance(value, TimeTag):
        tags.append("t")
        payload.append(struct.pack(">II", value.seconds, value.fraction))
    elif isinstance(value, list):
        if depth >= MAX_ARRAY_DEPTH:
            raise OscEncodeError(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
        tags.append("[")
        for item in value:
            _encode_value(item, tags, payload, depth + 1)
        tags.append("]")
    else:
        raise OscEncodeError(f"no OSC type tag carries a {type(value).__name__}: {value!r}")


def parse_packet(data: bytes) -> list[OscMessage]:
    """Every message in a datagram (a message, or a bundle of them), or OscParseError.

    The datagram is read in place, by offsets into one bytes object: no slice
    is copied per bundle element or per string, so the cost is linear in its size.
    """
    out: list[OscMessage] = []
    _packet(bytes(data), 0, len(data), out, depth=0)
    return out


def _packet(data: bytes, start: int, end: int, out: list[OscMessage], depth: int) -> None:
    if start >= end:
        raise OscParseError("empty packet")
    if data.startswith(_BUNDLE, start, end):
        _bundle(data, start, end, out, depth)
    elif data[start] == ord("/"):
        if len(out) >= MAX_MESSAGES:
            raise OscParseError(f"more than {MAX_MESSAGES} messages in one packet")
        out.append(_message(data, start, end))
    else:
        raise OscParseError("neither an OSC message (starts with '/') nor a #bundle")


def _bundle(data: bytes, start: int, end: int, out: list[OscMessage], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise OscParseError(f"bundles nested more than {MAX_DEPTH} deep")
    if end - start < 16:
        raise OscParseError("bundle shorter than its header")
    offset = start + 16  # "#bundle\0" and the time tag, which we do not wait for
    while offset < end:
        if offset + 4 > end:
            raise OscParseError(f"bundle element size cut off at byte {offset - start}")
        (size,) = struct.unpack_from(">i", data, offset)
        offset += 4
        if size <= 0 or size % 4 or offset + size > end:
            raise OscParseError(
                f"bundle element of {size} bytes at byte {offset - 4 - start} is invalid"
            )
        _packet(data, offset, offset + size, out, depth + 1)
        offset += size


def _message(data: bytes, start: int, end: int) -> OscMessage:
    address, offset = _string(data, start, end, "address")
    if offset >= end:
        # OSC 1.0 lets old senders omit the type tags: no arguments.
        return OscMessage(address, "", ())
    tags, offset = _string(data, offset, end, "type tags")
    if not tags.startswith(","):
        raise OscParseError(f"{address}: type tags must start with ',', got {tags[:20]!r}")
    tags = tags[1:]
    count = len(tags) - tags.count("[") - tags.count("]")
    if count > MAX_ARGUMENTS:
        # Refused before any value is read: the cost of a huge message is one scan.
        raise OscParseError(f"{address}: {count} arguments, at most {MAX_ARGUMENTS}")
    reader = _Reader(data, offset, end, address)
    args, stop = reader.values(tags, 0, depth=0)
    if stop != len(tags):
        raise OscParseError(f"{address}: ']' without '[' in type tags {tags[:40]!r}")
    return OscMessage(address, tags, tuple(args))


def _string(data: bytes, offset: int, end: int, what: str) -> tuple[str, int]:
    stop = data.find(b"\0", offset, end)
    if stop < 0:
        raise OscParseError(f"{what} at byte {offset} is not null-terminated")
    try:
        text = data[offset:stop].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OscParseError(f"{what} at byte {offset} is not UTF-8") from exc
    return text, offset + ((stop - offset) // 4 + 1) * 4  # padded to a multiple of four


class _Reader:
    """Reads argument values in the order of the type tags."""

    def __init__(self, data: bytes, offset: int, end: int, address: str) -> None:
        self.data = data
        self.offset = offset
        self.end = end
        self.address = address

    def take(self, size: int, tag: str) -> int:
        """The offset of the next `size` bytes, which are then consumed."""
        if self.offset + size > self.end:
            raise OscParseError(f"{self.address}: the '{tag}' argument is cut off")
        at = self.offset
        self.offset += size
        return at

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
            return struct.unpack_from(">i", self.data, self.take(4, tag))[0]
        if tag == "f":
            return struct.unpack_from(">f", self.data, self.take(4, tag))[0]
        if tag == "h":
            return struct.unpack_from(">q", self.data, self.take(8, tag))[0]
        if tag == "d":
            return struct.unpack_from(">d", self.data, self.take(8, tag))[0]
        if tag in "sS":
            text, self.offset = _string(self.data, self.offset, self.end, f"{self.address}: string")
            return text
        if tag == "b":
            (size,) = struct.unpack_from(">i", self.data, self.take(4, tag))
            if size < 0:
                raise OscParseError(f"{self.address}: blob of negative size")
            at = self.take(size, tag)
            self.take(-size % 4, tag)  # padding
            blob = self.data[at : at + size]
            return blob
        if tag == "c":
            (code,) = struct.unpack_from(">I", self.data, self.take(4, tag))
            if code > 0x10FFFF:
                raise OscParseError(f"{self.address}: char code {code} is not a character")
            return Char(chr(code))
        if tag == "r":
            return Rgba(*struct.unpack_from(">4B", self.data, self.take(4, tag)))
        if tag == "m":
            return Midi(*struct.unpack_from(">4B", self.data, self.take(4, tag)))
        if tag == "t":
            return TimeTag(*struct.unpack_from(">II", self.data, self.take(8, tag)))
        if tag == "T":
            return True
        if tag == "F":
            return False
        if tag == "N":
            return None
        if tag == "I":
            return IMPULSE
        raise OscParseError(f"{self.address}: unknown type tag {tag!r}")
