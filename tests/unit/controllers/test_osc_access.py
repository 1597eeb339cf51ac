"""The OSC allow-list: configured entries, the interface default, and config checks."""

from __future__ import annotations

import ipaddress

import pytest

from controllers.osc_access import AllowList, own_addresses
from controllers.osc_pairing import Pairings
from server.config import Config, ConfigError


def test_configured_addresses_and_networks() -> None:
    allow = AllowList(["192.168.1.23", "10.0.0.0/24", "fd00::/8"])
    assert allow.allows("192.168.1.23")
    assert not allow.allows("192.168.1.24")
    assert allow.allows("10.0.0.200")
    assert allow.allows("::ffff:10.0.0.7")  # an IPv4 sender on a dual-stack socket
    assert allow.allows("fd00::1")
    assert allow.allows("127.0.0.1")  # this machine always may
    assert not allow.allows("not an address")


def test_default_is_this_machine_alone_not_its_subnets() -> None:
    allow = AllowList()
    assert allow.allows("127.0.0.1") and allow.allows("::1")
    assert not allow.allows("203.0.113.9")  # TEST-NET-3: no interface of ours
    assert ipaddress.ip_network("127.0.0.0/8") in own_addresses()
    # Every address of ours is a network of one: a neighbour on the same Wi-Fi is not in.
    assert all(net.prefixlen == net.max_prefixlen for net in own_addresses()[2:])
    for net in own_addresses()[2:]:
        if net.version == 4 and not net.network_address.is_loopback:
            neighbour = str(ipaddress.ip_address(int(net.network_address) ^ 1))  # same /31
            assert allow.allows(str(net.network_address))
            assert not allow.allows(neighbour)


def test_paired_hosts_play_and_only_loopback_and_trusted_are_admins() -> None:
    pairings = Pairings()
    allow = AllowList(["192.168.1.0/24"], trusted=["10.9.0.5"], pairings=pairings)
    assert not allow.allows("203.0.113.9")
    pairings.pair("::ffff:203.0.113.9")
    assert allow.allows("203.0.113.9") and not allow.fixed("203.0.113.9")
    assert allow.allows("10.9.0.5") and allow.fixed("10.9.0.5")
    assert allow.admin("127.0.0.1") and allow.admin("10.9.0.5")
    assert not allow.admin("203.0.113.9") and not allow.admin("192.168.1.7")
    assert not AllowList(trust_loopback=False).admin("127.0.0.1")
    pairings.unpair("203.0.113.9")
    assert not allow.allows("203.0.113.9")


def test_a_bad_entry_fails_at_start_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"osc\.allow"):
        Config().with_overrides({"osc.allow": ["192.168.1.300"]})
    with pytest.raises(ValueError, match="not an address"):
        AllowList(["lan"])
