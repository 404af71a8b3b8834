"""The order state machine (R8): the transition table the ledger applies (`Ledger.settle`,
`Ledger.record_submission`) — the one state machine production uses.

PURE: no I/O. An illegal transition raises `IllegalTransition`; the ledger logs it and does
not apply it. Terminal states never revert, except CANCELED → FILLED (a late fill of a
killed or cancelled order, nautilus#3797). NEW and SIGNED are entered once: an intent is
signed exactly once (R3), so SIGNED → SIGNED is illegal.

    NEW ──► SIGNED ──► LIVE ──► PARTIALLY_FILLED ──► FILLED
     │        │  │       │            │
     │        │  └► UNKNOWN ◄────────┘ (an ambiguous answer; resolved by look-up)
     │        ▼
     └──► ABANDONED (never sent)     REJECTED, CANCELED, EXPIRED (terminal)
"""

from __future__ import annotations

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


# Open states a repeated status report may re-affirm. Not NEW or SIGNED: signing happens once.
REAFFIRMABLE = frozenset({OrderStatus.UNKNOWN, OrderStatus.LIVE, OrderStatus.PARTIALLY_FILLED})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    if current == target and current in REAFFIRMABLE:
        return True  # re-affirming an open state (a repeated status report) is harmless
    return target in TRANSITIONS[current]


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target
