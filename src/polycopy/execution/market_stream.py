"""Order books kept live from the CLOB market channel (`{clob_ws_url}/market`, reference §2.2).

The paper executor walks a book for every copy and the live executor pre-checks one before it
sends; asking `GET /book` each time costs a round trip per order. `MarketStream` subscribes
to the tokens polycopy trades and keeps their books from the channel's `book` snapshots and
`price_change` deltas, so a read is a dictionary look-up. A `tick_size_change` goes straight
to the market catalog (the tick used to size and sign the next order).

A book is served from the stream only while the connection that delivered it is up; a token
not subscribed yet, or any read while the stream is down or reconnecting, falls back to
`GET /book` (and subscribes the token for next time). Tokens not read for `idle_s` are
unsubscribed and their books dropped, so a daemon that runs for months holds the books of the
tokens it is trading, not of every token it ever saw. The socket is read in its own task, the
text `PING` goes out every `ping_s` (the channel's keepalive), a connection that delivers
nothing for `stall_s` is closed, reconnects back off with full jitter, and a malformed frame is
counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from polycopy.domain.money import BadNumber, to_decimal
from polycopy.execution.book_walk import Book, BookError, Level, parse_book
from polycopy.execution.markets import MarketCatalog

log = structlog.get_logger("polycopy.execution")

MAX_FRAME_BYTES = 4 << 20  # an initial dump of many deep books is one frame


class BookSource(Protocol):
    async def book(self, token_id: str) -> Book: ...


class _LiveBook:
    """One token's levels as the channel left them (price → size, each side)."""

    __slots__ = ("asks", "bids", "built", "market", "timestamp_ms")

    def __init__(self, book: Book) -> None:
        self.market = book.market
        self.timestamp_ms = book.timestamp_ms
        self.bids = {level.price: level.size for level in book.bids}
        self.asks = {level.price: level.size for level in book.asks}
        self.built: Book | None = book

    def change(self, side: str, price: Decimal, size: Decimal, timestamp_ms: int) -> None:
        levels = self.bids if side == "BUY" else self.asks
        if size > 0:
            levels[price] = size
        else:
            levels.pop(price, None)
        self.timestamp_ms = max(self.timestamp_ms, timestamp_ms)
        self.built = None

    def book(self, asset: str) -> Book:
        if self.built is None:
            self.built = Book(
                asset_id=asset,
                market=self.market,
                timestamp_ms=self.timestamp_ms,
                bids=tuple(Level(p, s) for p, s in sorted(self.bids.items(), reverse=True)),
                asks=tuple(Level(p, s) for p, s in sorted(self.asks.items())),
            )
        return self.built


