"""Data API client for ingest: idempotent GETs with bounded retries under the rate limiter.

Error classification (reliability requirements R15–R17):
- 200 with a JSON body → the body (numbers with a fraction as Decimal).
- 429, 425, 5xx, timeouts, transport errors and unreadable bodies → `TransientDataApiError`,
  retried by tenacity with capped full-jitter exponential backoff, honouring `Retry-After`,
  at most `max_attempts` tries within `deadline_s`. A 429 also cools the whole limiter down.
- Any other 4xx → `PermanentDataApiError`: logged, counted, never retried.
Every request carries a cache-buster (`_=`) because the CDN caches per URL.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.decode import DecodeError, loads
from polycopy.ingest.ratelimit import RateLimiter, Sleep

log = structlog.get_logger("polycopy.ingest")

DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without a usable Retry-After
MAX_RETRY_AFTER_S = 300.0  # a larger Retry-After is clamped (and logged)


class DataApiError(Exception):
    """A Data API request that did not give a usable answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientDataApiError(DataApiError):
    """Worth retrying: rate limited, venue restarting or overloaded, network trouble."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class PermanentDataApiError(DataApiError):
    """A request the venue refuses as such (bad parameter, not found, forbidden)."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), clamped; else None."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, random_fn: Callable[[], float]
) -> float:
    """Full jitter: uniform in [0, min(max_s, initial_s × 2^(attempt-1))]."""
    ceiling = min(max_s, initial_s * 2.0 ** max(0, attempt - 1))
    return ceiling * random_fn()


class DataApiClient:
    def __init__(
        self,
        base_url: str,
        limiter: RateLimiter,
        counters: IngestCounters,
        *,
        session: aiohttp.ClientSession | None = None,
        max_attempts: int = 4,
        timeout_s: float = 10.0,
        deadline_s: float = 30.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        random_fn: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None
        self.limiter = limiter
        self.counters = counters
        self.max_attempts = max_attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.deadline_s = deadline_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._random = random_fn
        self._sleep = sleep
        self._buster = itertools.count(time.time_ns())

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session, opened on first use (inside the running loop) unless given."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Accept": "application/json", "User-Agent": "polycopy"}
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def get_json(
        self, path: str, params: Mapping[str, str | int], buckets: tuple[str, ...] = ("data",)
    ) -> Any:
        """GET `path` with retries; raises `PermanentDataApiError` or, once the attempts or
        the deadline are spent, the last `TransientDataApiError`."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.deadline_s),
            wait=self._wait,
            retry=retry_if_exception_type(TransientDataApiError),
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._count_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_once(path, params, buckets)
        except DataApiError as exc:
            self.counters.http_failures_total[path] += 1
            log.warning(
                "data_api_failed",
                path=path,
                user=params.get("user"),
                status=exc.status,
                error=str(exc),
                permanent=isinstance(exc, PermanentDataApiError),
            )
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _get_once(
        self, path: str, params: Mapping[str, str | int], buckets: tuple[str, ...]
    ) -> Any:
        if await self.limiter.acquire(*buckets):
            self.counters.rate_limit_waits_total += 1
        query = {key: str(value) for key, value in params.items()}
        query["_"] = str(next(self._buster))  # cache-buster: the CDN caches per URL
        self.counters.http_requests_total[path] += 1
        try:
            async with self.session().get(
                self.base_url + path, params=query, timeout=self.timeout
            ) as response:
                status = response.status
                body = await response.read()
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDataApiError(f"{type(exc).__name__}: {exc}") from exc
        if status == 200:
            try:
                return loads(body)
            except DecodeError as exc:
                raise TransientDataApiError(f"unreadable body: {exc}", status) from None
        excerpt = body[:200].decode("utf-8", "replace")
        if status == 429:
            self.counters.http_rate_limited_total += 1
            wait = DEFAULT_RETRY_AFTER_S if retry_after is None else retry_after
            self.limiter.cool_down(wait)
            log.warning("data_api_rate_limited", path=path, retry_after=wait)
            raise TransientDataApiError("429 rate limited", status, wait)
        if status == 425 or status >= 500:
            raise TransientDataApiError(f"{status}: {excerpt}", status, retry_after)
        raise PermanentDataApiError(f"{status}: {excerpt}", status)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = backoff_delay(
            state.attempt_number, self.backoff_initial_s, self.backoff_max_s, self._random
        )
        if isinstance(exc, TransientDataApiError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        label = str(exc.status) if isinstance(exc, DataApiError) and exc.status else "transport"
        self.counters.http_retries_total[label] += 1
