"""What the ingester sends, observed from the simulator's side over loopback: PING cadence,
cache-busters, `/positions` parameters, reconnect backoff, refused upgrades, and one exposure
refresh chain per leader."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from decimal import Decimal
from pathlib import Path

from polycopy.domain.events import LeaderTrade
from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.decode import FrameRejected
from polycopy.ingest.rtds import RtdsSource
from polycopy.sim import Disconnect, ErrorStatus, SimConfig, SimServer

from .conftest import eventually, expected_ids, make_ingester, running, subscribed

A = "0x" + "a1" * 20
B = "0x" + "b2" * 20


async def wait_s(seconds: float) -> None:
    """Let `seconds` of wall time pass (the thing under test runs meanwhile)."""
    until = time.monotonic() + seconds
    await eventually(lambda: time.monotonic() >= until, timeout=seconds + 5)


async def test_ping_goes_out_every_ws_ping_interval_s(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=41)) as sim:  # no firehose: PONGs only
        interval = 0.2
        ingester = make_ingester(
            tmp_path, sim, [A], ws_ping_interval_s=Decimal(str(interval)), ws_stall_s=Decimal(60)
        )
        async with running(ingester):
            await subscribed(sim)
            skipped = ingester.counters.frames_skipped_total
            await eventually(lambda: skipped["keepalive"] >= 1)  # the simulator answers PING
            began, first = time.monotonic(), skipped["keepalive"]
            await wait_s(2.0)
            answered = skipped["keepalive"] - first
            elapsed = time.monotonic() - began
        # one PING per interval: not silent, and not faster than the interval
        assert elapsed / interval * 0.5 <= answered <= elapsed / interval + 1
        assert ingester.counters.ws_stalls_total == 0  # PONGs are not data, but 60 s is long


async def test_every_request_is_cache_busted_and_positions_ask_for_dust(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=42)) as sim:
        market = sim.add_market(price=Decimal("0.4"))
        token = market.tokens[0].token_id
        sim.state.set_position(A, token, Decimal("0.5"), Decimal("0.3"))  # below 1 share
        ingester = make_ingester(
            tmp_path, sim, [A, B], poll_interval_s=Decimal("0.1"), exposure_refresh_s=Decimal("0.3")
        )
        async with running(ingester) as worker:
            await eventually(lambda: len(sim.requests(path="/positions")) >= 4)
            await eventually(lambda: len(sim.requests(path="/activity")) >= 6)
            await eventually(lambda: any(s.leader == A for s in worker.snapshots))
        data_api = [r for r in sim.requests() if r["path"] in ("/activity", "/positions", "/value")]
        busters = [r["query"].get("_") for r in data_api]
        assert None not in busters
        assert len(set(busters)) == len(busters)  # a new URL every time: the CDN cannot answer
        positions = sim.requests(path="/positions")
        assert {r["query"]["sizeThreshold"] for r in positions} == {"0"}
        exposure = next(s for s in worker.snapshots if s.leader == A)
        assert exposure.positions == {token: Decimal("0.5")}  # the dust position counts
        assert exposure.value == Decimal("0.2")


class Jitter:
    """A seeded random source that remembers what it returned (never 0, so ratios exist)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.drawn: list[float] = []

    def __call__(self) -> float:
        value = self._rng.uniform(0.2, 1.0)
        self.drawn.append(value)
        return value


