"""Roles, tokens, the Origin check and token buckets, without a server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.http.auth import Access, AccessError, Role, Tokens, load_tokens, message_role
from server.ratelimit import TokenBucket

TOKENS = Tokens(performer="p" * 24, admin="a" * 24)


def test_tokens_are_made_once_kept_private_and_configured_ones_win(tmp_path: Path) -> None:
    first = load_tokens(tmp_path)
    assert len(first.performer) >= 16 and first.performer != first.admin
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert load_tokens(tmp_path) == first  # a restart keeps the links working
    configured = load_tokens(tmp_path, performer="x" * 20)
    assert configured == Tokens(performer="x" * 20, admin=first.admin)
    (tmp_path / "tokens.json").write_text("{not json")
    assert load_tokens(tmp_path).admin != first.admin  # unreadable: new ones, said in the log


def test_roles_come_from_tokens_and_trusted_addresses() -> None:
    access = Access(tokens=TOKENS, trusted=["192.168.5.0/24"])
    assert access.role(remote="10.0.0.9", token=None) == Role.VIEWER
    assert access.role(remote="10.0.0.9", token=TOKENS.performer) == Role.PERFORMER
    assert access.role(remote="10.0.0.9", token=TOKENS.admin) == Role.ADMIN
    assert access.role(remote="127.0.0.1", token=None) == Role.ADMIN
    assert access.role(remote="::1", token="stale link") == Role.ADMIN
    assert access.role(remote="192.168.5.7", token=None) == Role.ADMIN
    assert access.role(remote="::ffff:127.0.0.1", token=None) == Role.ADMIN  # host "::"
    assert access.role(remote="::ffff:10.0.0.9", token=None) == Role.VIEWER
    with pytest.raises(AccessError, match="ask the performer"):
        access.role(remote="10.0.0.9", token="guess")
    strict = Access(tokens=TOKENS, trust_loopback=False)
    assert strict.role(remote="127.0.0.1", token=None) == Role.VIEWER
    assert strict.role(remote="not an address", token=None) == Role.VIEWER


def test_origin_must_be_this_server_or_allowed() -> None:
    access = Access(tokens=TOKENS, allowed_origins=["https://Visuals.example:8443/"])
    access.check_origin(None, ours=False)  # not a browser
    access.check_origin("http://10.0.0.2:8765", ours=True)  # ServerNames said so
    access.check_origin("https://visuals.example:8443", ours=False)
    for origin in ("http://evil.example", "null", "http://10.0.0.2:8766", "http://10.0.0.2"):
        with pytest.raises(AccessError, match="allowed_origins"):
            access.check_origin(origin, ours=False)


def test_each_message_needs_its_role() -> None:
    extra = {"show/import": Role.ADMIN}
    assert message_role({"type": "offer", "sdp": "v=0"}, extra) == Role.VIEWER
    assert message_role({"type": "offer", "role": "camera"}, extra) == Role.PERFORMER
    assert message_role({"type": "offer", "role": "audio"}, extra) == Role.PERFORMER
    assert message_role({"address": "/latent/xy", "args": [0, 0]}, extra) == Role.PERFORMER
    assert message_role({"address": "/react/source", "args": ["file:a"]}, extra) == Role.ADMIN
    bundle = {"bundle": [{"address": "/latent/xy"}, {"address": "/react/source"}, 3]}
    assert message_role(bundle, extra) == Role.ADMIN
    assert message_role({"type": "show/import"}, extra) == Role.ADMIN
    assert message_role({"type": "ping"}, extra) == Role.VIEWER


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] += 0.25  # 2.5 tokens back
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 5
    assert bucket.refused == 8
    with pytest.raises(ValueError):
        TokenBucket(rate=0.0, burst=1.0)


def test_bad_access_settings_fail_at_start_with_the_key() -> None:
    from server.config import Config, ConfigError

    for key, value in (
        ("server.trusted", ["192.168.1.0/33"]),
        ("server.allowed_origins", ["evil.example"]),
        ("server.performer_token", "short"),
    ):
        with pytest.raises(ConfigError, match=key):
            Config().with_overrides({key: value})
