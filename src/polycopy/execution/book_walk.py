"""Order books and the paper fill: walk the levels within the price bound (reference §8.3).

PURE. `/book` sends levels worst-first (best LAST), and the docs say the opposite, so
`parse_book` never trusts positions: it sorts asks ascending and bids descending.

A marketable order takes levels best-first while their price is within the bound: a BUY
spends its pUSD (each level's shares floored to the venue's 6-decimal unit), a SELL gives its
shares. FAK keeps what matched (partial fills possible); FOK is all-or-nothing. Takers pay
`fee = C × rate × (p(1−p))^exponent` per level (reference §3.5), rounded up to the unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from polycopy.domain.events import Side
from polycopy.domain.money import ONE, USDC_UNIT, ZERO, BadNumber, to_decimal
from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import Execution, FillStatus, OrderPlan
from polycopy.execution.amounts import align_limit, order_amounts
from polycopy.execution.errors import AmountError


class BookError(ValueError):
    """A `/book` payload that cannot be read."""


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class Book:
    asset_id: str
    market: str
    timestamp_ms: int
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    neg_risk: bool | None = None
    last_trade_price: Decimal | None = None

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2


def _levels(raw: object, field: str, descending: bool) -> tuple[Level, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise BookError(f"book {field} is not a list")
    levels = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise BookError(f"book {field} level is not an object")
        try:
            price = to_decimal(item["price"])
            size = to_decimal(item["size"])
        except (KeyError, BadNumber) as exc:
            raise BookError(f"book {field} level is malformed: {exc}") from None
        if not (0 < price < 1) or size < 0:
            raise BookError(f"book {field} level out of range: price {price}, size {size}")
        if size > 0:
            levels.append(Level(price, size))
    levels.sort(key=lambda level: level.price, reverse=descending)
    return tuple(levels)


def _optional_decimal(payload: Mapping[str, Any], key: str) -> Decimal | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    try:
        return to_decimal(value)
    except BadNumber as exc:
        raise BookError(f"book {key}: {exc}") from None


def parse_book(payload: Mapping[str, Any]) -> Book:
    """Read a `GET /book` response (strings or numbers; levels in any order)."""
    if not isinstance(payload, Mapping):
        raise BookError("book is not an object")
    asset = payload.get("asset_id")
    if not isinstance(asset, str) or not asset:
        raise BookError("book has no asset_id")
    try:
        timestamp = int(str(payload.get("timestamp") or 0))
    except ValueError:
        raise BookError(f"book timestamp is not an integer: {payload.get('timestamp')!r}") from None
    neg_risk = payload.get("neg_risk")
    return Book(
        asset_id=asset,
        market=str(payload.get("market") or ""),
        timestamp_ms=timestamp,
        bids=_levels(payload.get("bids"), "bids", descending=True),
        asks=_levels(payload.get("asks"), "asks", descending=False),
        tick_size=_optional_decimal(payload, "tick_size"),
        min_order_size=_optional_decimal(payload, "min_order_size"),
        neg_risk=neg_risk if isinstance(neg_risk, bool) else None,
        last_trade_price=_optional_decimal(payload, "last_trade_price"),
    )


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """V2 taker fee parameters (`fd` of `/clob-markets`): rate, exponent, taker-only."""

    rate: Decimal = ZERO
    exponent: Decimal = ONE
    taker_only: bool = True

    def fee(self, shares: Decimal, price: Decimal) -> Decimal:
        if self.rate == 0 or shares == 0:
            return ZERO
        return shares * self.rate * (price * (ONE - price)) ** self.exponent


NO_FEES = FeeSchedule()


@dataclass(frozen=True, slots=True)
class LevelFill:
    price: Decimal
    shares: Decimal
    fee: Decimal

    @property
    def notional(self) -> Decimal:
        return self.price * self.shares


@dataclass(frozen=True, slots=True)
class WalkResult:
    fills: tuple[LevelFill, ...]
    complete: bool  # the whole order would fill within the bound
    reason: Reason | None  # EXEC_* when not a clean full fill

    @property
    def shares(self) -> Decimal:
        return sum((f.shares for f in self.fills), ZERO)

    @property
    def notional(self) -> Decimal:
        return sum((f.notional for f in self.fills), ZERO)

    @property
    def fee(self) -> Decimal:
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def vwap(self) -> Decimal | None:
        shares = self.shares
        return self.notional / shares if shares else None

    def execution(self) -> Execution:
        if not self.fills:
            return Execution(FillStatus.NONE, reason=self.reason or Reason.EXEC_NO_LIQUIDITY)
        status = FillStatus.FILLED if self.complete else FillStatus.PARTIAL
        return Execution(
            status,
            shares=self.shares,
            notional=self.notional,
            price=self.vwap,
            reason=None if self.complete else Reason.EXEC_PARTIAL_FILL,
            fee=self.fee,
        )


def walk(
    book: Book,
    side: Side,
    *,
    limit: Decimal,
    notional: Decimal = ZERO,
    shares: Decimal = ZERO,
    fok: bool = False,
    fees: FeeSchedule = NO_FEES,
) -> WalkResult:
    """Match a marketable order against `book`. BUY spends up to `notional` pUSD at prices
    ≤ `limit`; SELL gives up to `shares` at prices ≥ `limit`."""
    if side is Side.BUY:
        fills, left = _take_asks(book.asks, limit, notional, fees)
        complete = left < USDC_UNIT
        depth_ok = _asks_cover(book.asks, notional)
        levels = book.asks
        beyond = bool(levels) and levels[0].price > limit
    else:
        fills, left = _take_bids(book.bids, limit, shares, fees)
        complete = left < USDC_UNIT
        depth_ok = sum((level.size for level in book.bids), ZERO) >= shares
        levels = book.bids
        beyond = bool(levels) and levels[0].price < limit
    if complete and fills:
        return WalkResult(tuple(fills), True, None)
    if fills and not fok:
        return WalkResult(tuple(fills), False, Reason.EXEC_PARTIAL_FILL)
    if not levels:
        reason = Reason.EXEC_NO_LIQUIDITY
    elif beyond or depth_ok:
        reason = Reason.EXEC_SLIPPAGE_LIMIT  # liquidity exists, but not within the bound
    else:
        reason = Reason.EXEC_NO_LIQUIDITY
    return WalkResult((), False, reason)


def _take_asks(
    asks: Sequence[Level], limit: Decimal, spend: Decimal, fees: FeeSchedule
) -> tuple[list[LevelFill], Decimal]:
    fills: list[LevelFill] = []
    left = spend
    for level in asks:
        if level.price > limit or left < USDC_UNIT:
            break
        affordable = (left / level.price).quantize(USDC_UNIT, rounding="ROUND_FLOOR")
        take = min(level.size, affordable)
        if take <= 0:
            break
        fills.append(LevelFill(level.price, take, _fee(fees, take, level.price)))
        left -= take * level.price
    return fills, left


def _take_bids(
    bids: Sequence[Level], limit: Decimal, shares: Decimal, fees: FeeSchedule
) -> tuple[list[LevelFill], Decimal]:
    fills: list[LevelFill] = []
    left = shares
    for level in bids:
        if level.price < limit or left <= 0:
            break
        take = min(level.size, left)
        fills.append(LevelFill(level.price, take, _fee(fees, take, level.price)))
        left -= take
    return fills, left


def _fee(fees: FeeSchedule, shares: Decimal, price: Decimal) -> Decimal:
    """A level's taker fee, rounded up to the venue's 6-decimal unit."""
    return fees.fee(shares, price).quantize(USDC_UNIT, rounding=ROUND_CEILING)


def _asks_cover(asks: Sequence[Level], spend: Decimal) -> bool:
    left = spend
    for level in asks:
        left -= level.size * level.price
        if left < USDC_UNIT:
            return True
    return False


def walk_plan(
    plan: OrderPlan,
    book: Book,
    *,
    fok: bool,
    fees: FeeSchedule = NO_FEES,
    tick: Decimal | None = None,
    min_notional: Decimal = ONE,
) -> WalkResult | Reason:
    """Fill `plan` against `book` as the venue would: the plan's bound (re-aligned to the
    market's current tick), the venue's amount precision and minimum. Returns the walk, or
    the reason nothing could be sent (`MARKET_MIN_ORDER_SIZE`)."""
    try:
        limit = align_limit(plan.side, plan.limit_price, tick) if tick else plan.limit_price
        amounts = order_amounts(plan.side, plan.notional, plan.shares, limit)
    except AmountError:
        return Reason.MARKET_MIN_ORDER_SIZE
    if amounts.notional < min_notional and plan.side is Side.BUY:
        return Reason.MARKET_MIN_ORDER_SIZE
    if plan.side is Side.SELL and amounts.maker * limit < min_notional:
        return Reason.MARKET_MIN_ORDER_SIZE  # the venue values a SELL at its bound
    if plan.side is Side.BUY:
        return walk(book, Side.BUY, limit=limit, notional=amounts.maker, fok=fok, fees=fees)
    return walk(book, Side.SELL, limit=limit, shares=amounts.maker, fok=fok, fees=fees)
