"""Exchange amounts of a marketable (FAK/FOK) order, computed by us (reference §3.4, §4.10).

PURE. Signed orders carry integer amounts with 6 decimals. For FAK/FOK the venue accepts
*the side you give* with at most 2 decimals and *the side you receive* with at most 4:

- BUY:  maker = pUSD offered (≤ 2 dp), taker = fewest shares accepted (≤ 4 dp).
- SELL: maker = shares offered (≤ 2 dp), taker = least pUSD accepted (≤ 4 dp).

Everything rounds towards less risk: what we give is floored (never spend or sell more than
planned, never ask for shares the money cannot buy at the bound). Flooring a BUY's shares
moves the implied price maker/taker a hair *above* the bound, so that a resting order exactly
at the bound can be matched; the hair is kept under half the finest tick (0.0001), so the
price the venue reads at 4 decimals is the bound itself and nothing above it can match (if it
would not be, a cent less is spent). A SELL's least pUSD is floored, or rounded up by one unit
when that keeps the price read at 4 decimals on the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from polycopy.domain.events import Side
from polycopy.domain.money import ONE, round_down, round_up
from polycopy.execution.errors import AmountError, InvariantError

SCALE = 10**6
GIVEN_STEP = Decimal("0.01")
RECEIVED_STEP = Decimal("0.0001")
FINEST_TICK = Decimal("0.0001")
HALF_FINEST_TICK = FINEST_TICK / 2
_MAX_TRIMS = 20
VALID_TICKS = frozenset(Decimal(t) for t in ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001"))


@dataclass(frozen=True, slots=True)
class OrderAmounts:
    side: Side
    maker_amount: int  # × 10^-6
    taker_amount: int  # × 10^-6
    limit_price: Decimal  # the bound these amounts respect

    @property
    def maker(self) -> Decimal:
        return Decimal(self.maker_amount) / SCALE

    @property
    def taker(self) -> Decimal:
        return Decimal(self.taker_amount) / SCALE

    @property
    def shares(self) -> Decimal:
        """BUY: the fewest shares accepted; SELL: the shares offered."""
        return self.taker if self.side is Side.BUY else self.maker

    @property
    def notional(self) -> Decimal:
        """BUY: the most pUSD spent; SELL: the least pUSD accepted."""
        return self.maker if self.side is Side.BUY else self.taker

    @property
    def implied_price(self) -> Decimal:
        if self.side is Side.BUY:
            return self.maker / self.taker
        return self.taker / self.maker


def _units(value: Decimal) -> int:
    scaled = value * SCALE
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{value} has more than 6 decimals")
    return int(scaled)


def buy_amounts(notional: Decimal, limit_price: Decimal) -> OrderAmounts:
    """A BUY that spends at most `notional` pUSD and pays at most `limit_price` per share."""
    _check_price(limit_price)
    maker = round_down(notional, GIVEN_STEP)
    if maker <= 0:
        raise AmountError(f"BUY notional {notional} rounds to zero")
    # Flooring the shares lifts maker/taker a hair above the bound. Keep it under half the
    # finest tick, so that the price the venue reads (at 4 decimals) is the bound itself; when
    # it is not, spend a cent less (never more) until it is.
    for _ in range(_MAX_TRIMS):
        taker = round_down(maker / limit_price, RECEIVED_STEP)
        if taker <= 0:
            raise AmountError(f"BUY of {maker} at {limit_price} rounds to zero shares")
        if maker < (limit_price + HALF_FINEST_TICK) * taker:
            return OrderAmounts(Side.BUY, _units(maker), _units(taker), limit_price)
        maker -= GIVEN_STEP
        if maker <= 0:
            break
    raise AmountError(
        f"BUY of {notional} at {limit_price}: rounding cannot keep the price at the bound"
    )


def sell_amounts(shares: Decimal, limit_price: Decimal) -> OrderAmounts:
    """A SELL of at most `shares` (floored to 2 dp) at no less than `limit_price`.

    The least pUSD accepted is maker × bound at 4 decimals, floored (or, when flooring moves
    the price the venue reads below the bound, rounded up by one unit that keeps it there);
    failing both, a hundredth of a share less is offered (never more).
    """
    _check_price(limit_price)
    maker = round_down(shares, GIVEN_STEP)
    for _ in range(_MAX_TRIMS):
        if maker <= 0:
            break
        exact = maker * limit_price
        for taker in (round_down(exact, RECEIVED_STEP), round_up(exact, RECEIVED_STEP)):
            if taker > 0 and abs(taker - exact) < HALF_FINEST_TICK * maker:
                return OrderAmounts(Side.SELL, _units(maker), _units(taker), limit_price)
        maker -= GIVEN_STEP
    raise AmountError(f"SELL of {shares} at {limit_price}: rounding cannot keep the bound")


def order_amounts(side: Side, notional: Decimal, shares: Decimal, limit: Decimal) -> OrderAmounts:
    return buy_amounts(notional, limit) if side is Side.BUY else sell_amounts(shares, limit)


def align_limit(side: Side, limit_price: Decimal, tick: Decimal) -> Decimal:
    """Put a bound on `tick`'s grid in the direction that lowers risk (BUY down, SELL up),
    inside [tick, 1 − tick]. Used when a market's tick changed after the plan was made."""
    if tick not in VALID_TICKS:
        raise AmountError(f"unsupported tick size {tick}")
    if side is Side.BUY:
        price = round_down(min(limit_price, ONE - tick), tick)
        if price < tick:
            raise AmountError(f"BUY bound {limit_price} is below the smallest price {tick}")
    else:
        price = round_up(max(limit_price, tick), tick)
        if price > ONE - tick:
            raise AmountError(f"SELL bound {limit_price} is above the largest price {ONE - tick}")
    return price.quantize(tick)


def on_grid(price: Decimal, tick: Decimal) -> bool:
    return tick <= price <= ONE - tick and price % tick == 0


def check_signed(expected: OrderAmounts, side: str, maker_amount: int, taker_amount: int) -> None:
    """What the SDK signed must be exactly what we computed; anything else is a bug."""
    if side != expected.side.value:
        raise InvariantError(f"signed side {side} differs from the planned {expected.side}")
    if (maker_amount, taker_amount) != (expected.maker_amount, expected.taker_amount):
        raise InvariantError(
            f"signed amounts maker={maker_amount} taker={taker_amount} differ from ours "
            f"maker={expected.maker_amount} taker={expected.taker_amount}"
        )


def decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def floor_units(value: Decimal) -> Decimal:
    """Floor to the venue's 6-decimal unit."""
    return value.quantize(Decimal("0.000001"), rounding=ROUND_FLOOR)


def _check_price(price: Decimal) -> None:
    if not (0 < price < 1):
        raise AmountError(f"price {price} is outside (0, 1)")
