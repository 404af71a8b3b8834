"""Leader exposure E_u and positions P, refreshed from the Data API (SPEC §2.6).

Contract (one writer): the tracker never touches the sizing worker's state. Each refresh
produces an `ExposureSnapshot(leader, value, positions, refreshed_at)` and hands it to `sink`
— the ingester puts it on the same bounded queue as the leader trades, so the worker applies
it (`Copier.set_exposure(leader, value, refreshed_at, positions)`) in order with the trades
around it. Between refreshes the worker itself adjusts E_u and P by each observed trade
(`LeaderState.observe`: BUY +notional, SELL −notional, floor 0). `refreshed_at` lets every
decision record how old the E_u it used was.

Source: `/positions?user=&sizeThreshold=0` (paged), which gives P and E_u = Σ currentValue of
the open positions (0 < curPrice < 1) by the same rule as replay. When it fails, or when a
wallet has more positions than the API pages through, `/value?user=` gives E_u alone
(positions `None`: keep the last known P). A refresh that fails altogether keeps the last value,
is counted (`exposure_failures_total`) and logged; the next attempt is on schedule.

Each leader is refreshed every `refresh_s`, first as soon as it is followed (sizing in
BUDGETED_DYNAMIC needs E_u), then on its own timer, so refreshes spread across leaders; all go
through the shared rate limiter.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import structlog

from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.dataapi import DataApiClient, DataApiError
from polycopy.ingest.decode import DecodeError, decode_positions, decode_value, rows_of
from polycopy.ingest.ratelimit import Sleep

log = structlog.get_logger("polycopy.ingest")

POSITIONS_LIMIT = 500  # /positions v1 maximum page
POSITIONS_OFFSET_CAP = 10_000


@dataclass(frozen=True, slots=True)
class ExposureSnapshot:
    """A leader's exposure as the Data API reported it at `refreshed_at` (UTC)."""

    leader: str
    value: Decimal  # E_u, USDC
    positions: Mapping[str, Decimal] | None  # asset → shares (open positions); None: unchanged
    refreshed_at: datetime


class ExposureTracker:
    def __init__(
        self,
        client: DataApiClient,
        sink: Callable[[ExposureSnapshot], Awaitable[None]],
        counters: IngestCounters,
        *,
        refresh_s: float = 30.0,
        concurrency: int = 4,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self._sink = sink
        self.counters = counters
        self.refresh_s = refresh_s
        self._wall = wall
        self._clock = clock
        self._sleep = sleep
        self._random = random_fn
        # heap of (monotonic due time, generation, leader); an entry whose generation is not
        # the leader's current one is stale (the leader was removed, maybe added again)
        self._due: list[tuple[float, int, str]] = []
        self._generation: dict[str, int] = {}  # followed leader → its current generation
        self._generations = itertools.count(1)
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self.latest: dict[str, ExposureSnapshot] = {}  # last good snapshot per leader
        self.failures: dict[str, int] = {}  # consecutive failures per leader

    # --- leaders -------------------------------------------------------------------------
    @property
    def leaders(self) -> frozenset[str]:
        return frozenset(self._generation)

    def set_leaders(self, leaders: Iterable[str]) -> None:
        """Refresh exactly `leaders` from now on: a new one at once, then on its own timer.

        Each leader has one refresh chain: a removed leader's pending entry and in-flight
        refresh die with its generation, so removing and re-adding it never doubles it.
        """
        wanted = set(leaders)
        current = set(self._generation)
        for leader in current - wanted:
            del self._generation[leader]
            self.latest.pop(leader, None)
            self.failures.pop(leader, None)
        for leader in wanted - current:
            generation = next(self._generations)
            self._generation[leader] = generation
            heapq.heappush(self._due, (self._clock(), generation, leader))
        self._wake.set()

    def age_s(self, leader: str) -> float | None:
        """Seconds since the leader's last good refresh (None if never refreshed)."""
        snapshot = self.latest.get(leader)
        if snapshot is None:
            return None
        return max(0.0, self._wall() - snapshot.refreshed_at.timestamp())

    # --- refreshing ----------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                while self._due and not self._current(self._due[0][1], self._due[0][2]):
                    heapq.heappop(self._due)  # a leader no longer followed, or re-added
                if not self._due:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                due, generation, leader = self._due[0]
                delay = due - self._clock()
                if delay > 0:
                    await self._nap(delay)
                    continue
                heapq.heappop(self._due)
                await self._slots.acquire()
                group.create_task(self._refresh_then_reschedule(leader, generation))

    def _current(self, generation: int, leader: str) -> bool:
        return self._generation.get(leader) == generation

    async def _nap(self, delay: float) -> None:
        """Sleep `delay`, or less when the leader set changes."""
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _refresh_then_reschedule(self, leader: str, generation: int) -> None:
        try:
            await self.refresh(leader)
        finally:
            self._slots.release()
            if self._current(generation, leader):
                jitter = 1 + 0.1 * (self._random() - 0.5)  # ±5 % keeps leaders spread out
                due = self._clock() + self.refresh_s * jitter
                heapq.heappush(self._due, (due, generation, leader))
                self._wake.set()

    async def refresh(self, leader: str) -> ExposureSnapshot | None:
        """Fetch one leader's exposure now; the snapshot also goes to the sink."""
        try:
            snapshot = await self.fetch(leader)
        except (DataApiError, DecodeError) as exc:
            self.counters.exposure_failures_total += 1
            self.failures[leader] = self.failures.get(leader, 0) + 1
            log.warning(
                "exposure_refresh_failed",
                leader=leader,
                error=str(exc),
                consecutive=self.failures[leader],
                age_s=self.age_s(leader),
            )
            return None
        if leader not in self._generation:
            return None
        self.failures.pop(leader, None)
        self.latest[leader] = snapshot
        self.counters.exposure_refreshes_total += 1
        log.info(
            "exposure_refreshed",
            leader=leader,
            value=str(snapshot.value),
            positions=None if snapshot.positions is None else len(snapshot.positions),
        )
        await self._sink(snapshot)
        return snapshot

    async def fetch(self, leader: str) -> ExposureSnapshot:
        refreshed_at = datetime.fromtimestamp(self._wall(), tz=UTC)
        try:
            rows = await self._positions(leader)
            if rows is not None:
                view = decode_positions(rows, leader)
                return ExposureSnapshot(leader, view.value, view.positions, refreshed_at)
        except (DataApiError, DecodeError) as exc:
            # unavailable or malformed (one bad row spoils the sum): /value gives E_u alone
            self.counters.positions_fallbacks_total += 1
            log.warning("positions_unavailable", leader=leader, error=str(exc))
        body = await self.client.get_json("/value", {"user": leader})
        return ExposureSnapshot(leader, decode_value(body, leader), None, refreshed_at)

    async def _positions(self, leader: str) -> list[object] | None:
        """Every position row, or None when the wallet has more than the API pages through."""
        rows: list[object] = []
        offset = 0
        while True:
            body = await self.client.get_json(
                "/positions",
                {
                    "user": leader,
                    "sizeThreshold": 0,
                    "limit": POSITIONS_LIMIT,
                    "offset": offset,
                },
                buckets=("data", "positions"),
            )
            page = rows_of(body, "positions")
            rows.extend(page)
            if len(page) < POSITIONS_LIMIT:
                return rows
            offset += len(page)
            if offset > POSITIONS_OFFSET_CAP:
                return None
