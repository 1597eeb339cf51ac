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
from server.addresses import LOOPBACK, Address, Network, parse_networks, peer_address, within

logger = logging.getLogger(__name__)

RESCAN_SECONDS = 10.0


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
        address = peer_address(host)
        if address is None:
            return False
        return str(address) in self.pairings or self._fixed(address)

    def fixed(self, host: str) -> bool:
        """True if `host` is accepted without pairing: this machine, osc.allow, server.trusted."""
        address = peer_address(host)
        return address is not None and self._fixed(address)

    def admin(self, host: str) -> bool:
        """True if `host` may send admin-only commands: loopback or server.trusted."""
        address = peer_address(host)
        return address is not None and within(address, self._admins)

    def _fixed(self, address: Address) -> bool:
        if within(address, self._configured) or within(address, self._own):
            return True
        if time.monotonic() - self._scanned > RESCAN_SECONDS:
            self._own = own_addresses()
            self._scanned = time.monotonic()
            return within(address, self._own)
        return False
