"""RTDS websocket source: the `activity` firehose, filtered to the followed wallets (SPEC §7.2).

One connection subscribed to `activity`/`trades` (taker and makers) and
`activity`/`orders_matched` (taker only, a little earlier). Every frame goes through
`decode_rtds_frame`: frames of other wallets are dropped after a substring search and a set
lookup, a bad frame is counted, logged and dead-lettered, never fatal.

Liveness (R12, R13): the protocol's own pings are off (`ping_interval=None`); the text `PING`
goes out every `ping_interval_s`, because the server stops sending to quiet clients without
closing. Answers to it (`""`, `PONG`) do not count as data: a watchdog closes the connection
when no data frame arrived for `stall_s`, which catches a socket that answers pings but sends
nothing. Reconnects wait a capped, full-jitter exponential backoff (reset once a connection
has delivered data). Every (re)connect calls `on_connected` so that the ingester backfills all
leaders from REST: the stream has no replay, REST fills the gap. An upgrade refused with 401 or
403 (an auth or Cloudflare block) is not hammered: `ws_auth_failed` is set (shown on /status),
`ws_auth_failures_total` counts it, `ws_auth_failed` is logged at error level, and the next
attempt waits `auth_retry_s` × 2^(n−1) (at most `AUTH_RETRY_MAX_FACTOR` × `auth_retry_s`),
jittered between half and all of it; REST polling carries on alone meanwhile. The flag clears
on the next successful connection.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from polycopy.domain.events import LeaderTrade
from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.dataapi import backoff_delay
from polycopy.ingest.decode import (
    KEEPALIVE,
    RTDS_TOPIC,
    RTDS_TYPES,
    FrameRejected,
    FrameSkip,
    decode_rtds_frame,
)
from polycopy.ingest.ratelimit import Sleep

log = structlog.get_logger("polycopy.ingest")

SUBSCRIBE = json.dumps(
    {
        "action": "subscribe",
        "subscriptions": [{"topic": RTDS_TOPIC, "type": kind} for kind in RTDS_TYPES],
    },
    separators=(",", ":"),
)
MAX_FRAME_BYTES = 1 << 20
AUTH_STATUSES = (401, 403)
AUTH_RETRY_MAX_FACTOR = 8  # a refused upgrade is retried at most every 8 × auth_retry_s


def auth_retry_delay(failures: int, retry_s: float, random_fn: Callable[[], float]) -> float:
    """Wait after the `failures`-th refused upgrade in a row: exponential, capped, and never
    below half of its ceiling (full jitter could retry at once, and a 403 must not be hammered).
    """
    ceiling = retry_s * min(2.0 ** max(0, failures - 1), AUTH_RETRY_MAX_FACTOR)
    return ceiling * (0.5 + 0.5 * random_fn())


class RtdsSource:
    def __init__(
        self,
        url: str,
        leaders: frozenset[str],
        on_trade: Callable[[LeaderTrade], Awaitable[None]],
        on_connected: Callable[[], None],
        on_rejected: Callable[[FrameRejected, str | bytes], None],
        counters: IngestCounters,
        *,
        ping_interval_s: float = 5.0,
        stall_s: float = 15.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        auth_retry_s: float = 300.0,
        open_timeout_s: float = 10.0,
        random_fn: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.url = url
        self.leaders = leaders  # replaced as a whole on reload; read once per frame
        self._on_trade = on_trade
        self._on_connected = on_connected
        self._on_rejected = on_rejected
        self.counters = counters
        self.ping_interval_s = ping_interval_s
        self.stall_s = stall_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.auth_retry_s = auth_retry_s
        self.open_timeout_s = open_timeout_s
        self._random = random_fn
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._last_data = 0.0
        self._got_data = False
        self._auth_failures = 0  # refused upgrades in a row
        self.delays: list[float] = []  # reconnect delays, newest last (bounded)

    async def run(self) -> None:
        """Connect, read, reconnect, until cancelled."""
        attempt = 0
        while True:
            self._got_data = False
            refused: int | None = None  # the 401/403 status of a refused upgrade
            try:
                await self._connect_once()
            except InvalidStatus as exc:
                status = exc.response.status_code
                self.counters.ws_errors_total[f"http_{status}"] += 1
                if status in AUTH_STATUSES:
                    refused = status
                    self._auth_failures += 1
                    self.counters.ws_auth_failed = True
                    self.counters.ws_auth_failures_total += 1
                else:
                    log.warning("ws_connect_failed", url=self.url, status=status)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.counters.ws_errors_total[type(exc).__name__] += 1
                log.warning("ws_disconnected", url=self.url, error=f"{type(exc).__name__}: {exc}")
            finally:
                self.counters.ws_connected = False
            if refused is not None:
                delay = auth_retry_delay(self._auth_failures, self.auth_retry_s, self._random)
                log.error(
                    "ws_auth_failed",
                    url=self.url,
                    status=refused,
                    consecutive=self._auth_failures,
                    retry_in_s=round(delay, 1),
                )
            else:
                attempt = 1 if self._got_data else attempt + 1
                delay = backoff_delay(
                    attempt, self.backoff_initial_s, self.backoff_max_s, self._random
                )
            self.delays = [*self.delays[-99:], delay]
            await self._sleep(delay)

    async def _connect_once(self) -> None:
        async with connect(
            self.url,
            ping_interval=None,
            open_timeout=self.open_timeout_s,
            close_timeout=1,
            max_size=MAX_FRAME_BYTES,
            compression=None,
        ) as ws:
            await ws.send(SUBSCRIBE)
            reconnect = self.counters.ws_connects_total > 0
            self.counters.ws_connects_total += 1
            if reconnect:
                self.counters.ws_reconnects_total += 1
            self.counters.ws_connected = True
            self.counters.ws_auth_failed = False
            self._auth_failures = 0
            log.info("ws_reconnected" if reconnect else "ws_connected", url=self.url)
            self._on_connected()
            await self._read(ws)

    async def _read(self, ws: ClientConnection) -> None:
        self._last_data = self._clock()
        pinger = asyncio.create_task(self._ping(ws))
        watchdog = asyncio.create_task(self._watch(ws))
        try:
            async for raw in ws:
                await self.on_frame(raw)
        finally:
            pinger.cancel()
            watchdog.cancel()
            await asyncio.gather(pinger, watchdog, return_exceptions=True)

    async def on_frame(self, raw: str | bytes) -> None:
        """Classify one frame and pass a leader trade on (public for benchmarks)."""
        counters = self.counters
        counters.frames_total += 1
        try:
            result = decode_rtds_frame(raw, self.leaders, self._wall())
        except FrameRejected as exc:
            self._data_seen()
            counters.frames_rejected_total[exc.reason] += 1
            self._on_rejected(exc, raw)
            return
        if result is KEEPALIVE:
            counters.frames_skipped_total["keepalive"] += 1
            return
        self._data_seen()
        if isinstance(result, FrameSkip):
            counters.frames_skipped_total[result.kind] += 1
            return
        await self._on_trade(result)

    def _data_seen(self) -> None:
        self._last_data = now = self._clock()
        self.counters.ws_last_data_at = now
        self._got_data = True

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await self._sleep(self.ping_interval_s)
            await ws.send("PING")

    async def _watch(self, ws: ClientConnection) -> None:
        while True:
            idle = self._clock() - self._last_data
            if idle >= self.stall_s:
                self.counters.ws_stalls_total += 1
                log.warning("ws_stalled", url=self.url, idle_s=round(idle, 3))
                await ws.close(code=1000, reason="stalled")
                return
            await self._sleep(self.stall_s - idle)


def describe(frame: Any) -> str:
    """A short, printable excerpt of a frame for logs."""
    text = frame if isinstance(frame, str) else bytes(frame).decode("utf-8", "replace")
    return text[:200]
