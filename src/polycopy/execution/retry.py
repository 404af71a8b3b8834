"""Bounded retries with capped, fully jittered exponential backoff (R15), via tenacity.

Only `TransientVenueError` is retried: the request provably was not acted upon, so sending
it again (for an order: the very same signed bytes) is safe. `Retry-After` is honoured.
Randomness and sleep are arguments, so tests can make them deterministic.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.wait import wait_base

from polycopy.execution.errors import TransientVenueError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 4  # after the first attempt
    base_s: float = 0.1
    cap_s: float = 2.0
    deadline_s: float = 15.0  # total time spent retrying


class _Backoff(wait_base):
    def __init__(self, policy: RetryPolicy, random_fn: Callable[[], float]) -> None:
        self.policy = policy
        self.random_fn = random_fn

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = min(self.policy.cap_s, self.policy.base_s * 2 ** (retry_state.attempt_number - 1))
        delay = ceiling * self.random_fn()
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientVenueError) and error.retry_after is not None:
            delay = max(delay, min(float(error.retry_after), self.policy.deadline_s))
        return float(delay)


def retrying(
    policy: RetryPolicy,
    *,
    random_fn: Callable[[], float] = random.random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(policy.retries + 1) | stop_after_delay(policy.deadline_s),
        wait=_Backoff(policy, random_fn),
        retry=retry_if_exception_type(TransientVenueError),
        reraise=True,
        sleep=sleep,
    )