class MarketStream:
    def __init__(
        self,
        url: str,
        fallback: BookSource,
        catalog: MarketCatalog | None = None,
        *,
        ping_s: float = 10.0,
        stall_s: float = 60.0,
        idle_s: float = 1800.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        self.url = url.rstrip("/") + "/market"
        self._fallback = fallback
        self._catalog = catalog
        self.ping_s = ping_s
        self.stall_s = stall_s
        self.idle_s = idle_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._clock = clock
        self._random = random_fn
        self._wanted: dict[str, float] = {}  # token → last read (clock)
        self._books: dict[str, _LiveBook] = {}  # of the current connection only
        self._ws: ClientConnection | None = None
        self._sent: set[str] = set()  # tokens subscribed on the current connection
        self._wake = asyncio.Event()
        self.served = 0  # reads answered from the stream
        self.fell_back = 0  # reads answered by GET /book
        self.frames_rejected = 0
        self.connects = 0

    # --- reads ------------------------------------------------------------------------------
    async def book(self, token_id: str) -> Book:
        self._wanted[token_id] = self._clock()
        live = self._books.get(token_id) if self._ws is not None else None
        if live is not None:
            self.served += 1
            return live.book(token_id)
        if token_id not in self._sent:
            self._wake.set()  # subscribe it for the next read
        self.fell_back += 1
        return await self._fallback.book(token_id)

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # --- the connection ---------------------------------------------------------------------
    async def run(self) -> None:
        """Keep a connection up for as long as the task runs (cancel it to stop)."""
        failures = 0
        while True:
            if not self._wanted:
                self._wake.clear()
                await self._wake.wait()
            try:
                async with connect(
                    self.url,
                    ping_interval=None,
                    max_size=MAX_FRAME_BYTES,
                    open_timeout=10,
                    close_timeout=2,
                ) as ws:
                    self.connects += 1
                    delivered = await self._serve(ws)
                    failures = 0 if delivered else failures + 1
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, WebSocketException) as exc:
                failures += 1
                log.warning("market_stream_disconnected", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._ws = None
                self._books.clear()
                self._sent.clear()
            cap = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(failures, 16))
            await asyncio.sleep(cap * self._random())

    async def _serve(self, ws: ClientConnection) -> bool:
        """Subscribe, then read until the connection fails or stalls; True if it delivered."""
        self._ws = ws
        delivered = False
        pinger = asyncio.create_task(self._ping(ws))
        subscriber = asyncio.create_task(self._subscribe(ws))
        try:
            while True:
                try:
                    async with asyncio.timeout(self.stall_s):
                        raw = await ws.recv()
                except TimeoutError:
                    log.warning("market_stream_stalled", stall_s=self.stall_s)
                    return delivered
                if isinstance(raw, bytes) or raw in ("PONG", ""):
                    continue
                if self._receive(raw):
                    delivered = True
        finally:
            pinger.cancel()
            subscriber.cancel()
            for task in (pinger, subscriber):
                with contextlib.suppress(asyncio.CancelledError, WebSocketException, OSError):
                    await task

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_s)
            await ws.send("PING")

    async def _subscribe(self, ws: ClientConnection) -> None:
        """Send subscriptions as tokens are wanted; unsubscribe the ones read no more."""
        first = True
        while True:
            now = self._clock()
            idle = [t for t, at in self._wanted.items() if now - at > self.idle_s]
            for token in idle:
                del self._wanted[token]
            gone = [t for t in idle if t in self._sent]
            if gone:
                await ws.send(json.dumps({"operation": "unsubscribe", "assets_ids": gone}))
                self._sent.difference_update(gone)
                for token in gone:
                    self._books.pop(token, None)
            new = [t for t in self._wanted if t not in self._sent]
            if new:
                message: dict[str, Any] = {"assets_ids": new, "initial_dump": True}
                if first:
                    message["type"] = "market"
                else:
                    message["operation"] = "subscribe"
                await ws.send(json.dumps(message))
                self._sent.update(new)
                first = False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(60.0, self.idle_s)):
                    await self._wake.wait()

    # --- frames -----------------------------------------------------------------------------
    def _receive(self, raw: str) -> bool:
        try:
            payload = json.loads(raw, parse_float=Decimal)
        except ValueError:
            self._reject("not JSON", raw)
            return False
        events = payload if isinstance(payload, list) else [payload]
        for event in events:
            if not isinstance(event, Mapping):
                self._reject("an event that is not an object", raw)
                continue
            try:
                self._apply(event)
            except (BookError, BadNumber, KeyError, TypeError, ValueError) as exc:
                self._reject(str(exc), raw)
        return True

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event_type")
        if kind == "book":
            book = parse_book(event)
            if book.asset_id in self._sent:
                self._books[book.asset_id] = _LiveBook(book)
        elif kind == "price_change":
            timestamp = int(str(event.get("timestamp") or 0))
            for change in event.get("price_changes") or []:
                live = self._books.get(str(change["asset_id"]))
                side = change["side"]
                if live is None or side not in ("BUY", "SELL"):
                    continue
                live.change(
                    side, to_decimal(change["price"]), to_decimal(change["size"]), timestamp
                )
        elif kind == "tick_size_change" and self._catalog is not None:
            self._catalog.apply_event(event)

    def _reject(self, why: str, raw: str) -> None:
        self.frames_rejected += 1
        log.warning("market_frame_rejected", reason=why, frame=raw[:200])
