"""What `ganvj serve` prints: the LAN addresses to watch and to play, and a QR code.

The performer's link carries the token in its fragment (`/control#t=...`),
which a browser never sends to a server; the page keeps it. A phone scans the
QR code of that link from the terminal.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import ifaddr
import segno

from server.http.auth import Tokens


def lan_addresses(host: str) -> list[str]:
    """The IPv4 addresses a phone on the LAN can use: every interface's for a wildcard host."""
    if host not in ("0.0.0.0", "::", ""):
        return [host]
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):  # IPv6: a long URL nobody types
                continue
            address = ipaddress.ip_address(ip.ip)
            if not (address.is_loopback or address.is_link_local):
                found.append(ip.ip)
    return sorted(dict.fromkeys(found)) or ["127.0.0.1"]


@dataclass(frozen=True)
class Links:
    """The addresses one server is reached at."""

    watch: str
    play: str
    camera: str
    osc: str | None
    others: tuple[str, ...]  # more LAN addresses of this machine


def links(
    *, addresses: Sequence[str], port: int, tls: bool, tokens: Tokens, osc_port: int | None
) -> Links:
    """The viewer, performer and camera URLs on the first address, and the OSC target."""
    scheme = "https" if tls else "http"
    base = f"{scheme}://{addresses[0]}:{port}"
    return Links(
        watch=f"{base}/",
        play=f"{base}/control#t={tokens.performer}",
        camera=f"{base}/camera",
        osc=f"{addresses[0]}:{osc_port}" if osc_port is not None else None,
        others=tuple(addresses[1:]),
    )


def qr_text(url: str) -> str:
    """A QR code of `url` in half-block characters, for a terminal."""
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def announcement(found: Links, *, tls: bool, admin: str, qr: bool) -> str:
    """The text `ganvj serve` prints once it listens; its last line says "open <url>"."""
    lines = [
        f"ganvj: play     {found.play}",
        "ganvj:          (the performer's link: share it only with whoever plays)",
        f"ganvj: camera   {found.camera}" + ("" if tls else "  (phones need server.tls = true)"),
    ]
    if found.osc is not None:
        lines.append(f"ganvj: OSC      udp {found.osc}")
    if found.others:
        lines.append(f"ganvj: also at  {', '.join(found.others)}")
    lines.append(f"ganvj: admin token in {admin}")
    if qr:
        lines.append(qr_text(found.play).rstrip("\n"))
        lines.append("ganvj: scan to play from a phone")
    lines.append(f"ganvj: open {found.watch} to watch (Ctrl-C stops)")
    return "\n".join(lines)
