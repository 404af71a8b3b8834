"""The ingester: leader trade sources → dedup → durable inbox → bounded queue (SPEC §1, §7.2).

    RTDS websocket ──► stage ──┐                         ┌─► queue (bounded, backpressure)
                               ├─► inbox (dedup, cursor) ┤        LeaderTrade | ExposureSnapshot
    REST /activity pages ──────┘     one commit per batch └─► … consumed by the sizing worker
    exposure tracker ─────────────────────────────────────────► queue

Contract with the sizing worker (the only consumer of `queue`):
- Items are `LeaderTrade` (each one exactly once per trade identity, across sources, repeats
  and restarts) and `ExposureSnapshot` (apply with `Copier.set_exposure`).
- A trade is on the queue only after its inbox row is durable. Once the worker has stored its
  decision it calls `mark_processed([trade_id, …])`, in the same transaction when it can. At
  start-up `run` first re-enqueues every trade handed on but never marked, oldest first.
- Staleness is the worker's call at dequeue: `staleness.is_stale(trade, now, max_event_age_s)`
  (SELLs never go stale) → a `STALE_EVENT` decision. Nothing is ever dropped here: when the
  queue is full the ingester waits (`queue_full_waits_total`, `queue_wait_seconds_total`).

Detection: RTDS delivers within the feed's own latency; REST backfills each leader from its
cursor at start, on every websocket (re)connect, every `poll_interval_s`, and promptly when one
RTDS stream repeats a fill (then REST, which lists every fill of a tx, decides whether it was a
second identical fill or a repeated message). RTDS trades always carry occurrence 0, so a fill
seen on `trades`, on `orders_matched` and via REST has one identity.

`set_leaders` follows new leaders from now on and stops following removed ones, live.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import aiohttp
import structlog

from polycopy.config import EndpointsSection, IngestSection
from polycopy.crashpoints import crash_point
from polycopy.domain.events import LeaderTrade
from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.dataapi import DataApiClient
from polycopy.ingest.decode import FrameRejected
from polycopy.ingest.exposure import ExposureSnapshot, ExposureTracker
from polycopy.ingest.inbox import RETENTION_S, Inbox, epoch_seconds
from polycopy.ingest.poll import PAGE_LIMIT, BackfillScheduler, RestPoller, activity_fetcher
from polycopy.ingest.ratelimit import RateLimiter, Sleep, TokenBucket
from polycopy.ingest.rtds import RtdsSource, describe
from polycopy.store.db import Database

log = structlog.get_logger("polycopy.ingest")

IngestItem = LeaderTrade | ExposureSnapshot
STAGE_MAX = 4_096  # RTDS trades waiting for the next group commit
STREAM_MEMORY = 50_000  # identities remembered per RTDS stream to spot repeats
HOUSEKEEPING_S = 60.0
PRUNE_EVERY_S = 3_600.0
AUTH_RETRY_BACKOFFS = 10  # a refused upgrade (401/403) waits 10 × ws_backoff_max_s, and more
REJECT_LOG_INTERVAL_S = 1.0  # at most one frame_rejected line per reason per interval


class Ingester:
    def __init__(
        self,
        db: Database,
        settings: IngestSection,
        endpoints: EndpointsSection,
        leaders: Iterable[str],
        *,
        queue: asyncio.Queue[IngestItem] | None = None,
        session: aiohttp.ClientSession | None = None,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        random_fn: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        page_limit: int | None = None,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.counters = IngestCounters()
        self.inbox = Inbox(db, wall)
        self.queue: asyncio.Queue[IngestItem] = (
            asyncio.Queue(settings.queue_maxsize) if queue is None else queue
        )
        self._leaders = frozenset(a.lower() for a in leaders)
        self._wall = wall
        self._clock = clock
        window = 10.0
        self.limiter = RateLimiter(
            {
                "data": TokenBucket.per_window(settings.rest_rate_limit_per_10s, window, clock),
                "positions": TokenBucket.per_window(
                    settings.positions_rate_limit_per_10s, window, clock
                ),
            },
            clock=clock,
            sleep=sleep,
        )
        self.client = DataApiClient(
            endpoints.data_api_url,
            self.limiter,
            self.counters,
            session=session,
            max_attempts=settings.rest_max_attempts,
            timeout_s=float(settings.rest_timeout_s),
            deadline_s=float(settings.rest_deadline_s),
            backoff_initial_s=float(settings.rest_backoff_initial_s),
            backoff_max_s=float(settings.rest_backoff_max_s),
            random_fn=random_fn,
            sleep=sleep,
        )
        self.poller = RestPoller(
            activity_fetcher(self.client),
            self.inbox,
            self._hand_on,
            self.counters,
            overlap_s=int(settings.backfill_overlap_s),
            poll_overlap_s=int(settings.poll_overlap_s),
            max_backfill_age_s=int(settings.max_backfill_age_s),
            wall=wall,
            page_limit=page_limit or PAGE_LIMIT,
        )
        self.backfills = BackfillScheduler(
            self.poller.backfill, self.counters, settings.backfill_concurrency
        )
        self.rtds = RtdsSource(
            endpoints.rtds_url,
            self._leaders,
            self._offer,
            self._on_ws_connected,
            self._on_rejected,
            self.counters,
            ping_interval_s=float(settings.ws_ping_interval_s),
            stall_s=float(settings.ws_stall_s),
            backoff_initial_s=float(settings.ws_backoff_initial_s),
            backoff_max_s=float(settings.ws_backoff_max_s),
            auth_retry_s=AUTH_RETRY_BACKOFFS * float(settings.ws_backoff_max_s),
            random_fn=random_fn,
            clock=clock,
            wall=wall,
            sleep=sleep,
        )
        self.exposure = ExposureTracker(
            self.client,
            self._put,
            self.counters,
            refresh_s=float(settings.exposure_refresh_s),
            wall=wall,
            clock=clock,
            sleep=sleep,
            random_fn=random_fn,
        )
        self._sleep = sleep
        self._staged: list[LeaderTrade] = []
        self._stage_ready = asyncio.Event()
        self._stage_space = asyncio.Event()
        self._stage_space.set()
        self._streams: dict[str, OrderedDict[str, None]] = {}
        self._reject_logged: dict[str, tuple[float, int]] = {}
        self.started = asyncio.Event()  # set once pending trades are re-enqueued
        # trade id → monotonic time it was first seen (RTDS frame or REST page), for the
        # worker's detection-to-order latency; the worker pops its entries, the cap bounds it
        self.received_at: OrderedDict[str, float] = OrderedDict()

    # --- public API ----------------------------------------------------------------------
    @property
    def leaders(self) -> frozenset[str]:
        return self._leaders

    def set_leaders(self, addresses: Iterable[str]) -> None:
        """Follow exactly `addresses` from now on (config reload), without a restart.

        A new leader's cursor starts now: none of its history is copied. A removed leader's
        frames and rows are filtered out from the next frame on, and its cursor is forgotten:
        following it again, in this run or a later one, starts from then.
        """
        wanted = frozenset(a.lower() for a in addresses)
        added, removed = wanted - self._leaders, self._leaders - wanted
        self._unfollow(removed)
        self.inbox.follow_many(sorted(added), int(self._wall()), restart=True)
        self._leaders = wanted
        self.rtds.leaders = wanted
        self.backfills.discard(removed)
        self.exposure.set_leaders(wanted)
        if added:
            self.backfills.request(sorted(added))
        if added or removed:
            log.info("leaders_changed", added=sorted(added), removed=sorted(removed))

    def _unfollow(self, leaders: Iterable[str]) -> None:
        gone = sorted(leaders)
        if not gone:
            return
        retired = self.inbox.unfollow(gone)
        log.info("leaders_unfollowed", leaders=gone, pending_retired=retired)

    def request_backfill(self, leaders: Iterable[str] | None = None, deep: bool = True) -> None:
        self.backfills.request(sorted(self._leaders if leaders is None else leaders), deep)

    def mark_processed(self, trade_ids: Iterable[str]) -> int:
        """The worker's decisions for these trades are stored (see `Inbox.mark_processed`)."""
        return self.inbox.mark_processed(trade_ids)

    async def run(self) -> None:
        """Run every source until cancelled. Re-enqueues pending trades first.

        A leader with a cursor from the previous run resumes from it; a leader that the
        previous run did not follow at its end (never, or removed from the config since)
        starts from now, like a first start. Cursors of leaders no longer followed go.
        """
        self._unfollow(self.inbox.followed() - self._leaders)
        self.inbox.follow_many(sorted(self._leaders), int(self._wall()))
        try:
            pending = self.inbox.pending(self._leaders)
            for trade in pending:
                await self._put(trade)
            self.counters.pending_requeued_total += len(pending)
            if pending:
                log.info("pending_requeued", trades=len(pending))
            self.started.set()
            self.exposure.set_leaders(self._leaders)
            self.request_backfill()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._committer())
                group.create_task(self.backfills.run())
                group.create_task(self._poll_loop())
                group.create_task(self.rtds.run())
                group.create_task(self.exposure.run())
                group.create_task(self._housekeeping())
        finally:
            try:
                self.inbox.flush()
            finally:
                await self.client.close()

    # --- hand-over -----------------------------------------------------------------------
    async def _hand_on(
        self,
        trades: list[LeaderTrade],
        cursors: Mapping[str, tuple[int, Iterable[str]]],
    ) -> int:
        """Commit trades (and cursor advances) to the inbox, then enqueue the new ones."""
        followed = self._leaders
        oldest = int(self._wall()) - RETENTION_S
        keep: list[LeaderTrade] = []
        for trade in trades:
            cursor = self.inbox.cursor(trade.leader)
            if trade.leader not in followed or cursor is None:
                continue  # a leader removed meanwhile
            ts = epoch_seconds(trade)
            if ts < cursor.follow_since:
                self.counters.history_skipped_total += 1
            elif ts < oldest:
                self.counters.too_old_total += 1
            else:
                keep.append(trade)
        cursors = {k: v for k, v in cursors.items() if k in followed}
        new = self.inbox.commit(keep, cursors)
        self.counters.inbox_commits_total += 1
        if new:
            crash_point("after_commit_before_enqueue")  # handed on, not yet queued
        counters = self.counters
        unclaimed = {t.trade_id for t in new}  # the first of equal ids in `keep` is the new one
        for trade in keep:
            if trade.trade_id in unclaimed:
                unclaimed.discard(trade.trade_id)
            else:
                counters.duplicates_total[trade.source] += 1
        now = self._wall()
        for trade in new:
            self._note_received(trade.trade_id)
            counters.trades_received_total[trade.source] += 1
            log.debug(
                "leader_trade_received",
                trade_id=trade.trade_id,
                leader=trade.leader,
                side=trade.side.value,
                asset=trade.asset,
                price=str(trade.price),
                size=str(trade.size),
                source=trade.source,
                lag_s=round(now - trade.timestamp.timestamp(), 3),
            )
            await self._put(trade)
        return len(new)

    def _note_received(self, trade_id: str) -> None:
        received = self.received_at
        if trade_id not in received:
            received[trade_id] = self._clock()
            if len(received) > STREAM_MEMORY:
                received.popitem(last=False)

    async def _put(self, item: IngestItem) -> None:
        queue = self.queue
        if not queue.full():
            queue.put_nowait(item)
            return
        self.counters.queue_full_waits_total += 1
        began = self._clock()
        await queue.put(item)
        self.counters.queue_wait_seconds_total += self._clock() - began

    # --- RTDS side -----------------------------------------------------------------------
    async def _offer(self, trade: LeaderTrade) -> None:
        """A leader trade from RTDS: stage it for the next group commit."""
        seen = self._streams.get(trade.source)
        if seen is None:
            seen = self._streams[trade.source] = OrderedDict()
        if trade.trade_id in seen:
            # The same fill twice on one stream: a repeated message, or a second identical
            # fill of the same tx. REST lists every fill; let it decide.
            self.counters.rtds_repeats_total += 1
            self.counters.duplicates_total[trade.source] += 1
            self.backfills.request([trade.leader])
            return
        seen[trade.trade_id] = None
        if len(seen) > STREAM_MEMORY:
            seen.popitem(last=False)
        if self.inbox.is_recent(trade.trade_id):
            self.counters.duplicates_total[trade.source] += 1
            return
        self._note_received(trade.trade_id)
        while len(self._staged) >= STAGE_MAX:
            self._stage_space.clear()
            await self._stage_space.wait()
        self._staged.append(trade)
        self._stage_ready.set()

    async def _committer(self) -> None:
        while True:
            await self._stage_ready.wait()
            self._stage_ready.clear()
            batch, self._staged = self._staged, []
            self._stage_space.set()
            if batch:
                await self._hand_on(batch, {})

    def _on_ws_connected(self) -> None:
        self.request_backfill()

    def _on_rejected(self, exc: FrameRejected, raw: str | bytes) -> None:
        reason = exc.reason
        self.inbox.dead_letter("rtds", reason, str(exc), raw)
        now = self._clock()
        last, suppressed = self._reject_logged.get(reason, (-1e18, 0))
        if now - last >= REJECT_LOG_INTERVAL_S:
            log.warning(
                "frame_rejected",
                reason=reason,
                error=str(exc),
                frame=describe(raw),
                suppressed=suppressed,
            )
            self._reject_logged[reason] = (now, 0)
        else:
            self._reject_logged[reason] = (last, suppressed + 1)

    # --- periodic work -------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        interval = float(self.settings.poll_interval_s)
        while True:
            await self._sleep(interval)
            # a short look-back while the websocket is healthy; a deep one otherwise
            self.request_backfill(deep=not self.counters.ws_connected)

    async def _housekeeping(self) -> None:
        last_prune = self._clock()
        while True:
            await self._sleep(HOUSEKEEPING_S)
            self.inbox.flush()
            if self._clock() - last_prune >= PRUNE_EVERY_S:
                last_prune = self._clock()
                removed = self.inbox.prune(int(self._wall()))
                if removed:
                    log.info("inbox_pruned", rows=removed)
