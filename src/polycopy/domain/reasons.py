"""Stable reason codes and outcomes. Renaming a member is a breaking change."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # BUY rails, in rail order
    LEADER_NOTIONAL_BELOW_MIN = "LEADER_NOTIONAL_BELOW_MIN"
    PRICE_ABOVE_MAX = "PRICE_ABOVE_MAX"
    EXPOSURE_UNAVAILABLE = "EXPOSURE_UNAVAILABLE"
    CAPPED_MAX_EXEC_NOTIONAL = "CAPPED_MAX_EXEC_NOTIONAL"
    CAPPED_MAX_TRADE_PCT_BANKROLL = "CAPPED_MAX_TRADE_PCT_BANKROLL"
    CAPPED_BUDGET_HEADROOM = "CAPPED_BUDGET_HEADROOM"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    EXEC_BELOW_MIN = "EXEC_BELOW_MIN"
    MARKET_MIN_ORDER_SIZE = "MARKET_MIN_ORDER_SIZE"
    # SELL
    NO_POSITION_TO_SELL = "NO_POSITION_TO_SELL"
    # ingest
    STALE_EVENT = "STALE_EVENT"
    QUEUE_OVERFLOW = "QUEUE_OVERFLOW"
    # netting
    NETTING_DEFERRED = "NETTING_DEFERRED"
    NETTING_FLUSH = "NETTING_FLUSH"
    NETTED_BELOW_MIN = "NETTED_BELOW_MIN"
    # informational
    RATE_CLAMPED_MIN = "RATE_CLAMPED_MIN"
    RATE_CLAMPED_MAX = "RATE_CLAMPED_MAX"
    MODE_FALLBACK_FIXED_RATE = "MODE_FALLBACK_FIXED_RATE"
    # execution
    EXEC_PARTIAL_FILL = "EXEC_PARTIAL_FILL"
    EXEC_NO_LIQUIDITY = "EXEC_NO_LIQUIDITY"
    EXEC_SLIPPAGE_LIMIT = "EXEC_SLIPPAGE_LIMIT"
    EXEC_REJECTED = "EXEC_REJECTED"
    EXEC_UNKNOWN = "EXEC_UNKNOWN"
    # operations
    KILL_SWITCH = "KILL_SWITCH"
    LEADER_NOT_FOLLOWED = "LEADER_NOT_FOLLOWED"  # received while followed, removed since


CAP_REASONS = frozenset(
    {
        Reason.CAPPED_MAX_EXEC_NOTIONAL,
        Reason.CAPPED_MAX_TRADE_PCT_BANKROLL,
        Reason.CAPPED_BUDGET_HEADROOM,
        Reason.EXEC_PARTIAL_FILL,
    }
)


class Outcome(StrEnum):
    EXECUTED = "EXECUTED"  # filled the full target
    CAPPED = "CAPPED"  # filled, reduced by a rail or a partial fill
    SKIPPED = "SKIPPED"
    DEFERRED = "DEFERRED"  # parked in a netting buffer
    FAILED = "FAILED"  # execution error


class Mode(StrEnum):
    FIXED_RATE = "FIXED_RATE"
    BUDGETED_DYNAMIC = "BUDGETED_DYNAMIC"


class Enforcement(StrEnum):
    HARD = "HARD"
    SOFT = "SOFT"
