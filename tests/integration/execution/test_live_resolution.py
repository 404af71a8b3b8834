"""Resolving live orders by look-up, with the real SDK against the simulator (and, for what
the simulator cannot script, a loopback front that reshapes its answers): a fill is never
lost to a venue that is slow to show it, an odd answer is never taken for a rejection, a
truncated trade listing is never taken for "no fill", fills found after a restart carry the
market's fee, and a venue that names an order differently is followed by its own id."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sim_rig import LEADER, Rig, build_rig
from venue_front import VenueFront

from polycopy.domain.reasons import Outcome, Reason
from polycopy.execution.states import OrderStatus
from polycopy.sim import ErrorStatus, SimServer

D = Decimal
EMPTY_TRADES = json.dumps({"limit": 100, "next_cursor": "LTE=", "count": 0, "data": []})


def hide_trades() -> ErrorStatus:
    """`/data/trades` answers, in its own shape, that there are no trades (yet)."""
    return ErrorStatus(path="/data/trades", method="GET", status=200, body=EMPTY_TRADES, times=None)


def market(sim: SimServer, asks: list[tuple[Decimal, Decimal]] | None = None) -> str:
    token = sim.add_market(price=D("0.50")).tokens[0].token_id
    sim.set_book(token, [(D("0.49"), D("100"))], asks or [(D("0.50"), D("1000"))])
    return token


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path) -> AsyncIterator[Rig]:
    built = await build_rig("live", sim, tmp_path)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def alerting(sim: SimServer, tmp_path: Path) -> AsyncIterator[Rig]:
    """A rig whose missing-fills alert bound is 0 s (its default is minutes)."""
    built = await build_rig("live", sim, tmp_path, tuning={"fills_missing_alert_s": 0})
    try:
        yield built
    finally:
        await built.close()


async def test_a_matched_order_whose_trades_lag_stays_open_until_they_show(
    alerting: Rig,
) -> None:
    rig = alerting
    token = market(rig.sim)
    hidden = rig.sim.faults.arm(hide_trades())
    decision = await rig.copy(token, "BUY", "0.50", "10")  # $5: the venue matches it all
    [order] = rig.sim_orders()
    assert order["status"] == "matched"
    assert len(order["fills"]) == 1  # type: ignore[arg-type]
    # /data/order says MATCHED, size_matched 10, but no trade is visible: not "no fill"
    assert decision.outcome is Outcome.FAILED
    assert decision.reasons == (Reason.EXEC_UNKNOWN,)
    [intent] = rig.ledger.open_intents()
    assert intent.status is OrderStatus.UNKNOWN
    assert rig.ledger.reserved(LEADER) == D(5)
    for _ in range(4):  # more look-ups than ever close an unseen order: still open
        assert await rig.service.resolve_open() == []
    assert [i.intent_id for i in rig.ledger.open_intents()] == [intent.intent_id]
    assert rig.ledger.fills() == []
    assert rig.executor.alerts >= 1  # type: ignore[attr-defined] # past the bound: alerted
    rig.sim.faults.clear(hidden)
    [final] = await rig.service.resolve_open()  # the trades show: now it is settled
    assert final.outcome is Outcome.EXECUTED
    assert final.exec_shares == D(10)
    assert [f.trade_id for f in rig.ledger.fills()] == [f["trade_id"] for f in order["fills"]]  # type: ignore[union-attr]
    assert rig.ledger.positions(LEADER)[0].shares == D(10)
    assert rig.ledger.open_intents() == []
    assert rig.copier.book.reserved(LEADER) == 0
    assert len(rig.posts()) == 1


@pytest.mark.parametrize("journaled", [True, False], ids=["fees-journaled", "legacy-row"])
async def test_fills_recovered_after_a_restart_carry_the_markets_fee(
    sim: SimServer, tmp_path: Path, journaled: bool
) -> None:
    created = sim.add_market(price=D("0.64"))
    created.fee_rate, created.fee_exponent = D("0.07"), D(1)
    token = created.tokens[0].token_id
    sim.set_book(token, [(D("0.60"), D("10"))], [(D("0.64"), D("25"))])
    hidden = sim.faults.arm(hide_trades())
    first = await build_rig("live", sim, tmp_path)
    decision = await first.copy(token, "BUY", "0.64", "25")  # $16 → 25 shares, trades late
    assert decision.reasons == (Reason.EXEC_UNKNOWN,)
    key = first.key
    await first.close()
    if not journaled:  # an intent signed before fee schedules were journaled with it
        db = sqlite3.connect(tmp_path / "polycopy-live.sqlite3")
        db.execute("UPDATE ledger_intents SET fee_schedule = NULL")
        db.commit()
        db.close()
    second = await build_rig("live", sim, tmp_path, key=key)  # a new process: empty caches
    try:
        assert len(second.ledger.open_intents()) == 1  # reconciled, still waiting for trades
        sim.faults.clear(hidden)
        [final] = await second.service.resolve_open()
        assert final.exec_shares == D(25)
        assert second.ledger.pnl(LEADER).fees == D("0.4032")  # reference §3.5 example
    finally:
        await second.close()


SUCCESS_FALSE = {"success": False, "orderID": "0x" + "ab" * 32, "errorMsg": ""}
UNMATCHED = {"success": True, "orderID": "0x" + "ab" * 32, "errorMsg": "", "status": "unmatched"}
NO_STATUS = {"success": True, "orderID": "0x" + "ab" * 32, "errorMsg": "", "status": ""}


@pytest.mark.parametrize(
    "answer", [SUCCESS_FALSE, UNMATCHED, NO_STATUS], ids=["success-false", "unmatched", "empty"]
)
async def test_an_answer_that_is_not_a_known_error_is_looked_up_not_rejected(
    rig: Rig, answer: dict[str, object]
) -> None:
    """The SDK turns these 200s into RejectedOrder("Unknown order failure"); the venue may
    well have taken the order, so it is ambiguous (R4), never EXEC_REJECTED."""
    token = market(rig.sim)
    body = json.dumps({"makingAmount": "", "takingAmount": "", "status": "", **answer})
    rig.sim.faults.arm(ErrorStatus(path="/order", method="POST", status=200, body=body))
    decision = await rig.copy(token, "BUY", "0.50", "10")
    assert decision.outcome is Outcome.FAILED
    assert decision.reasons == (Reason.EXEC_UNKNOWN,)
    [intent] = rig.ledger.open_intents()
    assert intent.status is OrderStatus.UNKNOWN
    assert rig.ledger.reserved(LEADER) == D(5)
    assert rig.sim.requests(path=f"/data/order/{intent.order_hash}")  # looked up by its hash
    assert len(rig.posts()) == 1  # and never sent again


async def test_a_trade_listing_longer_than_its_bound_is_incomplete_not_no_fill(
    sim: SimServer, tmp_path: Path
) -> None:
    async with VenueFront(sim.url) as front:
        front.page_size = 1  # one trade a page: the 21st order's trade is on page 21
        rig = await build_rig("live", sim, tmp_path, clob_url=front.url)
        try:
            assert rig.executor._settings.trade_pages_max == 20  # type: ignore[attr-defined]
            token = market(sim)
            for _ in range(20):  # this account's earlier trades of the token, in the window
                done = await rig.copy(token, "BUY", "0.50", "2")
                assert done.outcome is Outcome.EXECUTED
            decision = await rig.copy(token, "BUY", "0.50", "2")
            assert decision.reasons == (Reason.EXEC_UNKNOWN,)  # not a killed order
            [intent] = rig.ledger.open_intents()
            assert intent.status is OrderStatus.UNKNOWN
            assert rig.ledger.reserved(LEADER) == D(1)
            assert len(rig.ledger.fills()) == 20
            front.page_size = 100
            [final] = await rig.service.resolve_open()
            assert final.outcome is Outcome.EXECUTED
            assert len(rig.ledger.fills()) == 21
            assert len(rig.posts()) == 21
        finally:
            await rig.close()


async def test_a_venue_order_id_that_differs_from_our_hash_is_journaled_and_followed(
    sim: SimServer, tmp_path: Path
) -> None:
    async with VenueFront(sim.url) as front:
        front.rename_orders = True
        front.hide_trades = True  # settle it after a restart, from the journaled id
        first = await build_rig("live", sim, tmp_path, clob_url=front.url)
        token = market(sim)
        decision = await first.copy(token, "BUY", "0.50", "10")
        assert decision.reasons == (Reason.EXEC_UNKNOWN,)
        assert first.executor.alerts >= 1  # type: ignore[attr-defined] # the mismatch alerts
        [intent] = first.ledger.open_intents()
        assert intent.order_hash is not None
        assert intent.venue_order_id == front.renamed[intent.order_hash]
        key = first.key
        await first.close()
        front.hide_trades = False  # the venue's trades name the order by its own id
        second = await build_rig("live", sim, tmp_path, key=key, clob_url=front.url)
        try:
            assert second.ledger.open_intents() == []  # resolved at start-up, by that id
            [fill] = second.ledger.fills()
            assert fill.shares == D(10)
            stored = second.ledger.intent(intent.intent_id)
            assert stored is not None
            assert stored.status is OrderStatus.FILLED
            assert stored.order_hash == intent.order_hash  # still the ledger's key
        finally:
            await second.close()
