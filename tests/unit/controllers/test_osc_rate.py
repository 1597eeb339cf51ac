"""The per-host OSC rate limit: a flood is cut, other hosts and later packets pass."""

from __future__ import annotations

from controllers.osc_access import SenderRate


def test_a_flooding_host_is_cut_and_others_are_not() -> None:
    rate = SenderRate(per_second=100.0)
    now = 1000.0
    passed = sum(rate.allows("10.0.0.9", now) for _ in range(1000))
    assert passed == 100  # the burst, then nothing until tokens refill
    assert rate.allows("10.0.0.7", now)  # another host has its own bucket
    assert not rate.allows("10.0.0.9", now + 0.001)
    assert rate.allows("10.0.0.9", now + 0.05)  # refilled at 100/s: 5 tokens


def test_memory_is_bounded_by_distinct_hosts() -> None:
    rate = SenderRate(per_second=10.0, max_hosts=8)
    for i in range(100):
        assert rate.allows(f"10.0.{i}.1", 5.0)
    assert len(rate._buckets) <= 8