async def test_reconnect_delays_grow_to_the_cap_with_jitter_and_reset_after_data(
    tmp_path: Path,
) -> None:
    initial, cap = 0.02, 0.16
    async with SimServer(SimConfig.instant(seed=43)) as sim:
        token = sim.add_market().tokens[0].token_id
        jitter = Jitter(7)
        received: list[LeaderTrade] = []
        connects = 0

        async def on_trade(trade: LeaderTrade) -> None:
            received.append(trade)

        def on_connected() -> None:
            nonlocal connects
            connects += 1

        def on_rejected(exc: FrameRejected, raw: str | bytes) -> None:
            raise AssertionError(f"unexpected bad frame: {exc}")

        source = RtdsSource(
            sim.rtds_url,
            frozenset({A}),
            on_trade,
            on_connected,
            on_rejected,
            IngestCounters(),
            ping_interval_s=5.0,
            stall_s=60.0,
            backoff_initial_s=initial,
            backoff_max_s=cap,
            random_fn=jitter,
        )
        task = asyncio.create_task(source.run())
        try:
            await subscribed(sim)
            sim.faults.arm(Disconnect(refuse_s=1.2))  # dropped, then 503 on upgrade for 1.2 s
            await eventually(lambda: connects >= 2, timeout=10)
            refused = len(source.delays)
            assert refused >= 6
            ceilings = [d / r for d, r in zip(source.delays, jitter.drawn, strict=True)]
            expected = [min(cap, initial * 2**n) for n in range(refused)]
            assert [round(c, 9) for c in ceilings] == [round(c, 9) for c in expected]
            assert ceilings[-1] == cap  # grew to the cap and stayed there
            ratios = [d / c for d, c in zip(source.delays, ceilings, strict=True)]
            assert max(ratios) - min(ratios) > 0.2  # jittered, not the bare ceiling

            # a connection that delivered data: the next drop starts from the first step again
            await subscribed(sim)
            sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(1))
            await eventually(lambda: len(received) >= 1)
            sim.faults.arm(Disconnect())
            await eventually(lambda: connects >= 3, timeout=10)
            assert len(source.delays) == refused + 1
            assert round(source.delays[-1] / jitter.drawn[-1], 9) == initial
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_a_refused_upgrade_is_retried_with_a_long_backoff_and_recovers(
    tmp_path: Path,
) -> None:
    async with SimServer(SimConfig.instant(seed=44)) as sim:
        token = sim.add_market().tokens[0].token_id
        sim.faults.arm(ErrorStatus(path="/rtds", status=403, times=None, body="<html>403</html>"))
        # a refused upgrade waits 10 × ws_backoff_max_s (0.05 → 0.5 s), doubling, at least half
        ingester = make_ingester(
            tmp_path, sim, [A], poll_interval_s=Decimal("0.2"), ws_backoff_max_s=Decimal("0.05")
        )
        async with running(ingester) as worker:
            counters = ingester.counters
            # the simulator records each upgrade before the client has read its 403
            await eventually(lambda: counters.ws_auth_failures_total >= 3, timeout=10)
            assert counters.ws_auth_failed
            assert len(sim.requests(path="/rtds")) >= 3
            fill = sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(1))
            await eventually(lambda: worker.has_all(expected_ids([fill.identity()])))
            attempts = [r["at"] for r in sim.requests(path="/rtds")]
            gaps = [b - a for a, b in itertools.pairwise(attempts)]
            assert gaps[0] >= 0.25 - 0.02  # half of 0.5 s at least
            assert gaps[1] >= 0.5 - 0.02  # then half of 1 s: not hammered
            assert all(d >= 0.25 for d in ingester.rtds.delays)

            sim.faults.clear()
            await eventually(lambda: counters.ws_connected, timeout=10)
            assert not counters.ws_auth_failed  # visible on /status until it recovers
            live = sim.emit_trade(A, token, "SELL", Decimal("0.5"), Decimal(2))
            await eventually(lambda: worker.has_all(expected_ids([live.identity()])))


def requests_for(sim: SimServer, path: str, user: str, after: float) -> list[float]:
    return [
        r["at"]
        for r in sim.requests(path=path)
        if r["query"].get("user") == user and r["at"] > after
    ]


async def test_a_leader_removed_and_added_again_has_one_exposure_refresh_chain(
    tmp_path: Path,
) -> None:
    async with SimServer(SimConfig.instant(seed=45)) as sim:
        ingester = make_ingester(
            tmp_path, sim, [A], exposure_refresh_s=Decimal("0.5"), poll_interval_s=Decimal(60)
        )
        async with running(ingester) as worker:
            await eventually(lambda: len(worker.snapshots) >= 1)
            ingester.set_leaders([])
            ingester.set_leaders([A])
            began = time.time()
            await wait_s(2.6)
            refreshes = requests_for(sim, "/positions", A, began)
        # one refresh at once for the re-added leader, then one every ~0.5 s: about 6
        assert 3 <= len(refreshes) <= 7, refreshes


async def test_a_malformed_positions_row_falls_back_to_value(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=46)) as sim:
        market = sim.add_market(price=Decimal("0.25"))
        sim.state.set_position(A, market.tokens[0].token_id, Decimal("400"), Decimal("0.2"))
        bad = '[{"proxyWallet":"' + A + '","asset":"1","curPrice":0.5,"size":3,"currentValue":-2}]'
        sim.faults.arm(ErrorStatus(path="/positions", status=200, times=None, body=bad))
        ingester = make_ingester(tmp_path, sim, [A], exposure_refresh_s=Decimal("3600"))
        async with running(ingester) as worker:
            await eventually(lambda: len(worker.snapshots) >= 1)
        snapshot = worker.snapshots[0]
        assert snapshot.value == Decimal("100")  # /value: 400 shares at 0.25
        assert snapshot.positions is None  # P unknown: the worker keeps its last one
        counters = ingester.counters
        assert counters.positions_fallbacks_total == 1
        assert counters.exposure_failures_total == 0
        assert len(sim.requests(path="/value")) == 1
