"""Pure decoding of leader activity rows (Data API v1/v2, RTDS payloads, tape rows).

Strict: Decimal straight from the wire text, prices inside (0, 1), sizes above 0, known sides,
every identity field present. A row of another activity type is not an error: it raises
`NotATrade` so callers can count it apart from malformed input.

Magnitudes are bounded before any arithmetic or formatting: a number with more than
`MAX_PLACES` decimal places, a size above `MAX_SHARES`, a notional above `MAX_NOTIONAL` or a
timestamp beyond 13 digits is rejected (`1e999999999` would otherwise take seconds and
gigabytes to print). Timestamps are epoch seconds; a value of 12–13 digits is milliseconds and
is divided by 1000; given the clock (`now`, epoch seconds), one more than `FUTURE_MARGIN_S`
ahead of it is rejected, so that a bogus row cannot carry a cursor into the future.

Identity (SPEC §2.8): `domain.events.trade_identity` canonicalises price and size before
hashing, because the feeds render one fill differently: RTDS sends floats such as `0.12`,
`/activity` derives its price from the settled amounts (`0.12000001318105698`) and its sizes
carry float noise (`62.013960000000004`).

RTDS frames go through `decode_rtds_frame`, which looks at the `proxyWallet` of the raw text
before parsing anything: a frame of a wallet nobody follows costs one substring search and one
set lookup, whatever the number of leaders. `/positions` and `/value` bodies decode here too.
Nothing in this module does I/O, reads a clock or logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from polycopy.domain.events import LeaderTrade, Side, trade_identity
from polycopy.domain.money import ONE, BadNumber, to_decimal

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
UNKNOWN_OUTCOME_INDEX = 999
MS_THRESHOLD = 100_000_000_000  # a "seconds" value this large is really milliseconds
MAX_TIMESTAMP_DIGITS = 13  # milliseconds until the year 2286; anything longer is garbage
FUTURE_MARGIN_S = 60  # venue time may run this far ahead of our clock (skew, block time)
MAX_PLACES = 30  # decimal places of any number (a float's repr has about 17 digits)
MAX_SHARES = Decimal(10) ** 9  # one fill; the largest real ones are around 10^6 shares
MAX_NOTIONAL = Decimal(10) ** 8  # USDC of one fill; the largest real ones are below 10^6
MAX_POSITION = Decimal(10) ** 10  # shares or USDC of a position or a wallet's value


class DecodeError(ValueError):
    """A row that cannot be a leader trade; the message names the field at fault."""

    @property
    def reason(self) -> str:
        """A short, bounded label for counters: the field at fault (`price`, `side`, …)."""
        head = str(self).split(":", 1)[0]
        return head if head.isidentifier() and len(head) <= 32 else "malformed"


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


def decode_trade(
    row: Mapping[str, Any], *, source: str = "", now: float | None = None
) -> LeaderTrade:
    """Decode one activity/trade row. Occurrence index 0; see `OccurrenceCounter`.

    `now` (epoch seconds) bounds the timestamp from above; None (tapes) leaves it unbounded.
    """
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
    price = _bounded(_number(row, "price"), "price", ONE)
    if not (0 < price < 1):
        raise DecodeError(f"price: must be inside (0, 1), got {price}")
    size = _bounded(_number(row, "size"), "size", MAX_SHARES)
    if size <= 0:
        raise DecodeError(f"size: must be above 0, got {size}")
    if size * price > MAX_NOTIONAL:
        raise DecodeError(f"size: notional out of range (above {MAX_NOTIONAL} USDC)")

    leader = wallet.lower()
    tx_hash = tx_hash.lower()
    outcome = row.get("outcome")
    return LeaderTrade(
        leader=leader,
        asset=asset,
        condition_id=condition.lower(),
        side=side,
        price=price,
        size=size,
        timestamp=_timestamp(row.get("timestamp"), now),
        tx_hash=tx_hash,
        outcome=outcome if isinstance(outcome, str) else "",
        outcome_index=_outcome_index(row),
        source=source,
        trade_id=trade_identity(leader, tx_hash, asset, side, price, size, 0),
    )


def identity_of(trade: LeaderTrade) -> str:
    """`trade_identity` over a trade's own fields (its occurrence included)."""
    return trade_identity(
        trade.leader,
        trade.tx_hash,
        trade.asset,
        trade.side,
        trade.price,
        trade.size,
        trade.occurrence,
    )


