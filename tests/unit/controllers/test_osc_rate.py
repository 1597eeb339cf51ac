"""The per-host OSC rate limit, a keyed token bucket: a flood is cut, other hosts pass."""

from __future__ import annotations

from server.ratelimit import TokenBucket


def test_a_flooding_host_is_cut_and_others_are_not() -> None:
    now = [1000.0]
    rate = TokenBucket(rate=100.0, clock=lambda: now[0])
    passed = sum(rate.take("10.0.0.9") for _ in range(1000))
    assert passed == 100  # the burst, then nothing until tokens refill
    assert rate.take("10.0.0.7")  # another host has its own bucket
    now[0] += 0.001
    assert not rate.take("10.0.0.9")
    now[0] += 0.049
    assert rate.take("10.0.0.9")  # refilled at 100/s: 5 tokens
    assert rate.refused == 901


def test_memory_is_bounded_by_distinct_hosts() -> None:
    rate = TokenBucket(rate=10.0, max_keys=8, clock=lambda: 5.0)
    for i in range(100):
        assert rate.take(f"10.0.{i}.1")
    assert len(rate) <= 8


def test_the_least_recently_used_host_is_forgotten_first() -> None:
    rate = TokenBucket(rate=1.0, max_keys=2, clock=lambda: 5.0)
    assert rate.take("flood") and not rate.take("flood")
    assert rate.take("a")
    assert not rate.take("flood")  # used again: now "a" is the oldest
    assert rate.take("b")  # forgets "a", keeps the flooder's empty bucket
    assert not rate.take("flood")
