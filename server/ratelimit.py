"""Token buckets: how many messages a client may send, averaged, with a burst."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` actions a second on average, `burst` at once; `take()` says whether one may go."""

    def __init__(
        self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._level = burst
        self._at = clock()
        self.refused = 0

    def take(self) -> bool:
        """Spend one token if there is one; count a refusal if not."""
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now
        if self._level >= 1.0:
            self._level -= 1.0
            return True
        self.refused += 1
        return False