class OccurrenceCounter:
    """Numbers identical-looking fills of one wallet within one transaction, in arrival order.

    One settlement can hold several fills with the same token, side, price and size; the
    occurrence index keeps them apart while the same fill seen twice from one source stream
    (or from two sources each counted separately) keeps the same identity.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def assign(self, trade: LeaderTrade) -> LeaderTrade:
        """`trade` must carry occurrence 0 (as `decode_trade` returns it)."""
        key = trade.trade_id  # the occurrence-0 identity: canonical price and size
        index = self._seen.get(key, 0)
        self._seen[key] = index + 1
        if index == 0:
            return trade
        numbered = replace(trade, occurrence=index)
        return replace(numbered, trade_id=identity_of(numbered))

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


def _bounded(value: Decimal, key: str, limit: Decimal) -> Decimal:
    """`value`, unless its magnitude is absurd: above `limit` or with more than `MAX_PLACES`
    decimal places. Looks at the exponent only, so `1e999999999` costs nothing."""
    if value.adjusted() > limit.adjusted() or abs(value) > limit:  # exponent first: cheap
        raise DecodeError(f"{key}: out of range (above {limit})")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise DecodeError(f"{key}: more than {MAX_PLACES} decimal places")
    return value


def bounded_amount(value: Decimal, key: str) -> Decimal:
    """`value` if it is a sane position-sized amount (see `MAX_POSITION`, `MAX_PLACES`), else
    `DecodeError` naming `key`; for readers of positions outside this module (tapes)."""
    return _bounded(value, key, MAX_POSITION)


def _outcome_index(row: Mapping[str, Any]) -> int | None:
    value = _field(row, "outcome_index")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise DecodeError(f"outcomeIndex: expected an integer, got {value!r}")
    text = str(value).strip()
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        text = str(int(value)) if abs(value) < 10**9 else text
    if not (text.lstrip("-").isdigit() and len(text) <= 9):
        raise DecodeError(f"outcomeIndex: expected an integer, got {value!r}")
    index = int(text)
    return None if index == UNKNOWN_OUTCOME_INDEX else index


def epoch_seconds_of(value: Any, now: float | None = None) -> Decimal:
    """A wire timestamp as epoch seconds: bounded, milliseconds (≥ `MS_THRESHOLD`) divided by
    1000, and with `now` given, at most `FUTURE_MARGIN_S` ahead of it. Raises `DecodeError`."""
    if value is None or value == "":
        raise DecodeError("timestamp: missing")
    if isinstance(value, bool):
        raise DecodeError(f"timestamp: expected epoch seconds, got {value!r}")
    try:
        seconds = to_decimal(value)
    except BadNumber as exc:
        raise DecodeError(f"timestamp: {exc}") from None
    if seconds.adjusted() >= MAX_TIMESTAMP_DIGITS:
        raise DecodeError(f"timestamp: out of range: more than {MAX_TIMESTAMP_DIGITS} digits")
    if seconds <= 0:
        raise DecodeError(f"timestamp: must be positive, got {seconds}")
    if seconds >= MS_THRESHOLD:
        seconds = seconds / 1000  # milliseconds
    if now is not None and seconds > Decimal(int(now)) + FUTURE_MARGIN_S:
        ahead = int(seconds) - int(now)
        raise DecodeError(f"timestamp: {ahead} s ahead of the clock (at most {FUTURE_MARGIN_S})")
    return seconds


def row_epoch_s(row: Any, now: float | None = None) -> int | None:
    """Whole epoch seconds of a row's timestamp by the rules of `epoch_seconds_of`, or None
    when the row has no usable timestamp (for paging, which must not trust a bad row)."""
    if not isinstance(row, Mapping):
        return None
    try:
        return int(epoch_seconds_of(row.get("timestamp"), now))
    except DecodeError:
        return None


def _timestamp(value: Any, now: float | None) -> datetime:
    seconds = epoch_seconds_of(value, now)
    try:
        return datetime.fromtimestamp(float(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise DecodeError(f"timestamp: out of range: {value!r}") from None


# --- wire JSON ------------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


_WIRE = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def loads(text: str | bytes) -> Any:
    """Parse wire JSON: numbers with a fraction become Decimal, NaN/Infinity are refused.

    Raises `DecodeError("json: …")` for anything that is not one JSON document.
    """
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8")
        return _WIRE.decode(text)
    except UnicodeDecodeError:
        raise DecodeError("json: not UTF-8") from None
    except RecursionError:
        raise DecodeError("json: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, refused constants, over-long integers
        raise DecodeError(f"json: {exc}") from None


# --- RTDS frames ----------------------------------------------------------------------------
RTDS_TOPIC = "activity"
RTDS_TYPES = ("trades", "orders_matched")
RTDS_SOURCES = {kind: f"rtds:{kind}" for kind in RTDS_TYPES}
KEEPALIVE_FRAMES = frozenset({"", "PONG", "pong", "PING", "ping"})
_WALLET_KEY = '"proxyWallet"'
_WALLET_KEY_LEN = len(_WALLET_KEY)


class FrameRejected(DecodeError):
    """A websocket frame that should have been a leader trade and is not usable."""


@dataclass(frozen=True, slots=True)
class FrameSkip:
    """A frame that carries nothing for us; `kind` names why (for counters)."""

    kind: str


KEEPALIVE = FrameSkip("keepalive")  # "", PONG: answers to our PING, not data
OTHER_WALLET = FrameSkip("other_wallet")  # a trade of a wallet nobody follows
OTHER_MESSAGE = FrameSkip("other_message")  # another topic/type, a subscription answer, …


def frame_wallet(raw: str) -> str | None:
    """The lower-cased `proxyWallet` of a raw RTDS frame, found without parsing it.

    None when the key is absent or its value is not a plain 42-character string; callers then
    parse the frame fully. Inside a JSON string a quote is always escaped, so the first
    `"proxyWallet"` followed by a colon is a real key.
    """
    at = raw.find(_WALLET_KEY)
    if at < 0:
        return None
    after = at + _WALLET_KEY_LEN
    quote = raw.find('"', after)
    if quote < 0 or quote - after > 8 or raw[after:quote].strip() != ":":
        return None
    end = quote + 43
    if raw[end : end + 1] != '"':
        return None
    return raw[quote + 1 : end].lower()


def decode_rtds_frame(
    raw: str | bytes, leaders: Container[str], now: float | None = None
) -> LeaderTrade | FrameSkip:
    """Classify one RTDS text frame against the followed (lower-case) wallets.

    `now` (epoch seconds) bounds the payload timestamp, as in `decode_trade`.

    Returns the decoded `LeaderTrade` (source `rtds:trades` or `rtds:orders_matched`,
    occurrence 0) or a `FrameSkip`. Raises `FrameRejected` (a `DecodeError`) for a frame that
    is not valid RTDS JSON or whose leader payload fails strict decoding; nothing else escapes.
    """
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise FrameRejected("json: not UTF-8") from None
    wallet = frame_wallet(raw)
    if wallet is not None and wallet not in leaders:
        return OTHER_WALLET
    if raw[:1] != "{":
        if raw.strip() in KEEPALIVE_FRAMES:
            return KEEPALIVE
        if not raw.lstrip().startswith("{"):
            raise FrameRejected(f"json: not a JSON object: {raw[:40]!r}")
    try:
        message = loads(raw)
    except DecodeError as exc:
        raise FrameRejected(str(exc)) from None
    if not isinstance(message, dict):
        raise FrameRejected(f"envelope: expected an object, got {type(message).__name__}")
    if message.get("topic") != RTDS_TOPIC:
        return OTHER_MESSAGE
    kind = message.get("type")
    source = RTDS_SOURCES.get(kind) if isinstance(kind, str) else None
    if source is None:
        return OTHER_MESSAGE
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise FrameRejected("envelope: payload missing or not an object")
    owner = wallet_of(payload)
    if owner is not None and owner not in leaders:
        return OTHER_WALLET
    try:
        return decode_trade(payload, source=source, now=now)
    except NotATrade:
        return OTHER_MESSAGE
    except DecodeError as exc:
        raise FrameRejected(str(exc)) from None


# --- Data API bodies ------------------------------------------------------------------------
def rows_of(body: Any, what: str = "rows") -> list[Any]:
    """The rows of a v1 bare-array response or a v2 `{"data": [...]}` envelope."""
    if isinstance(body, dict) and "data" in body:
        body = body["data"]
        if body is None:
            return []
    if not isinstance(body, list):
        raise DecodeError(f"{what}: expected an array, got {type(body).__name__}")
    return body


@dataclass(frozen=True, slots=True)
class PositionsView:
    """A wallet's open positions: Σ currentValue (0 < curPrice < 1) and shares per asset."""

    value: Decimal
    positions: dict[str, Decimal]
    rows: int  # rows read, open or not


