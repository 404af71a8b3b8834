"""The composition root: `polycopy run`.

    ingest (RTDS + REST + exposure) ──► bounded queue ──► sizing worker ──► execution ──► venue
                                                            │  one writer of attributed state
                          status server ◄── metrics ◄───────┘  ledger (SQLite) ◄─────────┘

Start-up order: configuration validated (exit 78 before any network call) → ledger opened,
state rebuilt → executor built (paper loads no key) → every open intent reconciled with the
venue (nothing is sent before; READY is not sent until it succeeds) → ingest, worker, status,
watchdog under one TaskGroup → READY=1.

SIGHUP validates the new file first and swaps it in between two decisions; SIGTERM/SIGINT stop
intake, drain the queue, settle what is in flight within a bound, flush and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from polycopy import __version__
from polycopy.config import (
    ConfigError,
    LoadedConfig,
    immutable_changes,
    load_config,
    restart_required_changes,
)
from polycopy.domain.copier import Copier, Step
from polycopy.domain.events import Decision, LeaderTrade
from polycopy.domain.killswitch import KillSwitch, TradingState, daily_loss_breached
from polycopy.domain.ledger import LedgerInvariantError
from polycopy.domain.money import ZERO, fmt
from polycopy.domain.reasons import Mode, Reason
from polycopy.domain.sizing import Execution, FillStatus, OrderPlan
from polycopy.execution.clob_http import ClobHttp
from polycopy.execution.errors import InvariantError, ReconcileError, VenueError
from polycopy.execution.market_stream import MarketStream
from polycopy.execution.markets import MarketCatalog
from polycopy.execution.paper import PaperExecutor
from polycopy.execution.port import Executor, OrderIntent, unknown
from polycopy.execution.service import DuplicateIntentError, ExecutionService
from polycopy.execution.settings import ExecutionSettings
from polycopy.execution.states import OrderStatus
from polycopy.ingest.exposure import ExposureSnapshot
from polycopy.ingest.ingester import Ingester, IngestItem
from polycopy.ingest.staleness import is_stale
from polycopy.observability.http import Health, StatusServer, parse_listen, token_problem
from polycopy.observability.logging import bind, emit_record
from polycopy.observability.metrics import Metrics
from polycopy.observability.systemd import Notifier
from polycopy.secrets import load_credentials
from polycopy.store.daemon_state import DaemonState
from polycopy.store.db import Database
from polycopy.store.ledger import Ledger, ledger_path

LOGGER = "polycopy.daemon"
log = structlog.get_logger(LOGGER)

TICK_S = 0.25  # the worker wakes at least this often (netting windows, reloads, stop)
PERIODIC_S = 1.0  # unknown-order look-ups and the daily loss check, busy or idle
FLUSH_EVERY = 256  # decisions per group commit while the queue is busy
RECONCILE_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STATES = tuple(s.value for s in TradingState)
MICRO = Decimal("0.000001")


def preflight(config: LoadedConfig, environ: Mapping[str, str]) -> None:
    """Checks that need no network, done before anything starts (exit 78 on failure)."""
    problems: list[str] = []
    settings = config.settings
    try:
        listen = parse_listen(settings.status.listen)
    except ValueError as exc:
        problems.append(f"status.listen: {exc}")
    else:
        problem = token_problem(listen, environ.get("POLYCOPY_STATUS_TOKEN") or None)
        if problem:
            problems.append(problem)
    problem = file_mode_problem(config.path)
    if problem:
        problems.append(problem)
    if settings.mode == "live":
        try:
            load_credentials(environ)
        except ConfigError as exc:
            problems.extend(f"live mode: {p}" for p in exc.problems)
    if problems:
        raise ConfigError(problems)


def file_mode_problem(path: Path | None) -> str | None:
    """R34: a config file that group or others may write is refused (start and reload)."""
    if path is None or not path.exists():
        return None
    mode = path.stat().st_mode
    if mode & 0o022:
        return f"{path}: writable by group or others (mode {oct(mode & 0o777)}); chmod go-w it"
    return None


class Daemon:
    def __init__(self, config: LoadedConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.environ = dict(os.environ if environ is None else environ)
        self.metrics = Metrics()
        self.notifier = Notifier(self.environ)
        self.started_mono = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.recent: deque[dict[str, Any]] = deque(maxlen=config.settings.daemon.recent_decisions)
        self.outcomes: dict[str, Counter[str]] = {}
        self.reasons: dict[str, Counter[str]] = {}
        self.rates: dict[str, Decimal | None] = {}
        self.kill = KillSwitch()
        self.reconciled = False
        self._ready = False  # READY=1 sent: reconciled, ingest started
        self.reload_error: str | None = None
        self._reload_requested = False
        self._stop = asyncio.Event()
        self._worker_beat = time.monotonic()
        self._processed: list[str] = []
        self._unflushed = 0
        self._marks_ok_at = time.monotonic()
        self._last_resolve = time.monotonic()
        self._last_periodic = time.monotonic()
        self._unknown: dict[str, Decision] = {}  # EXEC_UNKNOWN decisions of this process
        self._gauge_names: set[str] = set()  # leader names with per-leader gauges
        self._resolved: dict[str, Decimal] = {}  # token → payout, for the worker to settle
        self._awaiting_resolution: set[str] = set()  # closed markets without a winner yet
        self._inflight: dict[str, asyncio.Task[None]] = {}  # intent id → its order's task
        self._busy: dict[tuple[str, str], int] = {}  # (leader, token) → orders in flight
        self._order_done = asyncio.Event()
        self._fatal: BaseException | None = None  # an invariant broken inside an order task
        self._baseline: tuple[str, Decimal] | None = None  # (UTC day, total PnL at its start)
        self._synced: dict[int, int] = {}  # metric counter → ingest counter total already added
        # built in run()
        self.db: Database
        self.ledger: Ledger
        self.state: DaemonState
        self.copier: Copier
        self.catalog: MarketCatalog
        self.executor: Executor
        self.service: ExecutionService
        self.ingester: Ingester
        self.status_server: StatusServer
        self._group: asyncio.TaskGroup
        self.market_stream: MarketStream | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def run(self) -> int:
        settings = self.config.settings
        bind(exec_mode=settings.mode)  # paper|live on every log line (R23)
        log.info(
            "daemon_starting",
            version=__version__,
            config_version=self.config.version,
            leaders=len(self.config.leaders),
        )
        self._install_signals()  # first: a SIGTERM while starting up stops cleanly too
        self.db = Database(ledger_path(settings.state_dir, settings.mode))
        try:
            return await self._run()
        finally:
            self.db.close()

    async def _run(self) -> int:
        settings = self.config.settings
        self.ledger = Ledger(self.db, settings.mode)
        self.state = DaemonState(self.db)
        self.kill = self.state.kill_switch()
        exec_settings = ExecutionSettings.from_config(settings.execution)
        self.executor, self.catalog = await self._build_executor(exec_settings)
        try:
            self.copier = Copier(self.config.leaders, markets=self.catalog.rules)
            self.ledger.load_into(self.copier.book)
            for intent in self.ledger.open_intents():
                if intent.leader in self.config.leaders:
                    self.copier.restore_open(self.ledger.plan_of(intent))
            for leader, value, positions, refreshed_at in self.state.exposures():
                if leader in self.config.leaders:
                    self.copier.set_exposure(leader, value, refreshed_at, positions)
            self.service = ExecutionService(
                self.executor,
                self.ledger,
                self.copier.complete,
                order_type=exec_settings.order_type,
            )
            queue: asyncio.Queue[IngestItem] = asyncio.Queue(maxsize=settings.ingest.queue_maxsize)
            self.ingester = Ingester(
                self.db, settings.ingest, settings.endpoints, self.config.leaders, queue=queue
            )
            self.metrics.set_config_version(self.config.version)
            self.metrics.set_trading_state(self.kill.state.value, STATES)
            self.metrics.refresh = self._sync_metrics
            self.status_server = StatusServer(
                parse_listen(settings.status.listen),
                self.environ.get("POLYCOPY_STATUS_TOKEN") or None,
                self.metrics,
                self.status,
                self.health,
                self.halt,
                self.resume,
            )
            await self.status_server.start()
            try:
                await self._reconcile_until_done()
                if self._stop.is_set():
                    return 0
                await self._serve()
            finally:
                await self.status_server.stop()
        finally:
            self.ledger.flush()
            await self.executor.close()
        log.info("daemon_stopped")
        return 0

    async def _build_executor(self, settings: ExecutionSettings) -> tuple[Executor, MarketCatalog]:
        endpoints = self.config.settings.endpoints
        if self.config.settings.mode == "live":
            # imported here: a paper daemon never loads the SDK or the signing code (R23)
            from polycopy.execution.live import LiveExecutor

            live = await LiveExecutor.create(
                load_credentials(self.environ),
                endpoints,
                settings,
                market_stream=settings.book_stream,
            )
            self.market_stream = live.market_stream
            return live, live.catalog
        # paper: no key is loaded, no secure client exists, nothing can reach POST /order
        http = ClobHttp(
            endpoints.clob_url, timeout_s=settings.http_timeout_s, policy=settings.get_policy
        )
        catalog = MarketCatalog(http, ttl_s=settings.market_cache_ttl_s)
        if settings.book_stream:
            self.market_stream = MarketStream(endpoints.clob_ws_url, http, catalog)
        return PaperExecutor(http, catalog, settings, books=self.market_stream), catalog

    async def _reconcile_until_done(self) -> None:
        """R5: no order before every open intent is resolved; READY waits for this."""
        attempt = 0
        while not self._stop.is_set():
            try:
                report = await self.service.reconcile()
            except ReconcileError as exc:
                delay = RECONCILE_BACKOFF_S[min(attempt, len(RECONCILE_BACKOFF_S) - 1)]
                attempt += 1
                log.error("reconcile_failed", error=str(exc), retry_in_s=delay)
                self.notifier.status(f"reconciling failed: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                continue
            for decision in report.resolved:
                self._after_decision(decision)
            self.reconciled = True
            return

    async def _serve(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group  # order tasks run in it too
                ingest_task = group.create_task(self.ingester.run(), name="ingest")
                worker = group.create_task(self._worker(), name="worker")
                helpers = [
                    group.create_task(self._watchdog(), name="watchdog"),
                    group.create_task(self._marks(), name="marks"),
                ]
                if self.market_stream is not None:
                    helpers.append(group.create_task(self.market_stream.run(), name="books"))
                await self.ingester.started.wait()
                self._ready = True
                self.notifier.ready(f"copying {len(self.config.leaders)} leaders")
                log.info(
                    "daemon_ready",
                    leaders=len(self.config.leaders),
                    trading_state=self.kill.state.value,
                )
                await self._stop.wait()
                # stop intake first, then let the worker drain what is queued
                self.notifier.stopping()
                log.info("daemon_stopping", queued=self.ingester.queue.qsize())
                ingest_task.cancel()
                timeout = float(self.config.settings.daemon.shutdown_timeout_s)
                try:
                    await asyncio.wait_for(asyncio.shield(worker), timeout)
                except TimeoutError:
                    log.warning(
                        "drain_timed_out",
                        left=self.ingester.queue.qsize(),
                        orders_in_flight=len(self._inflight),
                    )
                    worker.cancel()
                # an order still unanswered stays open in the ledger and is resolved by
                # look-up at the next start; nothing may run once the ledger is closed
                for task in [*helpers, *self._inflight.values()]:
                    task.cancel()
        finally:
            self._flush()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_stop(self, why: str = "") -> None:
        log.info("stop_requested", signal=why)
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested = True

    # --- the sizing worker: the only writer of attributed state ---------------------------
    async def _worker(self) -> None:
        queue = self.ingester.queue
        while True:
            self._worker_beat = time.monotonic()
            if self._reload_requested:
                self._reload()
            if self._resolved:
                await self._settle_resolved()
            if self._fatal is not None:
                raise self._fatal
            if self._stop.is_set() and queue.empty():
                # netting buffers live in memory only: flush them (each as of its own deadline)
                # rather than lose the deferred trades with the process
                await self._settled([b.key for b in self.copier.netting.buffers()])
                for step in self.copier.drain():
                    await self._process(step, None)
                await self._all_settled()
                break
            try:
                async with asyncio.timeout(TICK_S):
                    item = await queue.get()
            except TimeoutError:
                await self._tick()
                continue
            self.metrics.queue_depth.set(queue.qsize())
            if isinstance(item, ExposureSnapshot):
                self._apply_exposure(item)
            else:
                await self._handle(item)
            if queue.empty() or self._unflushed >= FLUSH_EVERY:
                self._flush()
            if time.monotonic() - self._last_periodic >= PERIODIC_S:
                await self._periodic()
        self._flush()

    def _due_keys(self, now: datetime) -> list[tuple[str, str]]:
        return [b.key for b in self.copier.netting.buffers() if b.due_at <= now]

    async def _tick(self) -> None:
        """Idle: flush netting buffers whose window ended, then the periodic work."""
        now = datetime.now(UTC)
        await self._settled(self._due_keys(now))
        for step in self.copier.due(now):
            await self._process(step, None)
        self._flush()
        if time.monotonic() - self._last_periodic >= PERIODIC_S:
            await self._periodic()

    async def _periodic(self) -> None:
        self._last_periodic = time.monotonic()
        interval = float(self.config.settings.daemon.resolve_interval_s)
        if time.monotonic() - self._last_resolve >= interval and self.ledger.open_intents():
            self._last_resolve = time.monotonic()
            for decision in await self.service.resolve_open(skip=set(self._inflight)):
                self._after_decision(decision)
        await self._check_daily_loss()

    def _apply_exposure(self, snapshot: ExposureSnapshot) -> None:
        if snapshot.leader not in self.copier.configs:
            return
        self.copier.set_exposure(
            snapshot.leader, snapshot.value, snapshot.refreshed_at, snapshot.positions
        )
        self.state.save_exposure(
            snapshot.leader, snapshot.value, snapshot.positions, snapshot.refreshed_at
        )

    async def _handle(self, trade: LeaderTrade) -> None:
        received = self.ingester.received_at.pop(trade.trade_id, None)
        if received is not None:
            self.metrics.queue_wait.observe(time.monotonic() - received)
        if self.ledger.has_decision(trade.trade_id):
            # Decided before a restart: the decision was durable but the trade's inbox mark
            # was not (an intent or settle transaction commits queued decisions too), so the
            # ingester handed it on again. One decision per trade, whatever the state now.
            log.info("trade_already_decided", trade_id=trade.trade_id)
            self._processed.append(trade.trade_id)
            return
        now = datetime.now(UTC)
        self.metrics.ingest_lag.observe(max(0.0, (now - trade.timestamp).total_seconds()))
        if not self.copier.knows(trade.leader):
            # never followed by this process (a trade handed on again after a restart whose
            # configuration no longer has the leader): nothing to decide it with
            log.warning("trade_of_unknown_leader", trade_id=trade.trade_id, leader=trade.leader)
            self._processed.append(trade.trade_id)
            return
        if self.copier.book.mark(trade.asset) is None:
            self.copier.book.set_mark(trade.asset, trade.price)  # last known price, for now
        if self.catalog.cached(trade.asset) is None:
            try:
                await self.catalog.get(trade.asset, trade.condition_id)
            except VenueError as exc:  # the default profile sizes it; execution re-checks
                log.warning("market_rules_unavailable", asset=trade.asset, error=str(exc))
        key = (trade.leader, trade.asset)
        await self._settled([key, *self._due_keys(now)])
        for step in self.copier.due(now):
            await self._process(step, None)
        # a flush that fell due just now may be an order of this very (leader, token): the
        # trade is sized only once its fills are in (a SELL on the shares actually held)
        await self._settled([key])
        max_age = float(self.config.settings.ingest.max_event_age_s)
        gate: Reason | None = None
        if is_stale(trade, now, max_age):
            gate = Reason.STALE_EVENT
        gate = gate or self.kill.gate(trade.side)
        for step in self.copier.handle(trade, now, gate):
            await self._process(step, received)
        self._processed.append(trade.trade_id)

    async def _process(self, step: Step, received: float | None) -> None:
        if isinstance(step, OrderPlan) and (halted := self.kill.gate(step.side)) is not None:
            # A netting flush falling due while halted, or a halt that came between a trade's
            # sizing and its order: the plan is answered KILL_SWITCH and nothing is sent (R25).
            step = self.copier.complete(step, Execution(FillStatus.NONE, reason=halted))
        if not isinstance(step, OrderPlan):
            self.ledger.record_decision(step)
            self._unflushed += 1
            self._after_decision(step)
            return
        try:
            intent = self.service.begin(step)
        except DuplicateIntentError as exc:
            # decided before a restart: already sent and settled, never again
            self.copier.abandon(step)
            log.info("duplicate_intent_skipped", decision_id=step.decision_id, why=str(exc))
            return
        except (InvariantError, LedgerInvariantError) as exc:
            self.copier.abandon(step)
            await self._trip(TradingState.HALTED, f"invariant failed: {exc}")
            raise
        if intent.status is not OrderStatus.NEW:  # sent before a restart: ask, never resend
            try:
                self._after_decision(await self.service.resume(intent))
            except DuplicateIntentError:
                self.copier.abandon(step)
            return
        # The intent is durable: the order runs on its own while the worker moves on. Its
        # settle (fills → ledger and attributed book) is synchronous, so it never interleaves
        # with a decision; trades of the same (leader, token) wait for it (`_settled`).
        limit = self.config.settings.daemon.max_inflight_orders
        while len(self._inflight) >= limit:
            await self._order_done.wait()
            self._order_done.clear()
        key = (step.leader, step.asset)
        self._busy[key] = self._busy.get(key, 0) + 1
        self._inflight[intent.intent_id] = self._group.create_task(
            self._run_order(step, intent, received), name=f"order-{intent.intent_id}"
        )

    async def _run_order(
        self, plan: OrderPlan, intent: OrderIntent, received: float | None
    ) -> None:
        key = (plan.leader, plan.asset)
        try:
            try:
                report = await self.service.run(plan, intent)
            except asyncio.CancelledError:
                raise  # stopping: the intent stays open and is resolved by look-up at start
            except (InvariantError, LedgerInvariantError) as exc:
                # our own bookkeeping would break (e.g. the SDK signed other amounts than
                # ours): stop trading and exit non-zero; the open intent is resolved by
                # look-up at the next start, which stays HALTED until an operator resumes
                log.exception("order_invariant_failed", intent_id=intent.intent_id)
                await self._trip(TradingState.HALTED, f"invariant failed: {exc}")
                self._fatal = exc
                return
            except Exception as exc:
                log.exception("order_run_failed", intent_id=intent.intent_id)
                report = unknown(intent.order_hash, f"{type(exc).__name__} while executing")
            try:
                decision = self.service.settle(plan, intent, report)
            except (InvariantError, LedgerInvariantError) as exc:
                await self._trip(TradingState.HALTED, f"invariant failed: {exc}")
                self._fatal = exc
                return
            if received is not None:
                self.metrics.detection_to_order.observe(time.monotonic() - received)
            self._after_decision(decision)
        finally:
            self._inflight.pop(intent.intent_id, None)
            left = self._busy.get(key, 1) - 1
            if left:
                self._busy[key] = left
            else:
                self._busy.pop(key, None)
            self._order_done.set()

    async def _settled(self, keys: Collection[tuple[str, str]]) -> None:
        """Wait until no order of these (leader, token) keys is in flight: a decision about
        them must see those fills (a SELL sizes on the shares actually held)."""
        while any(key in self._busy for key in keys):
            await self._order_done.wait()
            self._order_done.clear()

    async def _all_settled(self) -> None:
        while self._inflight:
            await self._order_done.wait()
            self._order_done.clear()

    def _after_decision(self, decision: Decision) -> None:
        """Log, count and show one decision. An order of unknown outcome that the venue
        answers later revises its EXEC_UNKNOWN decision: logged as `copy_revised`, counted
        once (the earlier outcome and reasons are taken back from /status)."""
        record = decision.to_record()
        leader = decision.leader
        outcomes = self.outcomes.setdefault(leader, Counter())
        reasons = self.reasons.setdefault(leader, Counter())
        earlier = self._unknown.pop(decision.decision_id, None)
        event = "copy_decided"
        if earlier is not None:
            outcomes[earlier.outcome.value] -= 1
            reasons.subtract(r.value for r in earlier.reasons)
            event = "copy_revised"
            self.metrics.record_revision(earlier, decision)
        else:
            self.metrics.record_decision(decision)
        if not emit_record(LOGGER, event, decision.to_json()):
            log.info(event, **record)
        if decision.reasons[-1:] == (Reason.EXEC_UNKNOWN,):
            self._unknown[decision.decision_id] = decision
        self.recent.append(record)
        outcomes[decision.outcome.value] += 1
        reasons.update(r.value for r in decision.reasons)
        if earlier is not None:
            for counter in (outcomes, reasons):
                for key in [k for k, n in counter.items() if n <= 0]:
                    del counter[key]
        if decision.rate is not None:
            self.rates[leader] = decision.rate

    def _flush(self) -> None:
        """Group commit: queued decisions and the inbox marks of the trades they answer."""
        processed, self._processed = self._processed, []
        self._unflushed = 0
        if processed:
            self.ledger.flush(also=lambda: self.ingester.mark_processed(processed))
        else:
            self.ledger.flush()

    # --- kill switch ------------------------------------------------------------------------
    async def _trip(self, state: TradingState, reason: str) -> None:
        tripped = self.kill.trip(state, reason, datetime.now(UTC))
        if tripped is self.kill:
            return
        self.kill = tripped
        self.state.save_kill_switch(tripped, datetime.now(UTC))
        self.metrics.set_trading_state(tripped.state.value, STATES)
        log.warning("kill_switch_tripped", state=tripped.state.value, reason=reason)

    async def halt(self, reason: str, state: str = "HALTED") -> dict[str, Any]:
        """Operator command: HALTED sends nothing; REDUCING still mirrors exits."""
        await self._trip(TradingState(state), reason)
        return {"trading_state": self.kill.state.value, "reason": self.kill.reason}

    async def resume(self, reason: str) -> dict[str, Any]:
        self.kill = self.kill.resume(datetime.now(UTC))
        self.state.save_kill_switch(self.kill, datetime.now(UTC))
        self.metrics.set_trading_state(self.kill.state.value, STATES)
        log.warning("kill_switch_reset", reason=reason)
        return {"trading_state": self.kill.state.value}

    def total_pnl(self) -> Decimal:
        book = self.copier.book
        total = ZERO
        for leader in book.leaders():
            pnl = book.pnl(leader)
            total += pnl.realized + pnl.unrealized
        return total

    async def _check_daily_loss(self) -> None:
        limit = self.config.settings.risk.max_daily_loss_usdc
        if limit is None:
            return
        now = datetime.now(UTC)
        current = self.total_pnl()  # at the last marks known, fresh or not
        day = now.date().isoformat()
        if self._baseline is None or self._baseline[0] != day:
            # The day's first look sets its baseline even while halted or with stale marks:
            # taken later, it would forgive the losses made in between.
            self._baseline = (day, self.state.pnl_baseline(now.date(), current, now))
        if self.kill.state is TradingState.HALTED:
            return
        stale = float(self.config.settings.daemon.mark_stale_s)
        holding = bool(self.copier.book.assets())
        fresh = not holding or time.monotonic() - self._marks_ok_at <= stale
        pnl = current - self._baseline[1] if fresh else None
        if daily_loss_breached(pnl, limit):
            # at once: the very next trade must see it (a task would run after a burst)
            if pnl is None:  # fail closed
                await self._trip(
                    TradingState.HALTED, "daily loss limit: PnL cannot be computed (stale marks)"
                )
            else:
                state = TradingState(self.config.settings.risk.daily_loss_state)
                why = f"daily loss limit: PnL today {fmt(pnl)} below -{fmt(limit)}"
                await self._trip(state, why)

    # --- marks: book mid of every held token ----------------------------------------------
    async def _marks(self) -> None:
        """Re-mark every held token at its book mid. A token without a book any more has
        resolved (or awaits resolution): the worker settles it at its payout once the market
        names a winner; until then it keeps its last mark."""
        endpoints = self.config.settings.endpoints
        interval = float(self.config.settings.daemon.mark_refresh_s)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                await asyncio.sleep(interval)
                self.copier.book.forget_unheld_marks()
                failed = 0
                for asset in self.copier.book.assets():
                    try:
                        async with http.get(
                            f"{endpoints.clob_url}/midpoint", params={"token_id": asset}
                        ) as resp:
                            no_book = resp.status == 404
                            body = await resp.json(content_type=None) if resp.ok else None
                        if no_book:
                            if not await self._check_resolution(http, asset):
                                failed += 1
                            continue
                        if body is None:
                            failed += 1
                            continue
                        mid = Decimal(str(body.get("mid") or body.get("mid_price")))
                    except (
                        aiohttp.ClientError,
                        TimeoutError,
                        ValueError,
                        ArithmeticError,
                        AttributeError,
                    ):
                        failed += 1
                        continue
                    if 0 < mid < 1:
                        self.copier.book.set_mark(asset, mid)
                        self.ledger.set_mark(asset, mid)
                if not failed:
                    self._marks_ok_at = time.monotonic()

    async def _check_resolution(self, http: aiohttp.ClientSession, asset: str) -> bool:
        """A held token has no order book: ask its market. True when that is explained — the
        market resolved (its payout is queued for the worker to settle) or is closed awaiting
        resolution (the last mark stands); False when it cannot be told (a failed mark)."""
        condition = self.ledger.condition_of(asset)
        if condition is None:
            return False
        url = f"{self.config.settings.endpoints.clob_url}/markets/{condition}"
        async with http.get(url) as resp:
            if resp.status != 200:
                return False
            market = await resp.json(content_type=None)
        if not isinstance(market, dict) or not market.get("closed"):
            return False
        tokens = [t for t in market.get("tokens") or [] if isinstance(t, dict)]
        if not any(t.get("winner") is True for t in tokens):
            if asset not in self._awaiting_resolution:
                self._awaiting_resolution.add(asset)
                log.info("market_awaiting_resolution", asset=asset, condition_id=condition)
            return True
        won = any(str(t.get("token_id")) == asset and t.get("winner") is True for t in tokens)
        self._awaiting_resolution.discard(asset)
        self._resolved[asset] = Decimal(1) if won else ZERO
        return True

    async def _settle_resolved(self) -> None:
        """The worker's part of a resolution: every leader's copies of the token leave the
        attributed book and the ledger at the payout, their PnL realised."""
        while self._resolved:
            asset, payout = self._resolved.popitem()
            holders = self.copier.book.holders(asset)
            await self._settled([(leader, asset) for leader in holders])
            for leader in holders:
                realized = self.copier.book.settle(leader, asset, payout)
                settled = self.ledger.settle_resolved(leader, asset, payout)
                log.info(
                    "position_settled",
                    leader=leader,
                    asset=asset,
                    payout=fmt(payout),
                    shares=fmt(settled.shares) if settled else None,
                    realized_pnl=fmt(realized),
                )

    # --- reload -----------------------------------------------------------------------------
    def _reload(self) -> None:
        self._reload_requested = False
        self.notifier.reloading()
        path = self.config.path
        try:
            new = load_config(path, self.environ)
            unsafe = file_mode_problem(path)
            if unsafe:
                raise ConfigError([unsafe])
            frozen = immutable_changes(self.config.settings, new.settings)
            if frozen:
                raise ConfigError(
                    [f"{key}: cannot change while running; restart to apply" for key in frozen]
                )
        except ConfigError as exc:
            self.reload_error = "; ".join(exc.problems)
            self.metrics.config_reloads.labels("rejected").inc()
            log.error(
                "config_reload_rejected",
                reason=self.reload_error,
                config_version=self.config.version,
            )
            self.notifier.ready()
            return
        later = restart_required_changes(self.config.settings, new.settings)
        old = self.config
        self.config = new
        self.copier.set_configs(new.leaders)
        self.ingester.set_leaders(new.leaders)
        self.reload_error = None
        self.metrics.config_reloads.labels("applied").inc()
        self.metrics.set_config_version(new.version)
        log.info(
            "config_reloaded",
            config_version=new.version,
            previous=old.version,
            leaders=len(new.leaders),
            needs_restart=later or None,
        )
        for warning in new.warnings:
            log.warning("config_warning", warning=warning)
        self.notifier.ready()

    # --- health and status ------------------------------------------------------------------
    def health(self) -> Health:
        reasons = []
        now = time.monotonic()
        if not self.reconciled:
            reasons.append("start-up reconciliation not done")
        elif not self._ready:
            reasons.append("starting")
        settings = self.config.settings.daemon
        if now - self._worker_beat > float(settings.worker_stall_s):
            reasons.append(f"worker silent for {now - self._worker_beat:.0f}s")
        age = self.ingest_age_s()
        limit = float(settings.ingest_stale_s)
        # a daemon that just started has the same grace to hear from the feed
        silent = now - self.started_mono if age is None else age
        if silent > limit:
            shown = "never" if age is None else f"{age:.0f}s ago"
            reasons.append(f"ingest stale: last data {shown} (limit {limit:.0f}s)")
        return Health(not reasons, reasons)

    def ingest_age_s(self) -> float | None:
        counters = self.ingester.counters
        last = max(
            (t for t in (counters.ws_last_data_at, counters.rest_last_ok_at) if t), default=None
        )
        return None if last is None else time.monotonic() - last

    async def _watchdog(self) -> None:
        """WATCHDOG=1 only while healthy: a blocked loop or a dead feed gets restarted."""
        interval = self.notifier.watchdog_interval_s or 5.0
        while True:
            self._sync_metrics()
            if self.health().healthy:
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _sync_metrics(self) -> None:
        """Gauges and counters kept elsewhere (ingest counters, exposure ages), brought up to
        date for /metrics."""
        metrics = self.metrics
        counters = self.ingester.counters
        age = self.ingest_age_s()
        if age is not None:
            metrics.last_event_age.set(age)
        metrics.submit_unknown.set(len(self.ledger.open_intents()))
        metrics.queue_depth.set(self.ingester.queue.qsize())
        metrics.ws_auth_failed.set(1 if counters.ws_auth_failed else 0)
        for counter, total in (
            (metrics.queue_full_waits, counters.queue_full_waits_total),
            (metrics.ws_reconnects, counters.ws_reconnects_total),
            (metrics.alerts, self.alerts()),
            (metrics.ws_auth_failures, counters.ws_auth_failures_total),
            (metrics.positions_fallbacks, counters.positions_fallbacks_total),
        ):
            behind = total - self._synced.get(id(counter), 0)
            if behind > 0:
                counter.inc(behind)
                self._synced[id(counter)] = total
        self._sync_leader_gauges()

    def _sync_leader_gauges(self) -> None:
        """E_u, its age, r_u, A_u, B_u and A_u/B_u per followed leader — A_u moves with marks
        too, so it is read here rather than after each decision; a leader a reload removed
        leaves the gauges."""
        metrics = self.metrics
        now = datetime.now(UTC)
        names = set()
        for leader, cfg in self.config.leaders.items():
            name = cfg.name
            names.add(name)
            exposure = self.copier.exposure_for(leader, "", now)
            if exposure.value is not None:
                metrics.leader_exposure.labels(name).set(float(exposure.value))
            if exposure.age_s is not None:
                metrics.leader_exposure_age.labels(name).set(exposure.age_s)
            rate = self.rates.get(leader)
            if rate is not None:
                metrics.leader_rate.labels(name).set(float(rate))
            attributed = self.copier.book.exposure(leader)
            metrics.leader_attributed.labels(name).set(float(attributed))
            if cfg.budget_usdc and cfg.mode is Mode.BUDGETED_DYNAMIC:
                metrics.leader_budget.labels(name).set(float(cfg.budget_usdc))
                metrics.leader_utilization.labels(name).set(float(attributed / cfg.budget_usdc))
        for gauge in metrics.per_leader_gauges():
            for gone in self._gauge_names - names:
                with contextlib.suppress(KeyError):
                    gauge.remove(gone)
        self._gauge_names = names

    def status(self) -> dict[str, Any]:
        settings = self.config.settings
        now = datetime.now(UTC)
        leaders = []
        for address, cfg in sorted(self.config.leaders.items(), key=lambda kv: kv[1].name):
            attributed = self.copier.book.exposure(address)
            exposure = self.copier.exposure_for(address, "", now)
            pnl = self.copier.book.pnl(address)
            budget = cfg.budget_usdc if cfg.mode is Mode.BUDGETED_DYNAMIC else None
            rate = self.rates.get(address)
            leaders.append(
                {
                    "leader": address,
                    "name": cfg.name,
                    "mode": cfg.mode.value,
                    "enforcement": cfg.enforcement.value if budget is not None else None,
                    "budget": fmt(budget) if budget is not None else None,
                    "exposure": fmt(exposure.value) if exposure.value is not None else None,
                    "exposure_age_s": exposure.age_s,
                    "rate": fmt(rate) if rate is not None else None,
                    "attributed": fmt(attributed.quantize(MICRO)),
                    "headroom": fmt((budget - attributed).quantize(MICRO))
                    if budget is not None and cfg.hard_budget
                    else None,
                    "utilization": fmt((attributed / budget).quantize(Decimal("0.0001")))
                    if budget
                    else None,
                    "realized_pnl": fmt(pnl.realized.quantize(MICRO)),
                    "unrealized_pnl": fmt(pnl.unrealized.quantize(MICRO)),
                    "outcomes": dict(self.outcomes.get(address, {})),
                    "reasons": dict(self.reasons.get(address, {})),
                }
            )
        counters = self.ingester.counters
        queue = self.ingester.queue
        return {
            "version": __version__,
            "mode": settings.mode,
            "trading_state": self.kill.state.value,
            "trading_reason": self.kill.reason,
            "config_version": self.config.version,
            "last_reload_error": self.reload_error,
            "started_at": self.started_at.isoformat(),
            "uptime_s": round(time.monotonic() - self.started_mono, 1),
            "reconciled": self.reconciled,
            "bankroll_usdc": fmt(settings.bankroll_usdc),
            "queue": {
                "depth": queue.qsize(),
                "maxsize": settings.ingest.queue_maxsize,
                "full_waits": counters.queue_full_waits_total,
            },
            "ingest": {
                "healthy": self.health().healthy,
                "last_event_age_s": self.ingest_age_s(),
                "ws_connected": counters.ws_connected,
                "ws_reconnects": counters.ws_reconnects_total,
                "ws_stalls": counters.ws_stalls_total,
                "ws_auth_failed": counters.ws_auth_failed,
                "frames_rejected": sum(counters.frames_rejected_total.values()),
                "trades_received": sum(counters.trades_received_total.values()),
                "duplicates": sum(counters.duplicates_total.values()),
            },
            "orders": {"open_intents": len(self.ledger.open_intents()), "alerts": self.alerts()},
            "books": self._books_status(),
            "leaders": leaders,
            "recent_decisions": list(self.recent),
        }

    def _books_status(self) -> dict[str, Any] | None:
        stream = self.market_stream
        if stream is None:
            return None
        return {
            "stream_connected": stream.connected,
            "from_stream": stream.served,
            "from_get_book": stream.fell_back,
            "frames_rejected": stream.frames_rejected,
        }

    def alerts(self) -> int:
        return self.executor.alerts + self.ledger.alerts

    def _name(self, leader: str) -> str:
        cfg = self.copier.configs.get(leader)
        return cfg.name if cfg else leader


def run(config_path: Path | str | None, environ: Mapping[str, str] | None = None) -> int:
    """`polycopy run`: validate everything that needs no network, then run the daemon."""
    env = dict(os.environ if environ is None else environ)
    config = load_config(config_path, env)
    preflight(config, env)
    # here, not in the event loop: the start-up warnings and a daemon_failed line carry it too
    bind(exec_mode=config.settings.mode)
    for warning in config.warnings:
        log.warning("config_warning", warning=warning)
    return asyncio.run(Daemon(config, env).run())
