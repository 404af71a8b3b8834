"""Plans and decisions for execution unit tests, built from the real domain types."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from polycopy.domain.events import Side
from polycopy.domain.money import (
    CENT,
    buy_limit_price,
    round_down,
    round_shares_down,
    sell_limit_price,
)
from polycopy.domain.reasons import Mode
from polycopy.domain.sizing import DecisionContext, OrderPlan

LEADER = "0x000000000000000000000000000000000000a001"
ASSET = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CONDITION = "0x" + "ab" * 32
T0 = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


def make_plan(
    side: Side = Side.BUY,
    *,
    notional: Decimal = Decimal("10"),
    shares: Decimal | None = None,
    reference: Decimal = Decimal("0.50"),
    slippage: Decimal = Decimal("0.02"),
    tick: Decimal = Decimal("0.01"),
    decision_id: str = "d1",
    leader: str = LEADER,
    asset: str = ASSET,
    ts: datetime = T0,
) -> OrderPlan:
    if side is Side.BUY:
        limit = buy_limit_price(reference, slippage, tick)
        spend = round_down(notional, CENT)
        qty = round_shares_down(spend / limit, CENT)
    else:
        limit = sell_limit_price(reference, slippage, tick)
        qty = shares if shares is not None else round_shares_down(notional / reference, CENT)
        spend = qty * reference
    context = DecisionContext(
        decision_id=decision_id,
        ts=ts,
        event_ts=ts,
        leader=leader,
        leader_name="leader",
        asset=asset,
        condition_id=CONDITION,
        side=side,
        leader_price=reference,
        leader_size=Decimal("100"),
        leader_notional=Decimal("100") * reference,
        mode=Mode.FIXED_RATE,
        enforcement=None,
        rate=Decimal("0.01"),
        leader_exposure=None,
        budget=None,
        target_notional=spend,
        netted_ids=(),
        exposure_age_s=None,
        config_version="test",
    )
    return OrderPlan(
        context=context,
        side=side,
        notional=spend,
        shares=qty,
        limit_price=limit,
        reference_price=reference,
        reasons=(),
    )
