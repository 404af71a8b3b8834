"""When a dequeued leader trade is too old to copy (SPEC §2.8). Pure.

The sizing worker asks at dequeue time: a BUY older than `max_event_age_s` becomes a
`STALE_EVENT` decision; a SELL is never stale, because exits are always mirrored.
Age is measured from the venue's trade time to the worker's `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from polycopy.domain.events import LeaderTrade, Side


def is_stale(trade: LeaderTrade, now: datetime, max_age_s: Decimal | float | int) -> bool:
    """True for a BUY whose venue time is more than `max_age_s` seconds before `now`."""
    if trade.side is Side.SELL:
        return False
    return now - trade.timestamp > timedelta(seconds=float(max_age_s))
