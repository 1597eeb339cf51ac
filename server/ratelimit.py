"""One keyed token bucket: how often each client, host or sender may act, averaged, with a burst.

The websocket edge keeps one bucket per connection (messages, offers); OSC keeps
one per sending host, for packets and for `/error` replies. All use this class,
so a limit means the same thing on every transport. Torch-free and I/O-free:
the vocabulary layer, importable by `server/http` and `controllers/` alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class TokenBucket:
    """`rate` actions a second on average and `burst` at once, for each key.

    `take(key)` spends one of that key's tokens, or says no. A key not seen
    before starts full. Past `max_keys` distinct keys the least recently used
    is forgotten, so memory stays bounded (forgetting only refills a bucket).
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float | None = None,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        burst = rate if burst is None else burst
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")
        if max_keys < 1:
            raise ValueError("a bucket needs room for at least one key")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._levels: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at), LRU order
        self.refused = 0

    def take(self, key: Hashable = None) -> bool:
        """Spend one of `key`'s tokens if it has one; count a refusal if not."""
        now = self._clock()
        level, at = self._levels.pop(key, (self.burst, now))
        level = min(self.burst, level + (now - at) * self.rate)
        if len(self._levels) >= self._max_keys:
            del self._levels[next(iter(self._levels))]  # the least recently used
        allowed = level >= 1.0
        self._levels[key] = (level - 1.0 if allowed else level, now)
        if not allowed:
            self.refused += 1
        return allowed

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._levels)
