"""The OSC allow-list: configured entries, the interface default, and config checks."""

from __future__ import annotations

import ipaddress

import pytest

from controllers.osc_access import AllowList, interface_networks
from server.config import Config, ConfigError


def test_configured_addresses_and_networks() -> None:
    allow = AllowList(["192.168.1.23", "10.0.0.0/24", "fd00::/8"])
    assert allow.allows("192.168.1.23")
    assert not allow.allows("192.168.1.24")
    assert allow.allows("10.0.0.200")
    assert allow.allows("::ffff:10.0.0.7")  # an IPv4 sender on a dual-stack socket
    assert allow.allows("fd00::1")
    assert not allow.allows("127.0.0.1")  # a configured list replaces the default
    assert not allow.allows("not an address")


def test_default_is_loopback_and_this_machines_subnets() -> None:
    allow = AllowList()
    assert allow.allows("127.0.0.1") and allow.allows("::1")
    assert not allow.allows("203.0.113.9")  # TEST-NET-3: no interface of ours
    assert ipaddress.ip_network("127.0.0.0/8") in interface_networks()


def test_a_bad_entry_fails_at_start_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"osc\.allow"):
        Config().with_overrides({"osc.allow": ["192.168.1.300"]})
    with pytest.raises(ValueError, match="not an address"):
        AllowList(["lan"])
