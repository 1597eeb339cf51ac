"""The names this server answers to: the Host and Origin checks against DNS rebinding.

A page on `attacker.example` whose name the attacker re-points at 127.0.0.1
(or at the venue laptop's address) runs in the victim's browser, and its
requests reach us with `Host: attacker.example:PORT` and the same Origin. The
Origin equals the Host, so an Origin check that compares the two passes; the
client is loopback, so it would be admin. The cure is to answer only Host
values that name this server: its addresses, `localhost`, the machine's host
name (and `NAME.local` for mDNS), and `server.hostnames`; and to take an
Origin as this server's only when its host is one of those names and its port
is ours. Pure apart from reading the interface list (`ifaddr`) and the host
name, which `ServerNames` does itself every `RESCAN_S` (DHCP may change them).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import ifaddr

RESCAN_S = 30.0  # interface addresses and the host name are read again this often
MAX_HOST_CHARS = 300  # a Host longer than any name plus a port


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` or `[v6][:port]` as (lower-case name, port); None if malformed."""
    value = value.strip().lower()
    if not value or len(value) > MAX_HOST_CHARS:
        return None
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address, no port
        name, port_text = value, None
    else:
        name, colon, port_text_or_empty = value.partition(":")
        port_text = port_text_or_empty if colon else None
    name = name.rstrip(".")  # "localhost." names the same host
    if not name:
        return None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or len(port_text) > 5 or not 0 < int(port_text) <= 65535:
        return None
    return name, int(port_text)


def normal_address(name: str) -> str | None:
    """An IP literal in one spelling (an IPv4-mapped IPv6 as IPv4, no zone); None for a name."""
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def interface_addresses() -> set[str]:
    """Every address of this machine's interfaces, loopback included."""
    found = {"127.0.0.1", "::1"}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            host = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = normal_address(host)
            if address is not None:
                found.add(address)
    return found


def machine_names() -> set[str]:
    """The host name, its fully qualified form, and `NAME.local` (mDNS)."""
    names = {"localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        name = name.strip().lower().rstrip(".")
        if name:
            names.add(name)
            names.add(name.split(".", 1)[0] + ".local")
    return names


class ServerNames:
    """Decides whether a Host header or an Origin names this server."""

    def __init__(
        self,
        *,
        hostnames: Iterable[str] = (),
        addresses: Callable[[], set[str]] = interface_addresses,
        names: Callable[[], set[str]] = machine_names,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = {n.strip().lower().rstrip(".") for n in hostnames if n.strip()}
        self._scan_addresses = addresses
        self._scan_names = names
        self._clock = clock
        self._known: set[str] = set()
        self._scanned = -RESCAN_S

    def known(self) -> set[str]:
        """Every name and address accepted now."""
        now = self._clock()
        if now - self._scanned >= RESCAN_S:
            self._scanned = now
            self._known = self._scan_addresses() | self._scan_names() | self._configured
        return self._known

    def names_us(self, name: str, *, local_address: str | None = None) -> bool:
        """Whether a host name or IP literal is this server (`local_address`: the socket's)."""
        address = normal_address(name)
        if address is not None:
            local = normal_address(local_address or "")
            return address == local or address in self.known()
        return name in self.known()

    def host_ok(self, host: str | None, *, port: int, local_address: str | None = None) -> bool:
        """A request's Host header: absent (not a browser), or our name with our port or none."""
        if host is None:
            return True
        parsed = split_host(host)
        if parsed is None:
            return False
        name, given = parsed
        return (given is None or given == port) and self.names_us(name, local_address=local_address)

    def origin_ok(self, origin: str, *, port: int, local_address: str | None = None) -> bool:
        """An Origin header names a page this server served: our name and our port."""
        try:
            parts = urlsplit(origin.strip().lower())
            given = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if given is None:
            given = 443 if parts.scheme == "https" else 80
        return given == port and self.names_us(
            parts.hostname.rstrip("."), local_address=local_address
        )
