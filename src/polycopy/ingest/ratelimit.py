"""Client-side rate limiting below the venue's limits (reliability requirement R16).

Token buckets per endpoint group plus a shared one, all taken together, and a global
cool-down that a 429 starts (honouring its Retry-After): no request leaves before it ends.
Time is injected (`clock`, `sleep`) so that tests can drive it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_EPSILON = 1e-9  # float refills land a hair short of a whole token


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    @classmethod
    def per_window(
        cls, requests: int, window_s: float, clock: Clock = time.monotonic
    ) -> TokenBucket:
        """A bucket that never lets more than `requests` through in any `window_s` window.

        Burst plus refill over one window equals `requests`: burst is a tenth of it.
        """
        burst = max(1.0, requests / 10)
        return cls(
            (requests - burst) / window_s if requests > burst else requests / window_s, burst, clock
        )

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._refill()
        missing = 1 - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self) -> None:
        self._refill()
        self._tokens -= 1


class RateLimiter:
    """Named buckets; `acquire(*names)` waits until every named bucket has a token."""

    def __init__(
        self,
        buckets: Mapping[str, TokenBucket],
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.buckets = dict(buckets)
        self._clock = clock
        self._sleep = sleep
        self._cool_until = 0.0
        self.waits = 0  # acquisitions that had to wait

    def cool_down(self, seconds: float) -> None:
        """Hold every request for `seconds` from now (never shortens a running cool-down)."""
        self._cool_until = max(self._cool_until, self._clock() + max(0.0, seconds))

    @property
    def cooling_for(self) -> float:
        return max(0.0, self._cool_until - self._clock())

    async def acquire(self, *names: str) -> bool:
        """Take a token from every named bucket; True when that meant waiting."""
        waited = False
        while True:
            delay = self.cooling_for
            if delay <= _EPSILON:
                delay = max((self.buckets[name].wait_time() for name in names), default=0.0)
                if delay <= _EPSILON:
                    for name in names:
                        self.buckets[name].take()
                    if waited:
                        self.waits += 1
                    return waited
            waited = True
            await self._sleep(delay)
