"""Pure decoding of leader activity rows (Data API v1/v2, RTDS payloads, tape rows).

Strict: Decimal straight from the wire text, prices inside (0, 1), sizes above 0, known sides,
every identity field present. A row of another activity type is not an error: it raises
`NotATrade` so callers can count it apart from malformed input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from polycopy.domain.events import LeaderTrade, Side
from polycopy.domain.money import BadNumber, to_decimal

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
UNKNOWN_OUTCOME_INDEX = 999
MS_THRESHOLD = 100_000_000_000  # a "seconds" value this large is really milliseconds


class DecodeError(ValueError):
    """A row that cannot be a leader trade; the message names the field at fault."""


class NotATrade(Exception):
    """A well-formed activity row that is not a TRADE (REDEEM, MERGE, REWARD, …)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


_ALIASES: dict[str, tuple[str, ...]] = {
    "wallet": ("proxyWallet", "proxy_wallet"),
    "asset": ("asset", "token_id", "asset_id", "tokenId"),
    "condition": ("conditionId", "condition_id", "market"),
    "tx": ("transactionHash", "transaction_hash"),
    "outcome_index": ("outcomeIndex", "outcome_index"),
}


def _field(row: Mapping[str, Any], name: str) -> Any:
    for key in _ALIASES[name]:
        value = row.get(key)
        if value is not None:
            return value
    return None


def wallet_of(row: Mapping[str, Any]) -> str | None:
    """The row's wallet, lower-cased, without validating anything else (for cheap filtering)."""
    value = _field(row, "wallet")
    return value.lower() if isinstance(value, str) else None


def decode_trade(row: Mapping[str, Any], *, source: str = "") -> LeaderTrade:
    """Decode one activity/trade row. Occurrence index 0; see `OccurrenceCounter`."""
    if type(row) is not dict and not isinstance(row, Mapping):
        raise DecodeError(f"expected an object, got {type(row).__name__}")
    kind = row.get("type")
    if kind is not None and kind != "TRADE" and kind != "":
        if not isinstance(kind, str):
            raise DecodeError(f"type: expected a string, got {type(kind).__name__}")
        raise NotATrade(kind)

    wallet = _required_str(row, "wallet", "proxyWallet")
    if not ADDRESS_RE.match(wallet):
        raise DecodeError(f"proxyWallet: not an address: {wallet!r}")
    asset = _asset(row)
    condition = _field(row, "condition")
    condition = condition if isinstance(condition, str) else ""
    tx_hash = _required_str(row, "tx", "transactionHash")
    if not TX_HASH_RE.match(tx_hash):
        raise DecodeError(f"transactionHash: not a transaction hash: {tx_hash!r}")

    side_text = row.get("side")
    if side_text == "BUY":
        side = Side.BUY
    elif side_text == "SELL":
        side = Side.SELL
    else:
        raise DecodeError(f"side: expected BUY or SELL, got {side_text!r}")
    price = _number(row, "price")
    if not (0 < price < 1):
        raise DecodeError(f"price: must be inside (0, 1), got {price}")
    size = _number(row, "size")
    if size <= 0:
        raise DecodeError(f"size: must be above 0, got {size}")

    outcome = row.get("outcome")
    return LeaderTrade(
        leader=wallet.lower(),
        asset=asset,
        condition_id=condition.lower(),
        side=side,
        price=price,
        size=size,
        timestamp=_timestamp(row.get("timestamp")),
        tx_hash=tx_hash.lower(),
        outcome=outcome if isinstance(outcome, str) else "",
        outcome_index=_outcome_index(row),
        source=source,
    )


class OccurrenceCounter:
    """Numbers identical-looking fills of one wallet within one transaction, in arrival order.

    One settlement can hold several fills with the same token, side, price and size; the
    occurrence index keeps them apart while the same fill seen twice from one source stream
    (or from two sources each counted separately) keeps the same identity.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, ...], int] = {}

    def assign(self, trade: LeaderTrade) -> LeaderTrade:
        key = (
            trade.leader,
            trade.tx_hash,
            trade.asset,
            trade.side.value,
            str(trade.price),
            str(trade.size),
        )
        index = self._seen.get(key, 0)
        self._seen[key] = index + 1
        if index == 0:
            return trade
        return replace(trade, occurrence=index, trade_id="")

    def forget(self) -> None:
        self._seen.clear()


# --- field helpers --------------------------------------------------------------------------
def _required_str(row: Mapping[str, Any], name: str, label: str) -> str:
    value = _field(row, name)
    if value is None:
        raise DecodeError(f"{label}: missing")
    if not isinstance(value, str) or not value.strip():
        raise DecodeError(f"{label}: expected a non-empty string, got {value!r}")
    return value.strip()


def _asset(row: Mapping[str, Any]) -> str:
    value = _field(row, "asset")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise DecodeError(f"asset: expected a token id, got {value!r}")
    value = value.strip()
    if not value.isdigit():
        raise DecodeError(f"asset: token ids are decimal digits, got {value!r}")
    return value


def _number(row: Mapping[str, Any], key: str) -> Decimal:
    value = row.get(key)
    if type(value) is Decimal and value.is_finite():
        return value  # the common case: parsed with parse_float=Decimal
    if value is None:
        raise DecodeError(f"{key}: missing")
    try:
        return to_decimal(value)
    except BadNumber as exc:
        raise DecodeError(f"{key}: {exc}") from None


def _outcome_index(row: Mapping[str, Any]) -> int | None:
    value = _field(row, "outcome_index")
    if value is None or value == "":
        return None
    try:
        index = int(value)
    except (TypeError, ValueError, ArithmeticError):
        raise DecodeError(f"outcomeIndex: expected an integer, got {value!r}") from None
    return None if index == UNKNOWN_OUTCOME_INDEX else index


def _timestamp(value: Any) -> datetime:
    if value is None or value == "":
        raise DecodeError("timestamp: missing")
    if isinstance(value, bool):
        raise DecodeError(f"timestamp: expected epoch seconds, got {value!r}")
    try:
        seconds = to_decimal(value)
    except BadNumber as exc:
        raise DecodeError(f"timestamp: {exc}") from None
    if seconds <= 0:
        raise DecodeError(f"timestamp: must be positive, got {value!r}")
    if seconds >= MS_THRESHOLD:
        seconds = seconds / 1000
    try:
        return datetime.fromtimestamp(float(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise DecodeError(f"timestamp: out of range: {value!r}") from None
