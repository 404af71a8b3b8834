"""The kill switch (SPEC §7, R25): ACTIVE → REDUCING → HALTED, with the reason it tripped.

REDUCING still mirrors exits (SELLs) but buys nothing; HALTED sends nothing. Only an explicit,
authenticated resume returns to ACTIVE. Pure: the daemon persists the state and feeds it
losses, invariant failures and operator commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from polycopy.domain.events import Side
from polycopy.domain.reasons import Reason


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass(frozen=True, slots=True)
class KillSwitch:
    state: TradingState = TradingState.ACTIVE
    reason: str = ""
    since: datetime | None = None

    def gate(self, side: Side) -> Reason | None:
        """KILL_SWITCH when this side may not trade in the current state."""
        if self.state is TradingState.HALTED:
            return Reason.KILL_SWITCH
        if self.state is TradingState.REDUCING and side is Side.BUY:
            return Reason.KILL_SWITCH
        return None

    def trip(self, state: TradingState, reason: str, now: datetime) -> KillSwitch:
        """Move to a stricter state (never a looser one: that takes `resume`)."""
        if _SEVERITY[state] <= _SEVERITY[self.state]:
            return self
        return KillSwitch(state, reason, now)

    def resume(self, now: datetime) -> KillSwitch:
        return KillSwitch(TradingState.ACTIVE, "", now)


def daily_loss_breached(pnl_today: Decimal | None, limit: Decimal | None) -> bool:
    """True when today's PnL is below −limit, or unknown while a limit is set (fail closed)."""
    if limit is None:
        return False
    if pnl_today is None:
        return True
    return pnl_today < -limit
