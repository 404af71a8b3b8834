"""Public (unauthenticated) CLOB reads over aiohttp: `/book`, `/clob-markets`, `/tick-size`,
`/neg-risk`. Paper and live use it alike; it never sends an auth header and has no way to
post an order (R23).

Every request has an explicit timeout (R17); idempotent GETs are retried on 429/5xx/425 and
transport errors, at most `RetryPolicy.retries` times within its deadline (R15).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import aiohttp

from polycopy.execution.book_walk import Book, BookError, parse_book
from polycopy.execution.errors import (
    PermanentVenueError,
    RejectKind,
    TransientVenueError,
    is_transient_read,
)
from polycopy.execution.retry import RetryPolicy, retrying


class VenueNotFound(PermanentVenueError):
    """404: the venue does not know this token, market or order."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=RejectKind.OTHER, status=404)


class ClobHttp:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.policy = policy or RetryPolicy()
        self._session = session
        self._owns_session = session is None
        self.requests = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=32)
            )
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        async for attempt in retrying(self.policy):
            with attempt:
                return await self._get_once(path, params)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _get_once(self, path: str, params: Mapping[str, str] | None) -> Any:
        self.requests += 1
        url = self.base_url + path
        try:
            async with self._client().get(url, params=params, timeout=self.timeout) as response:
                text = await response.text()
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientVenueError(f"GET {path}: {type(exc).__name__}") from exc
        if status == 200:
            try:
                return json.loads(text, parse_float=Decimal)
            except ValueError as exc:
                raise TransientVenueError(f"GET {path}: response is not JSON") from exc
        message = _error_message(text) or f"HTTP {status}"
        if status == 404:
            raise VenueNotFound(f"GET {path}: {message}")
        if is_transient_read(status):
            raise TransientVenueError(
                f"GET {path}: {message}", status=status, retry_after=retry_after
            )
        raise PermanentVenueError(f"GET {path}: {message}", kind=RejectKind.OTHER, status=status)

    async def book(self, token_id: str) -> Book:
        payload = await self.get_json("/book", {"token_id": token_id})
        try:
            return parse_book(payload)
        except BookError as exc:
            raise PermanentVenueError(
                f"GET /book: {exc}", kind=RejectKind.OTHER, status=200
            ) from exc


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(body, dict):
        for key in ("error", "errorMsg", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return text.strip()[:200]
