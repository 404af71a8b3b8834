"""REST backfill of leader trades from the Data API `/activity` (SPEC §7.2, R9–R11).

For one leader, `RestPoller.backfill` reads
`/activity?user=&type=TRADE&start=&sortBy=TIMESTAMP&sortDirection=ASC&limit=&offset=` from the
leader's durable cursor minus an overlap, page by page, and hands each page on (inbox commit +
cursor advance in one transaction) before fetching the next. Past the offset cap the window's
`start` moves to the newest timestamp read, skipping the rows at that timestamp that were
already read, so trades that share a timestamp across a page or window boundary are neither
lost nor counted twice. Occurrence indices (identical-looking fills of one tx) are assigned over
the whole backfill, in the API's stable order; since every row of a tx shares its timestamp and
the window always starts before the cursor, each backfill numbers a tx's fills the same way.

Each poll re-reads its overlap window; a row read in the leader's last pass (the fields the
decoder reads, equal) is not decoded again — its trade is reused, and occurrence numbering
still runs over every row in order.

The cursor advances only to the timestamps of rows that decoded into trades: a rejected row
(bad side, absurd timestamp, …) moves nothing, and a timestamp more than `FUTURE_MARGIN_S`
ahead of the clock is rejected, so one bad row cannot switch REST detection off.

A backfill that read every page records how far the API has been checked (`checked_ts`, the
backfill's start time minus `VISIBILITY_LAG_S`), apart from the newest trade seen; the next
window starts from the later of the two. So a quiet leader's window stays short, and
`backfill_truncated` (the window would start before `max_backfill_age_s`) means a real gap: an
outage longer than that, not a leader who did not trade.

`BackfillScheduler` runs backfills on request (start, websocket (re)connect, periodic poll,
RTDS repeat): at most one at a time per leader, requests during a run coalesce into one rerun,
and a few leaders run concurrently under the shared rate limiter.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from polycopy.crashpoints import crash_point
from polycopy.domain.events import LeaderTrade
from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.dataapi import DataApiClient, DataApiError
from polycopy.ingest.decode import (
    DecodeError,
    NotATrade,
    OccurrenceCounter,
    decode_trade,
    row_epoch_s,
    rows_of,
    wallet_of,
)
from polycopy.ingest.inbox import Inbox, epoch_seconds

log = structlog.get_logger("polycopy.ingest")

PAGE_LIMIT = 500  # /activity v1 maximum
OFFSET_CAP = 5000  # /activity v1: a larger offset is a 400
SOURCE = "rest"
VISIBILITY_LAG_S = 30  # a fill shows up in /activity seconds after its block (≈ 3–9 s)

FetchPage = Callable[[str, int, int, int], Awaitable[list[Any]]]
"""(leader, start, offset, limit) → rows of one `/activity` page, oldest first."""
HandOn = Callable[[list[LeaderTrade], Mapping[str, tuple[int, Iterable[str]]]], Awaitable[int]]
"""Commit trades and cursor advances durably, then enqueue the new ones; returns how many."""


def activity_fetcher(client: DataApiClient) -> FetchPage:
    """`FetchPage` over the real (or simulated) Data API."""

    async def fetch(leader: str, start: int, offset: int, limit: int) -> list[Any]:
        body = await client.get_json(
            "/activity",
            {
                "user": leader,
                "type": "TRADE",
                "start": start,
                "sortBy": "TIMESTAMP",
                "sortDirection": "ASC",
                "limit": limit,
                "offset": offset,
            },
        )
        return rows_of(body, "activity")

    return fetch


@dataclass(frozen=True, slots=True)
class BackfillResult:
    leader: str
    start: int
    pages: int
    rows: int
    handed_on: int
    truncated: bool


class RestPoller:
    def __init__(
        self,
        fetch: FetchPage,
        inbox: Inbox,
        hand_on: HandOn,
        counters: IngestCounters,
        *,
        overlap_s: int = 120,
        poll_overlap_s: int = 15,
        max_backfill_age_s: int = 86_400,
        page_limit: int = PAGE_LIMIT,
        offset_cap: int = OFFSET_CAP,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self.inbox = inbox
        self._hand_on = hand_on
        self.counters = counters
        self.overlap_s = overlap_s
        self.poll_overlap_s = min(poll_overlap_s, overlap_s)
        self.max_backfill_age_s = max_backfill_age_s
        self.page_limit = page_limit
        self.offset_cap = offset_cap
        self._wall = wall
        # leader → rows of its recent passes, by their decoded fields, → the trade (or None:
        # not a trade). Each poll re-reads its overlap window; a row read before is not
        # decoded again (occurrence numbering still runs over every row, in order)
        self._seen: dict[str, dict[tuple[Any, ...], LeaderTrade | None]] = {}

    async def backfill(self, leader: str, deep: bool = True) -> BackfillResult:
        """Read `leader`'s trades from its cursor − overlap to now; hand on each page.

        `deep` (start, websocket reconnect, a repeated RTDS fill) re-reads `overlap_s`; the
        periodic poll while the websocket is healthy re-reads only `poll_overlap_s`, enough for
        fills that become visible late, and cheap for a leader trading many times a second.
        """
        now = int(self._wall())
        cursor = self.inbox.follow(leader, now)
        start = max(cursor.position - (self.overlap_s if deep else self.poll_overlap_s), 1)
        truncated = False
        oldest_allowed = now - self.max_backfill_age_s
        if start < oldest_allowed:
            truncated = True
            self.counters.backfill_truncated_total += 1
            log.warning(
                "backfill_truncated",
                leader=leader,
                cursor_ts=cursor.last_ts,
                checked_ts=cursor.checked_ts,
                start=oldest_allowed,
            )
            start = oldest_allowed
        counter = OccurrenceCounter()
        seen = self._seen.get(leader, {})
        kept: dict[tuple[Any, ...], LeaderTrade | None] = {}
        keep_from = now - self.overlap_s - VISIBILITY_LAG_S  # what a later pass may re-read
        window, offset, skip = start, 0, 0
        newest: int | None = None  # newest timestamp read in this window
        at_newest = 0  # rows (of any kind) at `newest` read in this window
        pages = rows_total = handed = 0
        while True:
            rows = await self._fetch(leader, window, offset, self.page_limit)
            crash_point("after_fetch_before_commit")
            pages += 1
            rows_total += len(rows)
            trades: list[LeaderTrade] = []
            rejected: list[str] = []
            for row in rows:
                ts = row_epoch_s(row, now)  # paging only; the cursor follows decoded trades
                if ts is not None:
                    if newest is None or ts > newest:
                        newest, at_newest = ts, 0
                    if ts == newest:
                        at_newest += 1
                if skip:
                    if ts == window:  # read at the end of the previous window
                        skip -= 1
                        continue
                    skip = 0
                key = _row_key(row)
                if key is not None and key in seen:
                    trade = seen[key]
                    self.counters.rows_reused_total += 1
                else:
                    before = len(rejected)
                    trade = self._decode(row, leader, rejected, now)
                    if len(rejected) > before:
                        key = None  # a rejected row is judged again (and counted) each time
                if key is not None and ts is not None and ts >= keep_from:
                    kept[key] = trade
                if trade is not None:
                    trades.append(counter.assign(trade))
            if rejected:
                log.warning(
                    "rows_rejected", leader=leader, rows=len(rejected), first_error=rejected[0]
                )
            if trades:
                last = max(epoch_seconds(t) for t in trades)
                ids = [t.trade_id for t in trades if epoch_seconds(t) == last]
                handed += await self._hand_on(trades, {leader: (last, ids)})
            if len(rows) < self.page_limit:
                break
            offset += len(rows)
            if offset > self.offset_cap:
                # Past the offset cap: a new window from the newest timestamp read, skipping
                # the rows at that timestamp that this window already read.
                if newest is None or newest <= window:
                    truncated = True
                    self.counters.backfill_truncated_total += 1
                    log.warning("backfill_truncated", leader=leader, window_start=window)
                    window, skip = window + 1, 0
                else:
                    window, skip = newest, at_newest
                offset, newest, at_newest = 0, None, 0
        self._seen[leader] = kept
        self.inbox.mark_checked(leader, now - VISIBILITY_LAG_S)
        self.counters.backfills_total += 1
        return BackfillResult(leader, start, pages, rows_total, handed, truncated)

    def _decode(self, row: Any, leader: str, rejected: list[str], now: int) -> LeaderTrade | None:
        try:
            if not isinstance(row, Mapping):
                raise DecodeError(f"row: expected an object, got {type(row).__name__}")
            if wallet_of(row) not in (leader, None):
                raise DecodeError("proxyWallet: a row of another wallet")
            return decode_trade(row, source=SOURCE, now=now)
        except NotATrade:
            self.counters.rows_not_trade_total += 1
        except DecodeError as exc:
            self.counters.rows_rejected_total[exc.reason] += 1
            self.inbox.dead_letter(SOURCE, exc.reason, str(exc), _text(row))
            rejected.append(str(exc))
        return None


# every field `decode_trade` reads, under each of its names: rows equal on these decode equally
_DECODED_FIELDS = (
    "type",
    "proxyWallet",
    "proxy_wallet",
    "asset",
    "token_id",
    "asset_id",
    "tokenId",
    "conditionId",
    "condition_id",
    "market",
    "transactionHash",
    "transaction_hash",
    "side",
    "price",
    "size",
    "timestamp",
    "outcome",
    "outcomeIndex",
    "outcome_index",
)


def _row_key(row: Any) -> tuple[Any, ...] | None:
    if type(row) is not dict:
        return None
    key = tuple(row.get(name) for name in _DECODED_FIELDS)
    try:
        hash(key)
    except TypeError:  # a list or object where a scalar belongs: decode (and reject) it
        return None
    return key


def _text(row: Any) -> str:
    return repr(row)[:4096]


class BackfillScheduler:
    """Runs `backfill(leader)` on request, one at a time per leader, `concurrency` leaders at
    once; a request for a leader that is running makes it run once more afterwards."""

    def __init__(
        self,
        backfill: Callable[[str, bool], Awaitable[BackfillResult]],
        counters: IngestCounters,
        concurrency: int = 4,
    ) -> None:
        self._backfill = backfill
        self.counters = counters
        self.concurrency = concurrency
        self._wanted: OrderedDict[str, bool] = OrderedDict()  # leader → deep
        self._running: set[str] = set()
        self._again: dict[str, bool] = {}
        self._ready = asyncio.Event()
        self.completed: dict[str, int] = {}  # leader → backfills finished (ok or not)
        self.succeeded: dict[str, int] = {}  # leader → backfills finished without error

    def request(self, leaders: Iterable[str], deep: bool = True) -> None:
        """Backfill these leaders; `deep=False` is the periodic poll's short look-back."""
        for leader in leaders:
            if leader in self._running:
                self._again[leader] = self._again.get(leader, False) or deep
            else:
                self._wanted[leader] = self._wanted.get(leader, False) or deep
        if self._wanted:
            self._ready.set()

    def discard(self, leaders: Iterable[str]) -> None:
        for leader in leaders:
            self._wanted.pop(leader, None)
            self._again.pop(leader, None)

    @property
    def idle(self) -> bool:
        return not self._wanted and not self._running

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            while not self._wanted:
                self._ready.clear()
                await self._ready.wait()
            leader, deep = self._wanted.popitem(last=False)
            self._running.add(leader)
            began = time.monotonic()
            try:
                result = await self._backfill(leader, deep)
            except (DataApiError, DecodeError) as exc:
                self.counters.backfill_failures_total += 1
                log.warning("backfill_failed", leader=leader, error=str(exc))
            else:
                self.succeeded[leader] = self.succeeded.get(leader, 0) + 1
                self.counters.rest_last_ok_at = time.monotonic()
                log.info(
                    "backfill_completed",
                    leader=leader,
                    start=result.start,
                    pages=result.pages,
                    rows=result.rows,
                    handed_on=result.handed_on,
                    truncated=result.truncated,
                    duration_s=round(time.monotonic() - began, 4),
                )
            finally:
                self._running.discard(leader)
                self.completed[leader] = self.completed.get(leader, 0) + 1
                if leader in self._again:
                    self._wanted[leader] = self._again.pop(leader)
                    self._ready.set()
