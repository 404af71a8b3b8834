"""The order state machine (R8): a transition table, and a tracker of filled quantity.

PURE: no I/O. An illegal transition raises `IllegalTransition`; the caller logs it and does
not apply it. Terminal states never revert, except CANCELED → FILLED (a late fill of a
killed or cancelled order, nautilus#3797).

    NEW ──► SIGNED ──► LIVE ──► PARTIALLY_FILLED ──► FILLED
     │        │  │       │            │
     │        │  └► UNKNOWN ◄────────┘ (an ambiguous answer; resolved by look-up)
     │        ▼
     └──► ABANDONED (never sent)     REJECTED, CANCELED, EXPIRED (terminal)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

DUST_SHARES = Decimal("0.01")  # an overfill beyond this is an alert, not a fill (R7)


class OrderStatus(StrEnum):
    NEW = "NEW"  # intent committed; nothing signed, nothing sent
    SIGNED = "SIGNED"  # signed order and its hash committed; the POST may be in flight
    UNKNOWN = "UNKNOWN"  # an ambiguous answer: ask the venue by hash
    LIVE = "LIVE"  # accepted, not (fully) matched yet (e.g. `delayed`)
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"  # killed (FAK remainder, FOK unfilled) or cancelled; may hold fills
    REJECTED = "REJECTED"  # the venue refused it
    EXPIRED = "EXPIRED"  # the venue never heard of it, long enough to be sure
    ABANDONED = "ABANDONED"  # never sent (crash before signing, or refused before signing)

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.ABANDONED,
    }
)

_OPEN_TARGETS = frozenset(
    {
        OrderStatus.UNKNOWN,
        OrderStatus.LIVE,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.SIGNED, OrderStatus.ABANDONED, OrderStatus.REJECTED}),
    OrderStatus.SIGNED: _OPEN_TARGETS,
    OrderStatus.UNKNOWN: _OPEN_TARGETS,
    OrderStatus.LIVE: _OPEN_TARGETS - {OrderStatus.EXPIRED},
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.UNKNOWN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
        }
    ),
    OrderStatus.CANCELED: frozenset({OrderStatus.FILLED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.ABANDONED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"illegal order transition {current} -> {target}")
        self.current = current
        self.target = target


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    if current == target and not current.final:
        return True  # re-affirming an open state (a repeated status report) is harmless
    return target in TRANSITIONS[current]


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target


class FillVerdict(StrEnum):
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"  # the same trade id with the same data: ignored
    CONFLICT = "CONFLICT"  # the same trade id with different data: WARN, not applied
    OVERFILL = "OVERFILL"  # would exceed the order quantity beyond dust: alert, not applied


@dataclass(frozen=True, slots=True)
class TrackedFill:
    trade_id: str
    shares: Decimal
    price: Decimal


@dataclass(slots=True)
class OrderTracker:
    """One order's state and fills. `quantity` is the most shares it can fill (for a BUY
    sized in USDC: the notional over the lowest possible price, i.e. an upper bound)."""

    quantity: Decimal
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = Decimal(0)
    alerts: int = 0
    fills: dict[str, TrackedFill] = field(default_factory=dict, repr=False)

    def move(self, target: OrderStatus) -> OrderStatus:
        self.status = transition(self.status, target)
        return self.status

    def fill(self, trade_id: str, shares: Decimal, price: Decimal) -> FillVerdict:
        """Apply a fill report. Fills may arrive in any state but NEW/ABANDONED/REJECTED/
        EXPIRED; a fill on a CANCELED order stays CANCELED unless it completes the order."""
        seen = self.fills.get(trade_id)
        if seen is not None:
            if seen.shares == shares and seen.price == price:
                return FillVerdict.DUPLICATE
            self.alerts += 1
            return FillVerdict.CONFLICT
        if self.filled + shares > self.quantity + DUST_SHARES:
            self.alerts += 1
            return FillVerdict.OVERFILL
        if self.status in (OrderStatus.NEW, OrderStatus.ABANDONED) or self.status in (
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        ):
            raise IllegalTransition(self.status, OrderStatus.PARTIALLY_FILLED)
        self.fills[trade_id] = TrackedFill(trade_id, shares, price)
        self.filled += shares
        complete = self.filled >= self.quantity - DUST_SHARES
        if self.status is OrderStatus.FILLED:
            pass
        elif self.status is OrderStatus.CANCELED:
            if complete:
                self.move(OrderStatus.FILLED)
        else:
            self.move(OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED)
        return FillVerdict.APPLIED
