"""Who may send OSC, and as whom: checked per datagram, before it is parsed.

OSC is accepted from loopback, from this machine's own addresses (not its
subnets: the audience shares the venue's Wi-Fi), from `osc.allow` and
`server.trusted`, and from hosts a performer has paired (`Pairings`). Every
OSC sender is a performer; admin-only commands are accepted only from loopback
and `server.trusted`. Interfaces come and go (a venue's Wi-Fi joined after
start), so this machine's addresses are re-read when an unknown sender shows
up, at most every `RESCAN_SECONDS`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable

import ifaddr

from controllers.osc_pairing import Pairings

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

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


def own_addresses() -> tuple[Network, ...]:
    """This machine's own addresses, each a network of one, loopback included."""
    out: list[Network] = list(LOOPBACK)
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            host = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                out.append(ipaddress.ip_network(host))
            except ValueError:
                continue  # a link-local address with a scope id, say
    return tuple(dict.fromkeys(out))


def _address(host: str) -> Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


class AllowList:
    """Decides per sender address: accepted at all (`allows`), and as an admin (`admin`)."""

    def __init__(
        self,
        entries: Iterable[str] = (),
        *,
        trusted: Iterable[str] = (),
        trust_loopback: bool = True,
        pairings: Pairings | None = None,
    ) -> None:
        trusted_networks = parse_networks(trusted)
        self._configured = (*parse_networks(entries), *trusted_networks)
        self._admins = (*LOOPBACK, *trusted_networks) if trust_loopback else trusted_networks
        self._own = own_addresses()
        self._scanned = time.monotonic()
        self.pairings = pairings if pairings is not None else Pairings()

    @property
    def networks(self) -> tuple[Network, ...]:
        """The addresses and networks allowed without pairing, now."""
        return (*self._own, *self._configured)

    def allows(self, host: str) -> bool:
        """True if OSC from `host` is accepted (as a performer's)."""
        address = _address(host)
        if address is None:
            return False
        return str(address) in self.pairings or self._fixed(address)

    def fixed(self, host: str) -> bool:
        """True if `host` is accepted without pairing: this machine, osc.allow, server.trusted."""
        address = _address(host)
        return address is not None and self._fixed(address)

    def admin(self, host: str) -> bool:
        """True if `host` may send admin-only commands: loopback or server.trusted."""
        address = _address(host)
        return address is not None and _within(address, self._admins)

    def _fixed(self, address: Address) -> bool:
        if _within(address, self._configured) or _within(address, self._own):
            return True
        if time.monotonic() - self._scanned > RESCAN_SECONDS:
            self._own = own_addresses()
            self._scanned = time.monotonic()
            return _within(address, self._own)
        return False
