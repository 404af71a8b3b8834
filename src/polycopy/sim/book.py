"""Order books per outcome token and the walk that fills marketable orders against them.

Books are kept best-first internally and written best-LAST, as the venue sends them. A book
that nobody pinned follows the leader trades: after a leader BUY at p the asks start at p
(less what the leader took) and the bids just below it, and the mirror for a SELL. Level sizes
are a deterministic function of (token, price), so a run is reproducible and a level keeps its
size until someone trades it.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from polycopy.domain.money import ONE, ZERO
from polycopy.sim.wire import BASE_UNIT, compact, text


@dataclass(slots=True)
class Level:
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class Take:
    """Part of one resting level taken by an order."""

    price: Decimal
    shares: Decimal


@dataclass(frozen=True, slots=True)
class Walk:
    """What a marketable order would take from the book, before anything changes."""

    takes: tuple[Take, ...]
    shares: Decimal
    cash: Decimal  # pUSD paid (BUY) or received (SELL), 6 decimals
    complete: bool  # the whole order could be filled


class Book:
    __slots__ = (
        "_asks",
        "_bids",
        "_pending",
        "condition_id",
        "depth",
        "last_trade_price",
        "last_trade_side",
        "pinned",
        "tick",
        "timestamp_ms",
        "token_id",
    )

    def __init__(
        self, token_id: str, condition_id: str, tick: Decimal, depth: int, now_ms: int
    ) -> None:
        self.token_id = token_id
        self.condition_id = condition_id
        self.tick = tick
        self.depth = depth
        self._bids: list[Level] = []  # highest first
        self._asks: list[Level] = []  # lowest first
        # the last leader trade, applied to the levels only when someone reads them: at
        # thousands of trades a second most books are never looked at in between
        self._pending: tuple[str, Decimal, Decimal] | None = None
        self.pinned = False  # set explicitly by a test: leader trades leave it alone
        self.last_trade_price: Decimal | None = None
        self.last_trade_side = ""  # the taker's side of the last trade ("" before any)
        self.timestamp_ms = now_ms

    @property
    def bids(self) -> list[Level]:
        if self._pending is not None:
            self._materialize()
        return self._bids

    @property
    def asks(self) -> list[Level]:
        if self._pending is not None:
            self._materialize()
        return self._asks

    # --- shaping -----------------------------------------------------------------------------
    def seed(self, price: Decimal, now_ms: int) -> None:
        """A fresh two-sided book one tick either side of `price`."""
        p = self.on_grid(price)
        self._bids = self._ladder(p - self.tick, -self.tick)
        self._asks = self._ladder(p + self.tick, self.tick)
        self._pending = None
        self.last_trade_price = p
        self.timestamp_ms = now_ms

    def follow_trade(self, taker_side: str, price: Decimal, size: Decimal, now_ms: int) -> bool:
        """Move the book the way a leader's taker trade at `price` moves it. False if pinned."""
        p = self.on_grid(price)
        self.last_trade_price = p
        self.last_trade_side = taker_side
        self.timestamp_ms = now_ms
        if self.pinned:
            return False
        self._pending = (taker_side, p, size)
        return True

    def _materialize(self) -> None:
        assert self._pending is not None
        taker_side, p, size = self._pending
        self._pending = None
        if taker_side == "BUY":
            self._asks = self._ladder(p, self.tick, taken=size)
            self._bids = self._ladder(p - self.tick, -self.tick)
        else:
            self._bids = self._ladder(p, -self.tick, taken=size)
            self._asks = self._ladder(p + self.tick, self.tick)

    def replace(
        self, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]], now_ms: int
    ) -> None:
        """Set the levels exactly (any order given); the book is pinned from now on."""
        self._bids = sorted((Level(p, s) for p, s in bids if s > 0), key=lambda x: -x.price)
        self._asks = sorted((Level(p, s) for p, s in asks if s > 0), key=lambda x: x.price)
        self._pending = None
        self.pinned = True
        self.timestamp_ms = now_ms

    def retick(self, tick: Decimal, now_ms: int) -> None:
        """Move every level onto a new grid (bids down, asks up) and merge what collides."""
        bids, asks = self.bids, self.asks
        self.tick = tick
        self._bids = _merge(bids, tick, ROUND_FLOOR, descending=True)
        self._asks = _merge(asks, tick, ROUND_CEILING, descending=False)
        self.timestamp_ms = now_ms

    def on_grid(self, price: Decimal) -> Decimal:
        steps = (price / self.tick).to_integral_value(rounding=ROUND_HALF_UP)
        return min(max(steps * self.tick, self.tick), ONE - self.tick)

    def _ladder(self, start: Decimal, step: Decimal, taken: Decimal = ZERO) -> list[Level]:
        """`depth` levels from `start` outwards; the first one less what a trade `taken` there
        (liquidity further out is fresh: the venue's books refill between trades)."""
        levels: list[Level] = []
        price = start
        while len(levels) < self.depth and self.tick <= price <= ONE - self.tick:
            size = level_size(self.token_id, price)
            if price == start:
                size -= taken
            if size > 0:
                levels.append(Level(price, size))
            price += step
        return levels

    # --- reading -----------------------------------------------------------------------------
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        return self.last_trade_price

    def wire(self, *, min_order_size: Decimal, neg_risk: bool) -> dict[str, object]:
        """`GET /book` and the `book` websocket event: levels best-LAST, strings everywhere."""
        book: dict[str, object] = {
            "market": self.condition_id,
            "asset_id": self.token_id,
            "timestamp": str(self.timestamp_ms),
            "hash": "",
            "bids": [{"price": text(x.price), "size": text(x.size)} for x in reversed(self.bids)],
            "asks": [{"price": text(x.price), "size": text(x.size)} for x in reversed(self.asks)],
            "min_order_size": text(min_order_size),
            "tick_size": text(self.tick),
            "neg_risk": neg_risk,
            "last_trade_price": text(self.last_trade_price) if self.last_trade_price else "",
        }
        book["hash"] = hashlib.sha1(compact(book).encode(), usedforsecurity=False).hexdigest()
        return book

    # --- matching ----------------------------------------------------------------------------
    def walk_asks(self, limit: Decimal, budget: Decimal, max_shares: Decimal | None = None) -> Walk:
        """A BUY spending up to `budget` pUSD at asks no higher than `limit`."""
        takes: list[Take] = []
        left, shares = budget, ZERO
        cap = max_shares if max_shares is not None else budget / limit + 1
        for level in self.asks:
            if level.price > limit or shares >= cap:
                break
            take = min(level.size, (left / level.price).quantize(BASE_UNIT, ROUND_FLOOR))
            take = min(take, cap - shares)
            if take <= 0:
                break
            takes.append(Take(level.price, take))
            shares += take
            left -= take * level.price
            if take < level.size:
                break
        cash = (budget - left).quantize(BASE_UNIT, ROUND_HALF_UP)
        # complete when what is left cannot buy one more base unit of a share
        complete = bool(takes) and left < takes[-1].price * BASE_UNIT
        return Walk(tuple(takes), shares, cash, complete)

    def walk_bids(self, limit: Decimal, shares: Decimal, max_shares: Decimal | None = None) -> Walk:
        """A SELL of up to `shares` at bids no lower than `limit`."""
        wanted = shares if max_shares is None else min(shares, max_shares)
        takes: list[Take] = []
        left, cash = wanted, ZERO
        for level in self.bids:
            if level.price < limit or left <= 0:
                break
            take = min(level.size, left)
            takes.append(Take(level.price, take))
            left -= take
            cash += take * level.price
        sold = wanted - left
        return Walk(tuple(takes), sold, cash.quantize(BASE_UNIT, ROUND_FLOOR), sold == shares)

    def consume(self, taker_side: str, takes: tuple[Take, ...], now_ms: int) -> None:
        """Remove what a walk took (the walk ran against this very state)."""
        levels = self.asks if taker_side == "BUY" else self.bids
        for take in takes:
            level = levels[0]
            level.size -= take.shares
            if level.size <= 0:
                levels.pop(0)
        if takes:
            self.last_trade_price = takes[-1].price
            self.last_trade_side = taker_side
        self.timestamp_ms = now_ms


def level_size(token_id: str, price: Decimal) -> Decimal:
    """Deterministic resting size of a seeded level: 20 to 520 shares, two decimals."""
    h = zlib.crc32(f"{token_id}:{price}".encode())
    return Decimal(20 + h % 500) + Decimal((h >> 9) % 100) / 100


def _merge(levels: list[Level], tick: Decimal, rounding: str, descending: bool) -> list[Level]:
    merged: dict[Decimal, Decimal] = {}
    for level in levels:
        price = (level.price / tick).to_integral_value(rounding=rounding) * tick
        if tick <= price <= ONE - tick:
            merged[price] = merged.get(price, ZERO) + level.size
    return [Level(p, s) for p, s in sorted(merged.items(), key=lambda x: x[0], reverse=descending)]
