"""What the ingester sends, observed from the simulator's side over loopback: refused
upgrades, and one exposure refresh chain per leader."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from pathlib import Path

from polycopy.sim import ErrorStatus, SimConfig, SimServer

from .conftest import eventually, expected_ids, make_ingester, running

A = "0x" + "a1" * 20


async def wait_s(seconds: float) -> None:
    """Let `seconds` of wall time pass (the thing under test runs meanwhile)."""
    until = time.monotonic() + seconds
    await eventually(lambda: time.monotonic() >= until, timeout=seconds + 5)


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
            await eventually(lambda: len(sim.requests(path="/rtds")) >= 3, timeout=10)
            counters = ingester.counters
            assert counters.ws_auth_failed
            assert counters.ws_auth_failures_total >= 3
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
