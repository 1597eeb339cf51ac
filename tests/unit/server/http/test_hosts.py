"""The Host and Origin checks against DNS rebinding, on fixed interface lists."""

from __future__ import annotations

import pytest

from server.http.hosts import ServerNames, split_host


def names(**kw: object) -> ServerNames:
    return ServerNames(
        hostnames=["Visuals.Example."],
        addresses=lambda: {"127.0.0.1", "::1", "10.0.0.2"},
        names=lambda: {"localhost", "venue-laptop", "venue-laptop.local"},
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("LocalHost:8765", ("localhost", 8765)),
        ("localhost.", ("localhost", None)),
        ("[::1]:8765", ("::1", 8765)),
        ("::1", ("::1", None)),
        ("10.0.0.2", ("10.0.0.2", None)),
        ("a:99999", None),
        ("a:x", None),
        ("[::1", None),
        ("", None),
        (":8765", None),
        ("x" * 400, None),
    ],
)
def test_split_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parsed


def test_only_our_names_with_our_port_are_accepted() -> None:
    server = names()
    for host in (
        None,  # no Host: not a browser
        "127.0.0.1:8765",
        "localhost:8765",
        "[::1]:8765",
        "10.0.0.2",
        "venue-laptop:8765",
        "venue-laptop.local:8765",
        "visuals.example:8765",
        "[::ffff:10.0.0.2]:8765",
    ):
        assert server.host_ok(host, port=8765), host
    for host in (
        "attacker.example:8765",  # DNS rebinding
        "localhost:8766",  # our name, another port
        "10.0.0.3:8765",
        "127.0.0.1.attacker.example",
        "",
        "localhost:8765:1",
    ):
        assert not server.host_ok(host, port=8765), host
    # The address the client reached counts even before a rescan lists it.
    assert server.host_ok("192.168.7.7:8765", port=8765, local_address="192.168.7.7")


def test_an_origin_is_ours_only_by_name_and_port_never_by_the_host_header() -> None:
    server = names()
    assert server.origin_ok("http://localhost:8765", port=8765)
    assert server.origin_ok("https://visuals.example", port=443)
    assert server.origin_ok("http://10.0.0.2", port=80)
    for origin in (
        "http://attacker.example:8765",
        "http://localhost:8766",
        "http://localhost",  # port 80
        "null",
        "file://localhost:8765",
        "http://[::1:8765",
    ):
        assert not server.origin_ok(origin, port=8765), origin


def test_addresses_are_read_again_after_a_while() -> None:
    now = [0.0]
    found = [{"127.0.0.1"}]
    server = ServerNames(addresses=lambda: found[0], names=set, clock=lambda: now[0])
    assert not server.host_ok("10.9.9.9", port=80)
    found[0] = {"127.0.0.1", "10.9.9.9"}  # DHCP gave us an address
    assert not server.host_ok("10.9.9.9", port=80)
    now[0] = 31.0
    assert server.host_ok("10.9.9.9", port=80)
