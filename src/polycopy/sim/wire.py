"""How the simulator writes values, API by API, as the real services do.

The Data API and RTDS send JSON numbers; the CLOB sends decimal strings; signed orders carry
integers with six implied decimals. Money stays `Decimal` until this edge.
"""

from __future__ import annotations

import json
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from polycopy.domain.money import fmt

BASE_UNIT = Decimal("0.000001")


def number(value: Decimal) -> int | float:
    """A JSON number the way the v1 Data API writes it: integral values without a fraction."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def float_number(value: Decimal) -> float:
    """A JSON number the way the v2 Data API writes it: always with a fraction."""
    return float(value)


def text(value: Decimal) -> str:
    """A CLOB decimal string: plain digits, no exponent, no trailing zeros."""
    return fmt(value)


def from_base_units(amount: int) -> Decimal:
    """An on-chain amount (6 implied decimals) as a Decimal, exactly."""
    return Decimal(amount).scaleb(-6)


def to_base_units(value: Decimal) -> int:
    """A Decimal as an on-chain amount, dropping anything finer than one unit."""
    return int((value / BASE_UNIT).to_integral_value(rounding=ROUND_FLOOR))


def compact(value: Any) -> str:
    """JSON without spaces, as the venues send it."""
    return json.dumps(value, separators=(",", ":"))


# Data API v2 error codes by status (reference §1.6); other statuses map by class
_V2_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal",
    503: "dependency_unavailable",
}


def v2_error_body(
    status: int, message: str, trace_id: str, *, parameter: str | None = None
) -> dict[str, Any]:
    """A Data API v2 error: `{"error", "code", "retryable", "trace_id", "parameter"?}`."""
    code = _V2_CODES.get(status) or ("internal" if status >= 500 else "invalid_request")
    body: dict[str, Any] = {
        "error": message,
        "code": code,
        "retryable": status == 429 or status >= 500,
        "trace_id": trace_id,
    }
    if parameter:
        body["parameter"] = parameter
    return body
