"""Live execution against the simulator's faults, with the real SDK: ambiguous answers are
resolved by look-up and never re-signed (R3, R4), 429s resend the same bytes, venue rejections
(min size, tick) become EXEC_REJECTED, ticks change mid-run, partial fills are exact (R28)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from sim_rig import LEADER, Rig, build_rig, eventually

from polycopy.domain.events import Decision
from polycopy.domain.reasons import Outcome, Reason
from polycopy.execution.errors import ReconcileError
from polycopy.execution.service import DuplicateIntentError
from polycopy.execution.states import OrderStatus
from polycopy.sim import AcceptThenHang, ErrorStatus, PartialFill, RateLimit, RejectOrder, SimServer

D = Decimal
ASKS = [(D("0.50"), D("10")), (D("0.51"), D("10")), (D("0.52"), D("100"))]
BIDS = [(D("0.49"), D("100"))]


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path) -> AsyncIterator[Rig]:
    built = await build_rig("live", sim, tmp_path, order_timeout_s=1)
    try:
        yield built
    finally:
        await built.close()


CENT = D("0.01")


def market(sim: SimServer, tick: Decimal = CENT) -> str:
    token = sim.add_market(price=D("0.50"), tick_size=tick).tokens[0].token_id
    sim.set_book(token, BIDS, ASKS)
    return token


def only_order(rig: Rig) -> dict[str, object]:
    [order] = rig.sim_orders()
    return order


@pytest.mark.parametrize("close", [False, True])
async def test_accept_then_hang_sends_no_second_order(rig: Rig, close: bool) -> None:
    token = market(rig.sim)
    rig.sim.faults.arm(AcceptThenHang(close=close))
    decision = await rig.copy(token, "BUY", "0.50", "10")  # $5: accepted, answer never comes
    order = only_order(rig)
    assert order["received"] == 1
    assert order["accepted"] == 1
    assert len(rig.posts()) == 1
    assert decision.outcome is Outcome.EXECUTED  # resolved by looking the hash up
    assert decision.exec_shares == D(10)
    [intent] = rig.ledger.intents()
    assert intent.order_hash == order["order_hash"]
    assert intent.status is OrderStatus.FILLED
    [fill] = rig.ledger.fills()
    assert [fill.trade_id] == [f["trade_id"] for f in order["fills"]]  # type: ignore[index]


async def test_rate_limited_post_resends_the_same_signed_bytes(rig: Rig) -> None:
    token = market(rig.sim)
    rig.sim.faults.arm(RateLimit(path="/order", method="POST", retry_after_s=0.05))
    decision = await rig.copy(token, "BUY", "0.50", "10")
    assert decision.outcome is Outcome.EXECUTED
    posts = rig.posts()
    assert len(posts) == 2
    assert json.loads(posts[0]["body"])["order"] == json.loads(posts[1]["body"])["order"]
    order = only_order(rig)
    assert order["received"] == 1
    assert order["accepted"] == 1


async def test_server_error_is_unknown_until_a_look_up_says_otherwise(rig: Rig) -> None:
    token = market(rig.sim)
    rig.sim.faults.arm(ErrorStatus(path="/order", method="POST", status=502))
    decision = await rig.copy(token, "BUY", "0.50", "10")
    assert decision.outcome is Outcome.FAILED
    assert decision.reasons == (Reason.EXEC_UNKNOWN,)
    assert rig.copier.book.reserved(LEADER) == D(5)  # the HARD budget still counts it
    assert rig.ledger.reserved(LEADER) == D(5)
    [intent] = rig.ledger.open_intents()
    assert intent.status is OrderStatus.UNKNOWN
    assert rig.sim_orders() == []  # the 502 came before the book: never accepted
    # R4: the close window has passed (unknown_close_after_s: 0), but one empty look-up is
    # not enough to close it without the venue's word: it takes `unknown_close_lookups` (3)
    for lookups in (1, 2):
        assert await rig.service.resolve_open() == []
        [still_open] = rig.ledger.open_intents()
        assert (still_open.status, still_open.lookups) == (OrderStatus.UNKNOWN, lookups)
        assert rig.ledger.reserved(LEADER) == D(5)
    resolved = await rig.service.resolve_open()  # the third: the venue never heard of it
    [final] = resolved
    assert final.outcome is Outcome.FAILED
    assert final.reasons == (Reason.EXEC_REJECTED,)
    assert rig.ledger.open_intents() == []
    assert rig.copier.book.reserved(LEADER) == 0
    assert rig.ledger.decision(final.decision_id)["reasons"] == ["EXEC_REJECTED"]  # type: ignore[index]
    assert len(rig.posts()) == 1  # and it was never sent again


async def test_engine_restart_425_is_ambiguous_and_looked_up(rig: Rig) -> None:
    token = market(rig.sim)
    rig.sim.faults.arm(ErrorStatus(path="/order", method="POST", status=425))
    decision = await rig.copy(token, "BUY", "0.50", "10")
    assert decision.reasons == (Reason.EXEC_UNKNOWN,)
    assert len(rig.sim.requests(path="/data/order/" + str(rig.ledger.intents()[0].order_hash))) >= 1


async def test_venue_min_size_rejection_is_exec_rejected(rig: Rig) -> None:
    token = market(rig.sim)
    rig.sim.faults.arm(
        RejectOrder(error="order 0x1 is invalid. Size (4.9) lower than the minimum: 5")
    )
    decision = await rig.copy(token, "BUY", "0.50", "10")
    assert decision.outcome is Outcome.FAILED
    assert decision.reasons == (Reason.EXEC_REJECTED,)
    assert rig.ledger.intents()[0].status is OrderStatus.REJECTED
    assert rig.ledger.positions() == []
    assert rig.copier.book.reserved(LEADER) == 0
    assert len(rig.posts()) == 1


async def test_tick_rejection_refreshes_the_market_rules(rig: Rig) -> None:
    token = market(rig.sim)
    await rig.copy(token, "BUY", "0.50", "2")  # $1: learns tick 0.01
    rig.sim.change_tick(token, D("0.1"))  # nobody tells polycopy
    # the simulator reads a marketable order's price at the current tick and never refuses it
    # on the grid, so the venue's refusal of our (stale-grid) bound 0.52 is scripted
    rig.sim.faults.arm(
        RejectOrder(error="order 0x1 is invalid. Price (0.52) breaks minimum tick size rule: 0.1")
    )
    refused = await rig.copy(token, "BUY", "0.50", "10")
    assert refused.reasons == (Reason.EXEC_REJECTED,)
    assert rig.catalog.cached(token) is None  # dropped: the next order reads the rules again
    rig.sim.set_book(token, BIDS, [(D("0.5"), D("100"))])
    accepted = await rig.copy(token, "BUY", "0.50", "10")  # re-read: bound 0.5 on the new grid
    assert accepted.outcome is Outcome.EXECUTED
    assert accepted.exec_price == D("0.5")
    assert rig.sim_orders()[-1]["price"] == "0.5"


async def test_tick_size_change_mid_run_is_applied_from_the_market_channel(rig: Rig) -> None:
    token = market(rig.sim)
    first = await rig.copy(token, "BUY", "0.50", "2")
    assert first.outcome is Outcome.EXECUTED
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(rig.sim.clob_ws_url + "/market")
        await ws.send_json({"assets_ids": [token], "type": "market", "initial_dump": True})
        await ws.receive_json(timeout=5)  # the initial dump: we are subscribed
        rig.sim.set_book(token, BIDS, [(D("0.523"), D("100"))])
        rig.sim.change_tick(token, D("0.001"))
        applied = False
        while not applied:
            frame = await ws.receive_json(timeout=5)
            for event in frame if isinstance(frame, list) else [frame]:
                applied = rig.catalog.apply_event(event) or applied
        await ws.close()
    rig.sim.set_book(token, BIDS, [(D("0.523"), D("100"))])
    assert rig.catalog.rules(token).tick_size == D("0.001")
    decision = await rig.copy(token, "BUY", "0.505", "10")  # bound 0.525 exists only on 0.001
    assert decision.outcome is Outcome.EXECUTED
    assert decision.exec_price == D("0.523")
    assert rig.sim_orders()[-1]["price"] == "0.525"
    assert all(not o["error"] for o in rig.sim_orders())  # no rejection on the way


async def test_partial_fill_is_recorded_exactly_and_not_chased(rig: Rig) -> None:
    token = market(rig.sim)
    rig.sim.faults.arm(PartialFill(max_shares=D("3.2")))
    decision = await rig.copy(token, "BUY", "0.50", "20")  # $10, venue fills 3.2 shares
    assert Reason.EXEC_PARTIAL_FILL in decision.reasons
    assert decision.exec_shares == D("3.2")
    assert rig.ledger.positions(LEADER)[0].shares == D("3.2")
    assert len(rig.posts()) == 1
    exit_all = await rig.copy(token, "SELL", "0.49", "100")  # the leader exits: we sell 3.2
    assert exit_all.exec_shares == D("3.2")
    assert rig.ledger.positions() == []


async def test_the_same_decision_is_never_sent_twice(rig: Rig) -> None:
    token = market(rig.sim)
    await rig.copy(token, "BUY", "0.50", "10")
    [intent] = rig.ledger.intents()
    plan = rig.ledger.plan_of(intent)
    with pytest.raises(DuplicateIntentError):
        await rig.service.execute(plan)
    assert len(rig.posts()) == 1


async def test_restart_reconciles_before_any_new_order(sim: SimServer, tmp_path: Path) -> None:
    first = await build_rig("live", sim, tmp_path, order_timeout_s=1)
    token = market(sim)
    sim.faults.arm(ErrorStatus(path="/order", method="POST", status=500))
    unknown: Decision = await first.copy(token, "BUY", "0.50", "10")
    assert unknown.reasons == (Reason.EXEC_UNKNOWN,)
    key = first.key
    await first.close()
    # reconciles in build_rig; one empty look-up closes here (the R4 guard has its own test)
    second = await build_rig("live", sim, tmp_path, key=key, tuning={"unknown_close_lookups": 1})
    try:
        assert second.ledger.open_intents() == []
        assert second.copier.book.reserved(LEADER) == 0
        posts_before = len(sim.requests(path="/order", method="POST"))
        decision = await second.copy(token, "BUY", "0.50", "10")
        assert decision.outcome is Outcome.EXECUTED
        assert len(sim.requests(path="/order", method="POST")) == posts_before + 1
        await eventually(lambda: len(second.ledger.fills()) == 1)
    finally:
        await second.close()


async def test_failed_reconciliation_blocks_trading(sim: SimServer, tmp_path: Path) -> None:
    first = await build_rig("live", sim, tmp_path, order_timeout_s=1)
    token = market(sim)
    sim.faults.arm(ErrorStatus(path="/order", method="POST", status=500))
    await first.copy(token, "BUY", "0.50", "10")  # left UNKNOWN
    key = first.key
    await first.close()
    posts = len(sim.requests(path="/order", method="POST"))
    sim.faults.arm(ErrorStatus(path="/data/order/*", status=500, times=None))
    with pytest.raises(ReconcileError):
        await build_rig("live", sim, tmp_path, key=key, venue_get_retries=1)
    assert len(sim.requests(path="/order", method="POST")) == posts  # R5: zero POSTs
    sim.faults.clear()
    second = await build_rig("live", sim, tmp_path, key=key, tuning={"unknown_close_lookups": 1})
    try:
        assert second.service.reconciled
        assert second.ledger.open_intents() == []
    finally:
        await second.close()


async def test_fok_killed_by_the_venue_fills_nothing(sim: SimServer, tmp_path: Path) -> None:
    rig = await build_rig("live", sim, tmp_path, order_type="FOK", book_precheck=False)
    try:
        token = market(sim)  # $62.10 of asks within 0.52: a $100 FOK cannot fill
        decision = await rig.copy(token, "BUY", "0.50", "200")
        assert decision.outcome is Outcome.SKIPPED
        assert decision.reasons == (Reason.EXEC_NO_LIQUIDITY,)
        assert rig.ledger.intents()[0].status is OrderStatus.CANCELED
        assert only_order(rig)["status"] == "killed"
        assert rig.ledger.fills() == []
        assert rig.copier.book.reserved(LEADER) == 0
    finally:
        await rig.close()


async def test_an_order_the_venue_has_not_seen_yet_stays_open_with_its_decision(
    sim: SimServer, tmp_path: Path
) -> None:
    """After a crash between the signed-order commit and the POST: young, it stays UNKNOWN
    (decision EXEC_UNKNOWN, reservation kept); past `unknown_close_after_s` it expires."""
    first = await build_rig("live", sim, tmp_path)
    token = market(sim)
    await first.copy(token, "BUY", "0.50", "4")  # learns the market
    plan = first.ledger.plan_of(first.ledger.intents()[0])
    key = first.key
    await first.close()
    from dataclasses import replace

    from polycopy.execution.port import SignedSubmission
    from polycopy.store.ledger import Ledger

    crashed = replace(plan, context=replace(plan.context, decision_id="crashed-before-post"))
    ledger = Ledger.open(tmp_path, "live")
    intent = ledger.begin_intent(crashed, "FAK")
    signed_at = int(__import__("time").time() * 1000)
    ledger.record_submission(
        intent, SignedSubmission("0x" + "ee" * 32, '{"makerAmount": "2000000"}', signed_at)
    )
    ledger.close()

    young = await build_rig("live", sim, tmp_path, key=key, unknown_close_after_s=3600)
    try:
        [still_open] = young.ledger.open_intents()
        assert still_open.status is OrderStatus.UNKNOWN
        assert young.ledger.decision("crashed-before-post")["reasons"] == ["EXEC_UNKNOWN"]  # type: ignore[index]
        assert young.copier.book.reserved(LEADER) == plan.notional
        with pytest.raises(DuplicateIntentError):
            await young.service.execute(crashed)  # the same decision again: never sent
        # two empty look-ups so far (start-up reconciliation, then the resumed decision)
        assert young.ledger.open_intents()[0].lookups == 2
    finally:
        await young.close()
    # old enough now, and this start-up's look-up is the third to find nothing (R4): closed
    old = await build_rig("live", sim, tmp_path, key=key, unknown_close_after_s=0)
    try:
        assert old.ledger.open_intents() == []
        assert old.ledger.decision("crashed-before-post")["reasons"] == ["EXEC_REJECTED"]  # type: ignore[index]
        assert old.copier.book.reserved(LEADER) == 0
    finally:
        await old.close()
    assert all(o["order_hash"] != "0x" + "ee" * 32 for o in sim.orders())
