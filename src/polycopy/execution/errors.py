"""Execution faults, and the table that sorts venue errors into them (reference §4.8, R15).

The position of an exception in the tree says what the caller does with it:

- `TransientVenueError`: the venue provably did not act on the request (429, engine restart);
  retry the *same* request (for an order: the same signed bytes) with capped jittered backoff.
- `PermanentVenueError`: the venue refused; record `EXEC_REJECTED` (or, for an unfilled
  FAK/FOK, no fill) and never retry.
- `AmbiguousSubmitError`: the order may or may not have reached the book (timeout, transport
  error, 5xx, malformed response); the intent is `UNKNOWN` until a look-up by order hash says
  otherwise. Never re-signed.
- `InvariantError`: polycopy's own bookkeeping would break (signed amounts differ from ours,
  an overfill, a sell of shares not held); stop trading.

Vendor exceptions are translated at the edge (`raise … from e`); messages never carry secrets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ExecutionError(Exception):
    """Base of every execution fault."""


class VenueError(ExecutionError):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class TransientVenueError(VenueError):
    """Retry the same request after `retry_after` seconds (or backoff)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class PermanentVenueError(VenueError):
    """The venue refused; no retry."""

    def __init__(
        self,
        message: str,
        *,
        kind: RejectKind,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.kind = kind


class AmbiguousSubmitError(VenueError):
    """The order's fate is unknown; resolve it by looking up its hash."""


class InvariantError(ExecutionError):
    """polycopy's own bookkeeping would break: stop trading (kill switch)."""


class AmountError(ExecutionError, ValueError):
    """A plan cannot be expressed as valid venue amounts (rounds to zero, breaks the bound)."""


class NotReconciledError(ExecutionError):
    """An order was requested before start-up reconciliation finished (R5)."""


class ReconcileError(ExecutionError):
    """Start-up reconciliation could not ask the venue; trading must not start."""


# --- classification ------------------------------------------------------------------------
class ErrorClass(StrEnum):
    TRANSIENT = "TRANSIENT"  # not processed: resend the same bytes
    PERMANENT = "PERMANENT"  # refused: EXEC_REJECTED
    UNFILLED = "UNFILLED"  # a marketable order found nothing to match: no fill, no retry
    AMBIGUOUS = "AMBIGUOUS"  # may have been processed: look it up


class RejectKind(StrEnum):
    TICK = "TICK"  # price off the tick grid: refresh market metadata
    MIN_SIZE = "MIN_SIZE"
    PRECISION = "PRECISION"  # maker/taker decimals
    BALANCE = "BALANCE"  # not enough balance / allowance (R27)
    UNFILLED = "UNFILLED"  # FOK/FAK unmatched
    DUPLICATE = "DUPLICATE"  # the same signed order was already received
    MARKET_STATE = "MARKET_STATE"  # closed, not ready, post-only / cancel-only, halted
    AUTH = "AUTH"
    ACCOUNT = "ACCOUNT"  # banned, closed-only
    RATE_LIMIT = "RATE_LIMIT"
    RESTART = "RESTART"
    SERVER = "SERVER"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class Classified:
    error_class: ErrorClass
    kind: RejectKind


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    error_class: ErrorClass
    kind: RejectKind


def _rule(pattern: str, error_class: ErrorClass, kind: RejectKind) -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), error_class, kind)


