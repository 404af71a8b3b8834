"""Kill switch states and the daily loss rule (R25)."""

from __future__ import annotations

from decimal import Decimal

from polycopy.domain.events import Side
from polycopy.domain.killswitch import KillSwitch, TradingState, daily_loss_breached
from polycopy.domain.reasons import Reason
from tests.builders import T0


def test_active_lets_everything_through() -> None:
    assert KillSwitch().gate(Side.BUY) is None
    assert KillSwitch().gate(Side.SELL) is None


def test_reducing_still_mirrors_exits() -> None:
    switch = KillSwitch().trip(TradingState.REDUCING, "stream reconciling", T0)
    assert switch.gate(Side.BUY) is Reason.KILL_SWITCH
    assert switch.gate(Side.SELL) is None


def test_halted_sends_nothing_and_only_resume_loosens() -> None:
    halted = KillSwitch().trip(TradingState.HALTED, "daily loss", T0)
    assert halted.gate(Side.SELL) is Reason.KILL_SWITCH
    assert halted.trip(TradingState.REDUCING, "later", T0) is halted  # never looser by a trip
    assert halted.trip(TradingState.ACTIVE, "later", T0) is halted
    assert halted.resume(T0).state is TradingState.ACTIVE


def test_daily_loss_fails_closed() -> None:
    limit = Decimal("20")
    assert not daily_loss_breached(Decimal("-19.99"), limit)
    assert daily_loss_breached(Decimal("-20.01"), limit)
    assert daily_loss_breached(None, limit)  # PnL unknown: halt
    assert not daily_loss_breached(None, None)
