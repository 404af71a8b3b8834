"""Small-trade netting buffers (SPEC §2.5), keyed by (leader, asset), driven by a passed clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from polycopy.domain.money import ZERO

NettingKey = tuple[str, str]  # (leader, asset)


@dataclass(slots=True)
class NettingBuffer:
    leader: str
    asset: str
    condition_id: str
    opened_at: datetime
    due_at: datetime
    net_notional: Decimal = ZERO  # BUYs add, SELLs subtract, each at its own price
    sell_shares: Decimal = ZERO  # Σ shares of the deferred SELLs
    sell_notional: Decimal = ZERO  # Σ of their notionals (> 0 whenever sell_shares is)
    last_price: Decimal = ZERO
    last_event_ts: datetime | None = None
    decision_ids: list[str] = field(default_factory=list)

    @property
    def key(self) -> NettingKey:
        return (self.leader, self.asset)


class NettingBook:
    def __init__(self) -> None:
        self._buffers: dict[NettingKey, NettingBuffer] = {}

    def __len__(self) -> int:
        return len(self._buffers)

    def get(self, key: NettingKey) -> NettingBuffer | None:
        return self._buffers.get(key)

    def add(
        self,
        *,
        leader: str,
        asset: str,
        condition_id: str,
        signed_notional: Decimal,
        price: Decimal,
        decision_id: str,
        sell_shares: Decimal = ZERO,
        event_ts: datetime | None,
        now: datetime,
        window_s: Decimal,
    ) -> NettingBuffer:
        key = (leader, asset)
        buffer = self._buffers.get(key)
        if buffer is None:
            due = now + timedelta(seconds=float(window_s))
            buffer = self._buffers[key] = NettingBuffer(leader, asset, condition_id, now, due)
        buffer.net_notional += signed_notional
        if signed_notional < 0:
            buffer.sell_shares += sell_shares
            buffer.sell_notional -= signed_notional
        buffer.last_price = price
        buffer.last_event_ts = event_ts
        buffer.decision_ids.append(decision_id)
        return buffer

    def pop(self, key: NettingKey) -> NettingBuffer | None:
        return self._buffers.pop(key, None)

    def due(self, now: datetime) -> list[NettingBuffer]:
        """Remove and return the buffers whose window has ended, oldest deadline first."""
        if not self._buffers:
            return []
        ready = sorted(
            (b for b in self._buffers.values() if b.due_at <= now),
            key=lambda b: (b.due_at, b.leader, b.asset),
        )
        for buffer in ready:
            del self._buffers[buffer.key]
        return ready

    def drain(self) -> list[NettingBuffer]:
        """Remove and return every buffer, oldest deadline first (end of a replay)."""
        ready = sorted(self._buffers.values(), key=lambda b: (b.due_at, b.leader, b.asset))
        self._buffers.clear()
        return ready

    def buffers(self) -> list[NettingBuffer]:
        return list(self._buffers.values())