# Message rules, checked in order before the status rules. Strings from reference §4.8.
MESSAGE_RULES: tuple[_Rule, ...] = (
    _rule(r"breaks minimum tick size rule", ErrorClass.PERMANENT, RejectKind.TICK),
    _rule(r"invalid tick size|tick size", ErrorClass.PERMANENT, RejectKind.TICK),
    _rule(r"lower than the minimum", ErrorClass.PERMANENT, RejectKind.MIN_SIZE),
    _rule(r"min(imum)? size: \$", ErrorClass.PERMANENT, RejectKind.MIN_SIZE),
    _rule(r"invalid amounts|max accuracy of", ErrorClass.PERMANENT, RejectKind.PRECISION),
    _rule(r"not enough balance|allowance", ErrorClass.PERMANENT, RejectKind.BALANCE),
    _rule(r"FOK orders are (fully )?filled or killed", ErrorClass.UNFILLED, RejectKind.UNFILLED),
    _rule(r"no orders found to match", ErrorClass.UNFILLED, RejectKind.UNFILLED),
    _rule(r"there are no matching orders", ErrorClass.UNFILLED, RejectKind.UNFILLED),
    _rule(r"rounding issues", ErrorClass.UNFILLED, RejectKind.UNFILLED),
    _rule(r"discrepancy greater than allowed", ErrorClass.UNFILLED, RejectKind.UNFILLED),
    _rule(r"\bDuplicated\b", ErrorClass.AMBIGUOUS, RejectKind.DUPLICATE),
    _rule(r"post-only mode", ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    _rule(r"crosses book", ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    _rule(r"trading is currently", ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    _rule(r"not yet ready to process", ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    _rule(r"match delayed", ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    _rule(
        r"market (is )?(closed|not active|resolved)", ErrorClass.PERMANENT, RejectKind.MARKET_STATE
    ),
    _rule(r"not accepting orders", ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    _rule(r"address banned|closed only mode", ErrorClass.PERMANENT, RejectKind.ACCOUNT),
    _rule(r"maker address not allowed", ErrorClass.PERMANENT, RejectKind.ACCOUNT),
    _rule(r"order_version_mismatch", ErrorClass.PERMANENT, RejectKind.OTHER),
    _rule(r"invalid signature", ErrorClass.PERMANENT, RejectKind.AUTH),
    _rule(r"owner of the API KEY|address of the API KEY", ErrorClass.PERMANENT, RejectKind.AUTH),
    _rule(
        r"unauthori[sz]ed|invalid api key|L1 Request headers", ErrorClass.PERMANENT, RejectKind.AUTH
    ),
    _rule(r"invalid expiration|invalid nonce", ErrorClass.PERMANENT, RejectKind.OTHER),
    _rule(r"too many requests", ErrorClass.TRANSIENT, RejectKind.RATE_LIMIT),
)


# The SDK's `RejectedOrder.code` for a 200 body. It derives every code but two from a known
# `errorMsg`, so those are as definitive as the message. `unmatched` (the status of an order
# that found nothing and was put on the book, which a FAK/FOK never is) and `unknown` (an
# answer the SDK could not place: `success: false`, an odd status, an empty `errorMsg` that it
# turns into "Unknown order failure") are not in this table: they say nothing definitive.
CODE_RULES: dict[str, Classified] = {
    "post_only_mode": Classified(ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    "post_only_would_cross": Classified(ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    "market_not_ready": Classified(ErrorClass.PERMANENT, RejectKind.MARKET_STATE),
    "not_enough_balance": Classified(ErrorClass.PERMANENT, RejectKind.BALANCE),
    "invalid_nonce": Classified(ErrorClass.PERMANENT, RejectKind.OTHER),
    "invalid_expiration": Classified(ErrorClass.PERMANENT, RejectKind.OTHER),
    "fok_not_filled": Classified(ErrorClass.UNFILLED, RejectKind.UNFILLED),
    "fak_not_filled": Classified(ErrorClass.UNFILLED, RejectKind.UNFILLED),
}


def classify(status: int | None, message: str, code: str | None = None) -> Classified:
    """Sort a venue answer to `POST /order` (HTTP status, error text, error code).

    `status` None means the answer came inside a 200 body (`errorMsg`). Only a known error
    string (or an SDK code derived from one) is definitive there; anything else in a 200 —
    an unknown message, `success: false`, a status such as `unmatched` — is AMBIGUOUS (R4):
    the venue may have acted on the order, so it is looked up by hash, never rejected.
    """
    if code is not None and code in CODE_RULES:
        return CODE_RULES[code]
    for rule in MESSAGE_RULES:
        if rule.pattern.search(message):
            return Classified(rule.error_class, rule.kind)
    if status is None:
        return Classified(ErrorClass.AMBIGUOUS, RejectKind.OTHER)
    if status == 429:
        return Classified(ErrorClass.TRANSIENT, RejectKind.RATE_LIMIT)
    if status == 425:
        return Classified(ErrorClass.AMBIGUOUS, RejectKind.RESTART)
    if status >= 500:
        return Classified(ErrorClass.AMBIGUOUS, RejectKind.SERVER)
    if status in (401, 403):
        return Classified(ErrorClass.PERMANENT, RejectKind.AUTH)
    if 400 <= status < 500:
        return Classified(ErrorClass.PERMANENT, RejectKind.OTHER)
    return Classified(ErrorClass.AMBIGUOUS, RejectKind.OTHER)


def is_transient_read(status: int | None) -> bool:
    """Whether an idempotent GET that failed with `status` (None: no answer) may be retried."""
    return status is None or status in (408, 425, 429) or status >= 500
