"""Exact FAK/FOK amounts (reference §3.4, §4.10): given side ≤ 2 dp, received side ≤ 4 dp,
never above a BUY's bound (below a SELL's) on any tick grid, shares never rounded up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polycopy.domain.events import Side
from polycopy.domain.money import buy_limit_price, sell_limit_price
from polycopy.execution.amounts import (
    FINEST_TICK,
    SCALE,
    align_limit,
    buy_amounts,
    check_signed,
    decimals,
    on_grid,
    sell_amounts,
)
from polycopy.execution.errors import AmountError, InvariantError

TICKS = [Decimal(t) for t in ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")]


@st.composite
def priced(draw: st.DrawFn) -> tuple[Decimal, Decimal]:
    tick = draw(st.sampled_from(TICKS))
    reference = Decimal(draw(st.integers(1, 999))) / 1000
    return tick, reference


notionals = st.integers(100, 2_500_000).map(lambda c: Decimal(c) / 100)  # $1 … $25,000


@given(priced(), notionals, st.integers(0, 5).map(lambda c: Decimal(c) / 100))
def test_buy_amounts_respect_the_bound_and_precision(
    tick_ref: tuple[Decimal, Decimal], notional: Decimal, slippage: Decimal
) -> None:
    tick, reference = tick_ref
    limit = buy_limit_price(reference, slippage, tick)
    amounts = buy_amounts(notional, limit)
    assert amounts.side is Side.BUY
    assert decimals(amounts.maker) <= 2
    assert decimals(amounts.taker) <= 4
    assert amounts.maker <= notional  # never spend more than planned
    assert amounts.taker <= amounts.maker / limit  # never ask for shares the money cannot buy
    # the implied price sits at the bound or a hair above, never at the next finest tick
    assert limit <= amounts.implied_price < limit + FINEST_TICK / 2
    assert amounts.implied_price.quantize(FINEST_TICK) == limit
    for grid_tick in TICKS:  # no grid price above the bound is reachable
        next_price = limit + grid_tick
        assert amounts.implied_price < next_price


@given(priced(), st.integers(100, 5_000_000).map(lambda c: Decimal(c) / 100))
def test_sell_amounts_respect_the_bound_and_precision(
    tick_ref: tuple[Decimal, Decimal], shares: Decimal
) -> None:
    tick, reference = tick_ref
    limit = sell_limit_price(reference, Decimal("0.02"), tick)
    if shares * limit < Decimal("0.01"):
        return
    amounts = sell_amounts(shares, limit)
    assert decimals(amounts.maker) <= 2
    assert decimals(amounts.taker) <= 4
    assert amounts.maker <= shares  # never sell more than planned
    assert abs(amounts.implied_price - limit) < FINEST_TICK / 2
    assert amounts.implied_price.quantize(FINEST_TICK) == limit


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.999"), places=6), notionals)
def test_buy_never_rounds_shares_up(limit: Decimal, notional: Decimal) -> None:
    limit = align_limit(Side.BUY, limit, Decimal("0.001"))
    amounts = buy_amounts(notional, limit)
    assert amounts.shares * limit <= amounts.maker
    assert amounts.maker_amount % 10_000 == 0  # 2 decimals in 6-decimal units
    assert amounts.taker_amount % 100 == 0  # 4 decimals


def test_reference_example_buy_25_at_056() -> None:
    amounts = buy_amounts(Decimal("25"), Decimal("0.56"))
    assert (amounts.maker_amount, amounts.taker_amount) == (25_000_000, 44_642_800)


def test_amounts_that_round_to_nothing_are_refused() -> None:
    with pytest.raises(AmountError):
        buy_amounts(Decimal("0.004"), Decimal("0.5"))
    with pytest.raises(AmountError):
        sell_amounts(Decimal("0.004"), Decimal("0.5"))
    with pytest.raises(AmountError):
        buy_amounts(Decimal("1"), Decimal("1.2"))


@pytest.mark.parametrize("tick", TICKS)
def test_align_limit_lowers_risk_on_any_tick(tick: Decimal) -> None:
    buy = align_limit(Side.BUY, Decimal("0.5237"), tick)
    sell = align_limit(Side.SELL, Decimal("0.5237"), tick)
    assert on_grid(buy, tick)
    assert on_grid(sell, tick)
    assert buy <= Decimal("0.5237") <= sell
    assert align_limit(Side.BUY, Decimal("0.9999"), tick) <= 1 - tick


def test_off_grid_bound_is_corrected_never_posted_as_is() -> None:
    # R19: an off-grid 0.007 on a 0.005 tick
    assert align_limit(Side.BUY, Decimal("0.007"), Decimal("0.005")) == Decimal("0.005")
    assert align_limit(Side.SELL, Decimal("0.007"), Decimal("0.005")) == Decimal("0.010")


def test_check_signed_refuses_any_difference() -> None:
    amounts = buy_amounts(Decimal("10"), Decimal("0.5"))
    check_signed(amounts, "BUY", amounts.maker_amount, amounts.taker_amount)
    with pytest.raises(InvariantError):
        check_signed(amounts, "BUY", amounts.maker_amount, amounts.taker_amount + 1)
    with pytest.raises(InvariantError):
        check_signed(amounts, "SELL", amounts.maker_amount, amounts.taker_amount)


def test_units_are_six_decimal_integers() -> None:
    amounts = sell_amounts(Decimal("12.3456"), Decimal("0.47"))
    assert amounts.maker_amount == 12_340_000
    assert amounts.taker == Decimal(amounts.taker_amount) / SCALE == Decimal("5.7998")
