"""Resolved, per-leader settings that the policy reads (built by `polycopy.config`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from polycopy.domain.reasons import Enforcement, Mode


@dataclass(frozen=True, slots=True)
class Rails:
    min_leader_trade_notional_usdc: Decimal
    min_exec_notional_usdc: Decimal
    max_exec_notional_usdc: Decimal
    max_trade_pct_bankroll: Decimal
    max_price_per_share: Decimal


@dataclass(frozen=True, slots=True)
class NettingRules:
    enabled: bool
    small_trade_min_exec_notional_usdc: Decimal
    netting_window_s: Decimal


@dataclass(frozen=True, slots=True)
class EffectiveLeaderConfig:
    """Everything the policy needs about one leader, with inheritance already applied."""

    address: str
    name: str
    mode: Mode  # after the master switch
    mode_fell_back: bool  # BUDGETED_DYNAMIC requested but the master switch is off
    fixed_copy_rate: Decimal
    budget_usdc: Decimal | None
    r_min: Decimal
    r_max: Decimal
    enforcement: Enforcement
    rails: Rails
    netting: NettingRules
    bankroll_usdc: Decimal
    max_slippage: Decimal
    enabled: bool = True
    config_version: str = ""  # hash of the whole configuration this was resolved from

    @property
    def hard_budget(self) -> bool:
        return (
            self.mode is Mode.BUDGETED_DYNAMIC
            and self.enforcement is Enforcement.HARD
            and self.budget_usdc is not None
        )


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Per-market exchange rules that shape an order."""

    tick_size: Decimal = Decimal("0.01")
    size_step: Decimal = Decimal("0.01")  # share precision of a marketable order
    min_order_notional: Decimal = Decimal("1")  # venue minimum for marketable (FAK/FOK) orders


DEFAULT_MARKET = MarketRules()
