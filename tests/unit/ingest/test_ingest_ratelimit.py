"""Client-side rate limiting and retry timing, on a simulated clock."""

from __future__ import annotations

import random

import pytest

from polycopy.ingest.dataapi import backoff_delay, parse_retry_after
from polycopy.ingest.ratelimit import RateLimiter, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_never_more_than_the_limit_in_any_window() -> None:
    time = FakeTime()
    bucket = TokenBucket.per_window(500, 10.0, time.clock)
    limiter = RateLimiter({"data": bucket}, clock=time.clock, sleep=time.sleep)
    sent: list[float] = []
    for _ in range(2_000):
        await limiter.acquire("data")
        sent.append(time.now)
    # sliding 10 s windows, starting at every request
    j = 0
    for i, at in enumerate(sent):
        while sent[j] < at - 10.0 + 1e-9:
            j += 1
        assert i - j + 1 <= 500
    assert sent[-1] == pytest.approx((2_000 - 50) / 45, rel=0.01)  # burst 50, then 45/s
    assert limiter.waits > 0


async def test_every_named_bucket_must_have_a_token() -> None:
    time = FakeTime()
    limiter = RateLimiter(
        {
            "data": TokenBucket(100.0, 100, time.clock),
            "positions": TokenBucket(1.0, 1, time.clock),
        },
        clock=time.clock,
        sleep=time.sleep,
    )
    await limiter.acquire("data", "positions")
    await limiter.acquire("data")
    assert time.now == 0
    await limiter.acquire("data", "positions")
    assert time.now == pytest.approx(1.0)


async def test_cool_down_holds_every_request() -> None:
    time = FakeTime()
    limiter = RateLimiter({"data": TokenBucket(100.0, 10, time.clock)}, time.clock, time.sleep)
    limiter.cool_down(5.0)
    limiter.cool_down(1.0)  # never shortens
    await limiter.acquire("data")
    assert time.now == pytest.approx(5.0)


def test_full_jitter_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.5, 8.0, rng.random) for n in range(1, 40)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 30
    ceilings = [backoff_delay(n, 0.5, 8.0, lambda: 1.0) for n in range(1, 8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("5", 5.0),
        ("0.25", 0.25),
        ("-3", 0.0),
        ("100000", 300.0),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    now = 1445412480.0  # 07:28:00 GMT that day
    assert parse_retry_after(header, now=now) == seconds
