"""One contract, two executors: paper and live (real SDK) against the simulator must agree on
what fills, at what price, and why not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sim_rig import LEADER, Rig, build_rig

from polycopy.domain.events import Side
from polycopy.domain.reasons import Outcome, Reason
from polycopy.execution.states import OrderStatus
from polycopy.sim import SimServer

D = Decimal
ASKS = [(D("0.50"), D("10")), (D("0.51"), D("10")), (D("0.52"), D("100")), (D("0.60"), D("100"))]
BIDS = [(D("0.49"), D("30")), (D("0.48"), D("30")), (D("0.40"), D("100"))]


@pytest.fixture(params=["paper", "live"])
async def rig(request: pytest.FixtureRequest, sim: SimServer, tmp_path: Path) -> AsyncIterator[Rig]:
    built = await build_rig(request.param, sim, tmp_path)
    try:
        yield built
    finally:
        await built.close()


def market(sim: SimServer, asks: list[tuple[Decimal, Decimal]] = ASKS, bids=BIDS) -> str:  # type: ignore[no-untyped-def]
    token = sim.add_market(price=D("0.50")).tokens[0].token_id
    sim.set_book(token, bids, asks)
    return token


async def test_buy_larger_than_top_of_book_fills_several_levels_at_the_vwap(rig: Rig) -> None:
    token = market(rig.sim)
    decision = await rig.copy(token, "BUY", "0.50", "40")  # $20, bound 0.52
    assert decision.outcome is Outcome.EXECUTED
    assert decision.exec_price is not None
    assert decision.exec_price <= D("0.52")
    spent = D("0.50") * 10 + D("0.51") * 10
    third = ((D(20) - spent) / D("0.52")).quantize(D("0.000001"), "ROUND_FLOOR")
    assert decision.exec_shares == 20 + third
    assert abs(decision.exec_notional - D(20)) < D("0.0001")
    assert decision.exec_price == decision.exec_notional / decision.exec_shares
    [position] = rig.ledger.positions(LEADER)
    assert position.shares == decision.exec_shares
    assert rig.copier.book.shares(LEADER, token) == position.shares
    fills = rig.ledger.fills()
    assert sum(f.shares for f in fills) == decision.exec_shares


async def test_fak_partial_fill_is_recorded_exactly(rig: Rig) -> None:
    token = market(rig.sim, asks=[(D("0.50"), D("10")), (D("0.55"), D("100"))])
    decision = await rig.copy(token, "BUY", "0.50", "40")
    assert decision.outcome is Outcome.CAPPED
    assert Reason.EXEC_PARTIAL_FILL in decision.reasons
    assert decision.exec_shares == D(10)
    assert decision.exec_price == D("0.50")
    [intent] = rig.ledger.intents()
    assert intent.status is OrderStatus.CANCELED  # the remainder was killed, not chased
    assert rig.copier.book.reserved(LEADER) == 0


async def test_sell_walks_the_bids(rig: Rig) -> None:
    token = market(rig.sim)
    await rig.copy(token, "BUY", "0.50", "10")  # $5: the 10 shares at 0.50
    if rig.mode == "live":
        assert rig.sim.state.account(rig.executor.signer).tokens[token] == D(10)  # type: ignore[attr-defined]
    decision = await rig.copy(token, "SELL", "0.49", "10")  # full exit, floor 0.47
    assert decision.outcome is Outcome.EXECUTED
    assert decision.exec_shares == D(10)
    assert decision.exec_price == D("0.49")
    assert rig.ledger.positions(LEADER) == []
    assert rig.ledger.pnl(LEADER).realized == D("-0.1")


async def test_nothing_within_the_bound_sends_nothing(rig: Rig) -> None:
    token = market(rig.sim, asks=[(D("0.60"), D("100"))])
    decision = await rig.copy(token, "BUY", "0.50", "40")
    assert decision.outcome is Outcome.SKIPPED
    assert decision.reasons == (Reason.EXEC_SLIPPAGE_LIMIT,)
    assert rig.posts() == []  # R29: 0 POSTs
    empty = market(rig.sim, asks=[])
    decision = await rig.copy(empty, "BUY", "0.50", "40")
    assert decision.reasons == (Reason.EXEC_NO_LIQUIDITY,)
    assert rig.copier.book.reserved(LEADER) == 0


async def test_below_the_venue_minimum_sends_nothing(rig: Rig) -> None:
    token = market(rig.sim)
    await rig.copy(token, "BUY", "0.50", "4")  # $2: 4 shares
    decision = await rig.copy(token, "SELL", "0.25", "4")  # full exit worth < $1 at its bound
    assert decision.outcome is Outcome.SKIPPED
    assert decision.reasons == (Reason.MARKET_MIN_ORDER_SIZE,)
    assert len(rig.posts()) == (1 if rig.mode == "live" else 0)
    assert rig.ledger.positions(LEADER)[0].shares == D(4)  # the dust stays attributed


@pytest.mark.parametrize("variant", ["paper", "live", "live-venue"])
async def test_fok_is_all_or_nothing_and_says_why(
    sim: SimServer, tmp_path: Path, variant: str
) -> None:
    """Paper and live give a killed FOK the same reason for the same book: liquidity within
    the bound but not enough, the rest beyond it → EXEC_SLIPPAGE_LIMIT; not enough at any
    price → EXEC_NO_LIQUIDITY. "live-venue" skips the book check, so the venue kills the
    order and live reads the book to say why, as paper does."""
    mode, precheck = ("live", False) if variant == "live-venue" else (variant, True)
    rig = await build_rig(mode, sim, tmp_path, order_type="FOK", book_precheck=precheck)
    try:
        token = market(sim, asks=[(D("0.50"), D("10")), (D("0.55"), D("100"))])
        killed = await rig.copy(token, "BUY", "0.50", "40")  # $20: only $5 within the bound
        assert killed.outcome is Outcome.SKIPPED
        assert killed.reasons == (Reason.EXEC_SLIPPAGE_LIMIT,)
        assert killed.exec_shares == 0
        thin = market(sim, asks=[(D("0.50"), D("10"))])  # $5 of asks in all
        starved = await rig.copy(thin, "BUY", "0.50", "40")
        assert starved.outcome is Outcome.SKIPPED
        assert starved.reasons == (Reason.EXEC_NO_LIQUIDITY,)
        posts = 2 if variant == "live-venue" else 0
        assert len(rig.posts()) == posts  # the venue killed both, or nothing was sent
        filled = await rig.copy(token, "BUY", "0.50", "8")  # $4: all within the bound
        assert filled.outcome is Outcome.EXECUTED
        assert filled.exec_shares == D(8)
        assert rig.ledger.positions(LEADER)[0].shares == D(8)
        assert rig.copier.book.reserved(LEADER) == 0
    finally:
        await rig.close()


@pytest.fixture(params=["paper", "live"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_fees_follow_the_market_schedule(sim: SimServer, tmp_path: Path, mode: str) -> None:
    rig = await build_rig(mode, sim, tmp_path)
    try:
        created = sim.add_market(price=D("0.64"))
        created.fee_rate, created.fee_exponent = D("0.07"), D(1)
        token = created.tokens[0].token_id
        sim.set_book(token, [(D("0.60"), D("10"))], [(D("0.64"), D("25"))])
        decision = await rig.copy(token, "BUY", "0.64", "25")  # $16 → 25 shares
        assert decision.exec_shares == D(25)
        assert rig.ledger.pnl(LEADER).fees == D("0.4032")  # reference §3.5 example
    finally:
        await rig.close()


async def test_side_is_never_confused(rig: Rig) -> None:
    token = market(rig.sim)
    decision = await rig.copy(token, "SELL", "0.50", "10")
    assert decision.reasons == (Reason.NO_POSITION_TO_SELL,)
    assert decision.side is Side.SELL
