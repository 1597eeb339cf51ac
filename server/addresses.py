"""Network addresses as the edges judge them: peers, loopback, configured networks.

HTTP roles (server/http/auth.py) and OSC senders (controllers/osc_access.py)
decide by the same rules, so both read addresses here: an IPv4 client of an
IPv6 socket counts as its IPv4 address, and a scope id (`fe80::1%eth0`) is
dropped before parsing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """ "192.168.1.23" or "10.0.0.0/24" entries as networks; ValueError names a bad one."""
    out: list[Network] = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an address or a CIDR network: {exc}") from exc
    return tuple(out)


def peer_address(remote: str) -> Address | None:
    """A peer's address as the socket gives it; an IPv4 client of an IPv6 socket as IPv4."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address, networks: Iterable[Network]) -> bool:
    """Whether the address lies in one of the networks (of its own IP version)."""
    return any(address.version == net.version and address in net for net in networks)


def is_loopback(remote: str) -> bool:
    """Whether an address string is on this machine's loopback."""
    address = peer_address(remote)
    return address is not None and within(address, LOOPBACK)
