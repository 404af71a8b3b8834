"""Decimal helpers. Every rounding is named by the direction that lowers risk."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
USDC_UNIT = Decimal("0.000001")  # on-chain amounts carry 6 decimals


class BadNumber(ValueError):
    """A wire or config value that is not a finite decimal number."""


def to_decimal(value: object) -> Decimal:
    """Parse a wire or file value into a finite Decimal.

    Accepts Decimal, int and numeric strings. A float is taken through its shortest repr
    (JSON readers here parse with `parse_float=Decimal`, so floats should not arrive).
    Booleans, NaN and infinities are refused.
    """
    if isinstance(value, bool):
        raise BadNumber(f"expected a number, got boolean {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise BadNumber("expected a number, got an empty string")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise BadNumber(f"expected a number, got {value!r}") from None
    else:
        raise BadNumber(f"expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise BadNumber(f"expected a finite number, got {value!r}")
    return result


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of `step` that is <= value (value >= 0 in practice)."""
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def round_up(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of `step` that is >= value."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_shares_down(shares: Decimal, step: Decimal) -> Decimal:
    """Shares are always rounded down: never buy or sell more than was sized."""
    return round_down(shares, step).quantize(step) if shares > 0 else ZERO


def buy_limit_price(reference: Decimal, slippage: Decimal, tick: Decimal) -> Decimal:
    """Highest price a copy BUY may pay: reference + slippage, down to the tick, inside the book."""
    bound = min(reference + slippage, ONE - tick)
    return max(round_down(bound, tick), tick).quantize(tick)


def sell_limit_price(reference: Decimal, slippage: Decimal, tick: Decimal) -> Decimal:
    """Lowest price a copy SELL may accept: reference − slippage, up to the tick."""
    bound = max(reference - slippage, tick)
    return min(round_up(bound, tick), ONE - tick).quantize(tick)


def clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(value, high))


def fmt(value: Decimal) -> str:
    """Plain decimal text without exponent, trailing zeros stripped (stable across runs)."""
    text = str(value)
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("0", "-0", ""):
        return "0"
    return text