def decode_positions(rows: Iterable[Any], wallet: str) -> PositionsView:
    """Strictly decode `/positions` (v1) or `/v2/positions` rows of `wallet` (lower-case).

    Resolved positions (curPrice 0 or 1) are not exposure and are left out. Any malformed
    row, or a row of another wallet, raises `DecodeError`: a partial sum would understate E_u.
    """
    value = Decimal(0)
    positions: dict[str, Decimal] = {}
    count = 0
    for row in rows:
        count += 1
        if not isinstance(row, Mapping):
            raise DecodeError(f"position: expected an object, got {type(row).__name__}")
        owner = wallet_of(row)
        if owner is not None and owner != wallet:
            raise DecodeError(f"proxyWallet: position of another wallet: {owner}")
        price = _bounded(_first(row, "curPrice", "current_price"), "curPrice", MAX_POSITION)
        current = _bounded(
            _first(row, "currentValue", "current_value"), "currentValue", MAX_POSITION
        )
        size = _bounded(_first(row, "size", "current_size"), "size", MAX_POSITION)
        if price < 0 or current < 0 or size < 0:
            raise DecodeError("position: negative price, value or size")
        if not (0 < price < 1):
            continue
        asset = _asset(row)
        value += current
        positions[asset] = positions.get(asset, Decimal(0)) + size
    return PositionsView(value=value, positions=positions, rows=count)


def decode_value(body: Any, wallet: str) -> Decimal:
    """`/value` (v1: `[{"user", "value"}]`, empty for a wallet without positions) or
    `/v2/value` (`{"data": {"proxy_wallet", "value"}}`)."""
    if isinstance(body, dict) and "data" in body:
        body = body["data"]
    if isinstance(body, list):
        if not body:
            return Decimal(0)
        if len(body) != 1:
            raise DecodeError(f"value: expected one entry, got {len(body)}")
        body = body[0]
    if not isinstance(body, Mapping):
        raise DecodeError(f"value: expected an object, got {type(body).__name__}")
    owner = body.get("user", body.get("proxy_wallet", body.get("proxyWallet")))
    if isinstance(owner, str) and owner.lower() != wallet:
        raise DecodeError(f"user: value of another wallet: {owner.lower()}")
    value = _bounded(_number(body, "value"), "value", MAX_POSITION)
    if value < 0:
        raise DecodeError(f"value: must not be negative, got {value}")
    return value


def _first(row: Mapping[str, Any], *keys: str) -> Decimal:
    for key in keys:
        if key in row and row[key] is not None:
            return _number(row, key)
    raise DecodeError(f"{keys[0]}: missing")
