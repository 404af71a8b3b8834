"""The executor interface: paper and live implement it; one is chosen at start (SPEC §1).

The caller (`ExecutionService`) commits an `OrderIntent` before calling `execute`; a live
executor commits the signed order and its hash through the `SubmissionJournal` *before* it
posts, so a crash at any point leaves enough on disk to ask the venue what happened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from polycopy.domain.events import Side
from polycopy.domain.money import ZERO
from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import Execution, FillStatus, OrderPlan
from polycopy.execution.book_walk import FeeSchedule
from polycopy.execution.states import OrderStatus


def intent_id_for(decision_id: str) -> str:
    """Deterministic intent id: one intent per decision, whatever the path (R1, R2)."""
    return hashlib.sha256(f"intent|{decision_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One order the ledger has promised to send at most once."""

    intent_id: str
    decision_id: str
    leader: str
    asset: str
    condition_id: str
    side: Side
    order_type: str  # FAK | FOK
    notional: Decimal  # BUY: most pUSD to spend; SELL: shares × reference price
    shares: Decimal  # BUY: fewest shares at the bound; SELL: shares to sell
    limit_price: Decimal
    status: OrderStatus
    created_at: float  # unix seconds
    order_hash: str | None = None
    signed_at_ms: int | None = None  # the signed order's own timestamp
    lookups: int = 0  # venue look-ups that found nothing
    signed_order: str | None = None  # the signed order's canonical JSON (public data)
    fees: FeeSchedule | None = None  # the market's fee schedule when it was signed
    venue_order_id: str | None = None  # only when the venue's id differs from order_hash

    def with_status(self, status: OrderStatus) -> OrderIntent:
        return replace(self, status=status)


@dataclass(frozen=True, slots=True)
class SignedSubmission:
    """A signed order, exactly as it will be posted (the signature is public data)."""

    order_hash: str
    payload: str  # canonical JSON of the signed order
    signed_at_ms: int
    # the market's fee schedule at signing: fills found after a restart are charged by it
    fees: FeeSchedule | None = None


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One fill of our order, identified by the venue's trade id (R7)."""

    trade_id: str
    order_hash: str
    price: Decimal
    shares: Decimal
    fee: Decimal = ZERO
    ts: float = 0.0  # match time, unix seconds

    @property
    def notional(self) -> Decimal:
        return self.price * self.shares


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What an executor learnt about one intent: its state, fills and the summary for sizing."""

    status: OrderStatus
    execution: Execution
    fills: tuple[VenueFill, ...] = ()
    order_hash: str | None = None
    detail: str = ""  # the venue's message, or why nothing was sent

    @property
    def final(self) -> bool:
        return self.status.final


def summarize(
    fills: tuple[VenueFill, ...], complete: bool, none_reason: Reason = Reason.EXEC_NO_LIQUIDITY
) -> Execution:
    """The sizing summary of a set of fills: FILLED, PARTIAL or NONE."""
    shares = sum((f.shares for f in fills), ZERO)
    if shares <= 0:
        return Execution(FillStatus.NONE, reason=none_reason)
    notional = sum((f.notional for f in fills), ZERO)
    fee = sum((f.fee for f in fills), ZERO)
    return Execution(
        FillStatus.FILLED if complete else FillStatus.PARTIAL,
        shares=shares,
        notional=notional,
        price=notional / shares,
        reason=None if complete else Reason.EXEC_PARTIAL_FILL,
        fee=fee,
    )


def unknown(
    order_hash: str | None, detail: str, status: OrderStatus = OrderStatus.UNKNOWN
) -> ExecutionReport:
    """The outcome is not known yet: keep the intent open and the BUY reservation."""
    return ExecutionReport(
        status,
        Execution(FillStatus.FAILED, reason=Reason.EXEC_UNKNOWN),
        order_hash=order_hash,
        detail=detail,
    )


def rejected(
    order_hash: str | None, detail: str, status: OrderStatus = OrderStatus.REJECTED
) -> ExecutionReport:
    return ExecutionReport(
        status,
        Execution(FillStatus.FAILED, reason=Reason.EXEC_REJECTED),
        order_hash=order_hash,
        detail=detail,
    )


def not_sent(reason: Reason, detail: str) -> ExecutionReport:
    """Nothing was sent because the order could not fill or is below the venue's minimum."""
    return ExecutionReport(
        OrderStatus.ABANDONED, Execution(FillStatus.NONE, reason=reason), detail=detail
    )


class SubmissionJournal(Protocol):
    def record_submission(self, intent: OrderIntent, submission: SignedSubmission) -> OrderIntent:
        """Durably store the signed order and its hash; returns the intent in state SIGNED.
        An intent is signed once: a second submission raises `InvariantError`."""
        ...

    def record_venue_order_id(self, intent: OrderIntent, venue_order_id: str) -> OrderIntent:
        """Durably note the id the venue gave an order whose id differs from our hash: its
        look-ups (after a restart too) go by the venue's id."""
        ...


class Executor(Protocol):
    @property
    def mode(self) -> str: ...

    # True when `execute` reaches a venue: its intent is committed before anything is sent
    # (R1). False for paper, whose intent is written with its fills in one transaction.
    sends_orders: bool

    # things an operator must look at (an order id that is not our hash, fills that stay
    # missing), also logged as errors; counted for /metrics and /status
    alerts: int

    async def execute(
        self, plan: OrderPlan, intent: OrderIntent, journal: SubmissionJournal
    ) -> ExecutionReport:
        """Carry out one plan. Never raises for venue outcomes (they are reports);
        raises `InvariantError` when polycopy's own bookkeeping would break."""
        ...

    async def resolve(self, intent: OrderIntent) -> ExecutionReport | None:
        """Ask the venue about a non-final intent. None: still unknown, ask again later.
        Raises `VenueError` when the venue cannot be asked."""
        ...

    async def close(self) -> None: ...
