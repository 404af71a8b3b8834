"""Faults: a silent websocket, malformed frames, disconnects, 429/5xx storms, a full queue."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from polycopy.sim import (
    Disconnect,
    ErrorStatus,
    Malformed,
    RateLimit,
    Silence,
    SimConfig,
    SimServer,
    Truncated,
)

from .conftest import eventually, expected_ids, make_ingester, running, subscribed

A = "0x" + "a1" * 20
B = "0x" + "b2" * 20


async def test_silent_websocket_is_detected_reconnected_and_backfilled(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=21, firehose_per_s=100)) as sim:
        token = sim.add_market().tokens[0].token_id
        # REST polling far away: only the watchdog's reconnect backfill can find the trades
        ingester = make_ingester(
            tmp_path, sim, [A], poll_interval_s=Decimal("600"), ws_stall_s=Decimal("0.6")
        )
        async with running(ingester) as worker:
            await subscribed(sim)
            await eventually(lambda: ingester.backfills.idle)
            silence = sim.faults.arm(Silence())  # open, answers PING, sends nothing
            quiet = [
                sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(n + 1)) for n in range(5)
            ]
            want = expected_ids(f.identity() for f in quiet)
            await eventually(lambda: ingester.counters.ws_stalls_total >= 1, timeout=5)
            await eventually(lambda: worker.has_all(want), timeout=5)
            assert ingester.counters.ws_reconnects_total >= 1
            assert all(t.source == "rest" for t in worker.trades)  # the backfill found them

            sim.faults.clear(silence)
            frames = ingester.counters.frames_total
            await eventually(lambda: ingester.counters.frames_total > frames + 20)  # data again
            await subscribed(sim)
            stalls = ingester.counters.ws_stalls_total
            loud = [
                sim.emit_trade(A, token, "SELL", Decimal("0.5"), Decimal(n + 1)) for n in range(3)
            ]
            want += expected_ids(f.identity() for f in loud)
            await eventually(lambda: worker.has_all(want))
            assert ingester.counters.ws_stalls_total == stalls  # the firehose keeps it alive
        assert sorted(worker.ids) == sorted(want)
        assert {t.source for t in worker.trades[5:]} <= {"rtds:orders_matched", "rtds:trades"}


async def test_dropped_connection_and_refusals_reconnect_with_backoff(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=22)) as sim:
        token = sim.add_market().tokens[0].token_id
        ingester = make_ingester(tmp_path, sim, [A], poll_interval_s=Decimal("600"))
        async with running(ingester) as worker:
            await subscribed(sim)
            await eventually(lambda: ingester.backfills.idle)
            sim.faults.arm(Disconnect(refuse_s=0.8))  # 1006, then 503 on upgrade for 0.8 s
            down = [
                sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(n + 1)) for n in range(4)
            ]
            want = expected_ids(f.identity() for f in down)
            await eventually(lambda: ingester.counters.ws_reconnects_total >= 1, timeout=10)
            await eventually(lambda: worker.has_all(want))
        assert sorted(worker.ids) == sorted(want)
        delays = ingester.rtds.delays
        assert len(delays) >= 2  # the refused upgrades were retried
        assert all(0 <= d <= 0.5 for d in delays)
        assert ingester.counters.ws_errors_total["http_503"] >= 1


async def test_a_stream_of_malformed_frames_is_counted_and_survived(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=23)) as sim:
        token = sim.add_market().tokens[0].token_id
        ingester = make_ingester(tmp_path, sim, [A], poll_interval_s=Decimal("0.3"))
        async with running(ingester) as worker:
            await subscribed(sim)
            sim.faults.arm(Malformed(times=None, probability=0.5))
            sim.faults.arm(Malformed(times=None, probability=0.5, style="garbage"))
            sim.faults.arm(Truncated(times=5))
            fills = [
                sim.emit_trade(A, token, "BUY" if n % 2 else "SELL", Decimal("0.5"), Decimal(n + 1))
                for n in range(40)
            ]
            want = expected_ids(f.identity() for f in fills)
            await eventually(lambda: worker.has_all(want), timeout=15)
            sim.faults.clear()
            ingester.inbox.flush()
            letters = ingester.inbox.dead_letters(limit=1000)
        rejected = ingester.counters.frames_rejected_total
        assert rejected["json"] >= 5  # garbage and truncated frames
        assert rejected["side"] >= 5  # impossible values: side "HOLD" is the first checked
        assert sorted(worker.ids) == sorted(want)  # nothing lost, nothing invented
        assert all(0 < t.price < 1 and t.size > 0 for t in worker.trades)
        assert {reason for _, reason, _, _ in letters} >= {"json", "side"}


async def test_429_and_5xx_storms_retry_boundedly_and_lose_nothing(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=24)) as sim:
        token = sim.add_market().tokens[0].token_id
        ingester = make_ingester(
            tmp_path, sim, [A, B], poll_interval_s=Decimal("0.2"), rest_max_attempts=3
        )
        async with running(ingester) as worker:
            await eventually(lambda: ingester.backfills.idle)
            sim.faults.arm(
                RateLimit(path="/activity", times=None, probability=0.3, retry_after_s=0.05)
            )
            for status in (500, 502, 503, 425):
                sim.faults.arm(
                    ErrorStatus(path="/activity", status=status, times=None, probability=0.1)
                )
            # the websocket misses everything: REST alone has to deliver, through the storm
            sim.faults.arm(Disconnect(refuse_s=5))
            fills = []
            for n in range(40):
                leader = A if n % 2 else B
                fills.append(sim.emit_trade(leader, token, "BUY", Decimal("0.5"), Decimal(n + 1)))
                if n % 5 == 4:
                    await asyncio.sleep(0.1)
            want = expected_ids(f.identity() for f in fills)
            await eventually(lambda: worker.has_all(want), timeout=20)
            counters = ingester.counters
            await eventually(
                lambda: (
                    counters.http_rate_limited_total > 0 and counters.backfill_failures_total > 0
                )
            )
            assert sum(counters.http_retries_total.values()) > 0
            sim.faults.clear()
        counters = ingester.counters
        assert sorted(worker.ids) == sorted(want)
        # bounded: every backfill here is one page, and one page is at most 3 requests
        backfills = counters.backfills_total + counters.backfill_failures_total
        assert len(sim.requests(path="/activity")) <= 3 * backfills
        assert counters.http_failures_total["/activity"] == counters.backfill_failures_total


async def test_429_cools_every_request_down_for_retry_after(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=25)) as sim:
        ingester = make_ingester(tmp_path, sim, [A, B], poll_interval_s=Decimal("0.05"))
        async with running(ingester):
            await eventually(lambda: ingester.backfills.idle)
            sim.faults.arm(RateLimit(path="/activity", times=1, retry_after_s=0.7))
            await eventually(lambda: ingester.counters.http_rate_limited_total == 1)
            limited_at = next(r["at"] for r in sim.requests(path="/activity") if r["status"] == 429)
            await eventually(lambda: time.time() > limited_at + 1.0)
        data_api = ("/activity", "/positions", "/value")
        # requests already on the wire when the 429 came back may land just after it
        later = [
            r["at"] for r in sim.requests() if r["at"] > limited_at + 0.05 and r["path"] in data_api
        ]
        assert later, "polling resumed"
        assert min(later) >= limited_at + 0.7 - 0.02


async def test_permanent_errors_are_not_retried_and_exposure_keeps_its_last_value(
    tmp_path: Path,
) -> None:
    async with SimServer(SimConfig.instant(seed=26)) as sim:
        market = sim.add_market(price=Decimal("0.25"))
        token = market.tokens[0].token_id
        sim.state.set_position(A, token, Decimal("400"), Decimal("0.2"))
        ingester = make_ingester(tmp_path, sim, [A], exposure_refresh_s=Decimal("0.3"))
        async with running(ingester) as worker:
            await eventually(lambda: len(worker.snapshots) >= 1)
            first = worker.snapshots[0]
            assert first.leader == A
            assert first.value == Decimal("100")  # 400 shares at 0.25
            assert first.positions == {token: Decimal("400")}
            age = ingester.exposure.age_s(A)
            assert age is not None
            assert age < 5

            requests = len(sim.requests(path="/value"))
            sim.faults.arm(ErrorStatus(path="/positions", status=404, times=None))
            sim.faults.arm(ErrorStatus(path="/value", status=400, times=None))
            failures = ingester.counters.exposure_failures_total
            await eventually(lambda: ingester.counters.exposure_failures_total >= failures + 2)
            refreshes = len(worker.snapshots)
            assert ingester.exposure.latest[A] == worker.snapshots[-1]  # last value kept
            tries = len(sim.requests(path="/value")) - requests
            assert tries <= ingester.counters.exposure_failures_total - failures + 1  # once each

            sim.faults.clear()
            await eventually(lambda: len(worker.snapshots) > refreshes)


async def test_a_full_queue_waits_and_drops_nothing(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=27)) as sim:
        token = sim.add_market().tokens[0].token_id
        ingester = make_ingester(tmp_path, sim, [A], queue_maxsize=3)
        async with running(ingester) as worker:
            await subscribed(sim)
            await eventually(lambda: ingester.backfills.idle)
            worker.gate.clear()  # the sizing worker is busy
            fills = [
                sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(n + 1)) for n in range(25)
            ]
            want = expected_ids(f.identity() for f in fills)
            await eventually(lambda: ingester.counters.queue_full_waits_total >= 1)
            assert ingester.queue.qsize() <= 3
            await asyncio.sleep(0)
            worker.gate.set()
            await eventually(lambda: worker.has_all(want))
        assert sorted(worker.ids) == sorted(want)
        assert ingester.counters.queue_wait_seconds_total > 0


async def test_client_side_rate_limit_holds_with_many_leaders(tmp_path: Path) -> None:
    leaders = [f"0x{n:040x}" for n in range(1, 41)]
    async with SimServer(SimConfig.instant(seed=28)) as sim:
        # 100 per 10 s: a burst of 10, then 9 per second, across /activity, /positions, /value
        ingester = make_ingester(
            tmp_path,
            sim,
            leaders,
            poll_interval_s=Decimal("0.1"),
            exposure_refresh_s=Decimal("0.5"),
            rest_rate_limit_per_10s=100,
        )
        async with running(ingester):
            await eventually(lambda: len(sim.requests()) >= 30, timeout=10)
            assert ingester.counters.rate_limit_waits_total > 0
        data_api = ("/activity", "/positions", "/value")
        times = sorted(r["at"] for r in sim.requests() if r["path"] in data_api)
        for i, at in enumerate(times):  # any one-second window: burst + one second of refill
            assert sum(1 for t in times[i:] if t < at + 1.0) <= 10 + 9 + 1


async def test_a_refused_upgrade_is_not_hammered_and_rest_carries_on(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=29)) as sim:
        token = sim.add_market().tokens[0].token_id
        sim.faults.arm(ErrorStatus(path="/rtds", status=403, times=None, body="<html>403</html>"))
        # ws_backoff_max_s 30: a refused upgrade waits at least 150 s before the next one
        ingester = make_ingester(
            tmp_path, sim, [A], poll_interval_s=Decimal("0.2"), ws_backoff_max_s=Decimal("30")
        )
        async with running(ingester) as worker:
            await eventually(lambda: ingester.counters.ws_auth_failed)
            fills = [
                sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(n + 1)) for n in range(3)
            ]
            want = expected_ids(f.identity() for f in fills)
            await eventually(lambda: worker.has_all(want))
            upgrades = len(sim.requests(path="/rtds"))
            polls = ingester.counters.backfills_total
            await eventually(lambda: ingester.counters.backfills_total >= polls + 3)
            assert len(sim.requests(path="/rtds")) == upgrades == 1  # not retried yet
            assert ingester.counters.ws_auth_failures_total == 1
            assert ingester.rtds.delays[-1] >= 150
        assert sorted(worker.ids) == sorted(want)
