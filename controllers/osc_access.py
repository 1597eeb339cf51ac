"""Who may send OSC: an allow-list of addresses and networks, checked per datagram.

The default, for a laptop and a tablet on one network, is loopback plus the
subnets of this machine's own interfaces. Interfaces come and go (a venue's
Wi-Fi joined after start), so a default list is re-read when an unknown sender
shows up, at most every `RESCAN_SECONDS`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable

import ifaddr

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RESCAN_SECONDS = 10.0
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


def interface_networks() -> tuple[Network, ...]:
    """The subnets of this machine's own interfaces, loopback included."""
    out: list[Network] = list(LOOPBACK)
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            host = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                out.append(ipaddress.ip_network(f"{host}/{ip.network_prefix}", strict=False))
            except ValueError:
                continue  # a link-local address with a scope id, say
    return tuple(dict.fromkeys(out))


class AllowList:
    """Decides per sender address; an empty `entries` means the interface default."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        configured = parse_networks(entries)
        self._default = not configured
        self._networks = configured or interface_networks()
        self._scanned = time.monotonic()

    @property
    def networks(self) -> tuple[Network, ...]:
        """The networks allowed now."""
        return self._networks

    def allows(self, host: str) -> bool:
        """True if OSC from `host` is accepted."""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self._match(address):
            return True
        if self._default and time.monotonic() - self._scanned > RESCAN_SECONDS:
            self._networks = interface_networks()
            self._scanned = time.monotonic()
            return self._match(address)
        return False

    def _match(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address.version == net.version and address in net for net in self._networks)
