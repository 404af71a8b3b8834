"""Attributed positions: what each leader's copy stream holds for us, and what it is worth.

A_u (SPEC §2.7) = Σ over assets of our shares attributed to u × the asset's mark price, plus
reservations for buys sent but not yet confirmed. The value is kept incrementally so that a
mark change costs one multiplication per leader holding that asset, not a full rescan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

from polycopy.domain.events import Side
from polycopy.domain.money import ZERO

MARK_STEP = Decimal("1e-12")


def fill_mark(amount: Decimal, shares: Decimal) -> Decimal:
    """The volume-weighted price of a fill, rounded down to MARK_STEP (never above cost)."""
    with localcontext() as ctx:
        ctx.rounding = ROUND_FLOOR
        return (amount / shares).quantize(MARK_STEP).normalize()


class LedgerInvariantError(ValueError):
    """An operation would break the attributed ledger (e.g. selling shares not held)."""


@dataclass(slots=True)
class Holding:
    shares: Decimal
    cost: Decimal  # cost basis of the shares still held


@dataclass(frozen=True, slots=True)
class LeaderPnl:
    value: Decimal  # Σ shares × mark
    cost: Decimal  # cost basis of open shares
    realized: Decimal

    @property
    def unrealized(self) -> Decimal:
        return self.value - self.cost


class AttributedBook:
    def __init__(self) -> None:
        self._holdings: dict[str, dict[str, Holding]] = {}  # leader → asset → holding
        self._holders: dict[str, set[str]] = {}  # asset → leaders holding it
        self._marks: dict[str, Decimal] = {}
        self._value: dict[str, Decimal] = {}  # leader → Σ shares × mark
        self._reserved: dict[str, dict[str, Decimal]] = {}  # leader → key → notional
        self._realized: dict[str, Decimal] = {}

    # --- reads -------------------------------------------------------------------------
    def shares(self, leader: str, asset: str) -> Decimal:
        holding = self._holdings.get(leader, {}).get(asset)
        return holding.shares if holding else ZERO

    def mark(self, asset: str) -> Decimal | None:
        return self._marks.get(asset)

    def reserved(self, leader: str) -> Decimal:
        entries = self._reserved.get(leader)
        return sum(entries.values(), ZERO) if entries else ZERO

    def exposure(self, leader: str) -> Decimal:
        """A_u: marked value of the leader's attributed positions plus open reservations."""
        return self._value.get(leader, ZERO) + self.reserved(leader)

    def holdings(self, leader: str) -> Iterator[tuple[str, Holding]]:
        yield from self._holdings.get(leader, {}).items()

    def leaders(self) -> list[str]:
        return sorted(set(self._holdings) | set(self._reserved) | set(self._realized))

    def assets(self) -> list[str]:
        """Every asset some leader's copy stream holds."""
        return sorted(self._holders)

    def holders(self, asset: str) -> list[str]:
        """The leaders whose copies hold some of this asset."""
        return sorted(self._holders.get(asset, ()))

    def settle(self, leader: str, asset: str, payout: Decimal) -> Decimal:
        """The asset's market resolved: the leader's shares leave at the payout per share
        (1 or 0); returns the realised PnL."""
        shares = self.shares(leader, asset)
        if shares <= 0:
            return ZERO
        return self.apply_fill(leader, asset, Side.SELL, shares, payout, shares * payout)

    def pnl(self, leader: str) -> LeaderPnl:
        cost = sum((h.cost for h in self._holdings.get(leader, {}).values()), ZERO)
        return LeaderPnl(
            value=self._value.get(leader, ZERO),
            cost=cost,
            realized=self._realized.get(leader, ZERO),
        )

    def recomputed_value(self, leader: str) -> Decimal:
        """Full rescan of the marked value; the incremental figure must always equal it."""
        total = ZERO
        for asset, holding in self._holdings.get(leader, {}).items():
            total += holding.shares * self._marks.get(asset, ZERO)
        return total

    # --- writes ------------------------------------------------------------------------
    def set_mark(self, asset: str, price: Decimal) -> None:
        old = self._marks.get(asset)
        if old == price:
            return
        self._marks[asset] = price
        delta = price - (old if old is not None else ZERO)
        for leader in self._holders.get(asset, ()):
            shares = self._holdings[leader][asset].shares
            self._value[leader] = self._value.get(leader, ZERO) + shares * delta

    def forget_unheld_marks(self) -> int:
        """Drop the marks of tokens no leader's copies hold (a long-running daemon sees a
        new token every few minutes); returns how many were dropped."""
        unheld = [asset for asset in self._marks if asset not in self._holders]
        for asset in unheld:
            del self._marks[asset]
        return len(unheld)

    def reserve(self, leader: str, key: str, notional: Decimal) -> None:
        self._reserved.setdefault(leader, {})[key] = notional

    def release(self, leader: str, key: str) -> None:
        per_leader = self._reserved.get(leader)
        if per_leader is not None:
            per_leader.pop(key, None)
            if not per_leader:
                del self._reserved[leader]

    def reservations(self) -> Iterator[tuple[str, str, Decimal]]:
        for leader, entries in self._reserved.items():
            for key, notional in entries.items():
                yield leader, key, notional

    def apply_fill(
        self,
        leader: str,
        asset: str,
        side: Side,
        shares: Decimal,
        price: Decimal,
        notional: Decimal | None = None,
    ) -> Decimal:
        """Apply a filled copy order; returns the realised PnL of a sell (0 for a buy).

        `notional` is what the fill cost or earned when known exactly (a multi-level fill);
        otherwise shares × price.
        """
        if shares <= 0:
            return ZERO
        amount = notional if notional is not None else shares * price
        # The fill is the freshest price of the token: it becomes the mark, rounded down so
        # that the shares bought are never worth more than they cost (a HARD budget's
        # headroom covers the revaluation of shares already held, see sizing._revaluation).
        self.set_mark(asset, fill_mark(amount, shares))
        mark = self._marks[asset]
        per_leader = self._holdings.setdefault(leader, {})
        holding = per_leader.get(asset)
        if side is Side.BUY:
            if holding is None:
                holding = per_leader[asset] = Holding(ZERO, ZERO)
                self._holders.setdefault(asset, set()).add(leader)
            holding.shares += shares
            holding.cost += amount
            self._value[leader] = self._value.get(leader, ZERO) + shares * mark
            return ZERO
        held = holding.shares if holding else ZERO
        if holding is None or shares > held:
            raise LedgerInvariantError(
                f"sell of {shares} shares of {asset} for {leader} exceeds the {held} attributed"
            )
        cost_out = holding.cost if shares == held else holding.cost * shares / holding.shares
        realized = amount - cost_out
        holding.shares -= shares
        holding.cost -= cost_out
        self._value[leader] = self._value.get(leader, ZERO) - shares * mark
        self._realized[leader] = self._realized.get(leader, ZERO) + realized
        if holding.shares == 0:
            del per_leader[asset]
            holders = self._holders[asset]
            holders.discard(leader)
            if not holders:
                del self._holders[asset]
        return realized

    def restore(self, leader: str, asset: str, shares: Decimal, cost: Decimal) -> None:
        """Load a holding from durable storage at start-up."""
        if shares <= 0:
            return
        per_leader = self._holdings.setdefault(leader, {})
        if asset in per_leader:
            raise LedgerInvariantError(f"holding {leader}/{asset} restored twice")
        per_leader[asset] = Holding(shares, cost)
        self._holders.setdefault(asset, set()).add(leader)
        mark = self._marks.get(asset)
        if mark is None:
            mark = cost / shares
            self._marks[asset] = mark
        self._value[leader] = self._value.get(leader, ZERO) + shares * mark

    def restore_realized(self, leader: str, realized: Decimal) -> None:
        self._realized[leader] = realized
