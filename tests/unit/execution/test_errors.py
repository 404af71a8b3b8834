"""R15: venue answers to POST /order sorted into transient / permanent / unfilled / ambiguous."""

from __future__ import annotations

import pytest

from polycopy.execution.errors import ErrorClass, RejectKind, classify, is_transient_read

T, P, U, A = ErrorClass.TRANSIENT, ErrorClass.PERMANENT, ErrorClass.UNFILLED, ErrorClass.AMBIGUOUS

FAK_UNMATCHED = (
    "no orders found to match with FAK order. "
    "FAK orders are partially filled or killed if no match is found."
)
PRECISION = (
    "invalid amounts, the market buy orders maker amount supports a max accuracy of 2 decimals,"
    " taker amount a max of 4 decimals"
)

TABLE = [
    (
        400,
        "invalid amount for a marketable SELL order ($0.75), min size: $1",
        None,
        P,
        RejectKind.MIN_SIZE,
    ),
    (400, "not enough balance / allowance", None, P, RejectKind.BALANCE),
    (
        400,
        "order 0xab is invalid. Price (0.555) breaks minimum tick size rule: 0.01",
        None,
        P,
        RejectKind.TICK,
    ),
    (
        400,
        "order 0xab is invalid. Size (4.9) lower than the minimum: 5",
        None,
        P,
        RejectKind.MIN_SIZE,
    ),
    (
        None,
        "order couldn't be fully filled. FOK orders are fully filled or killed.",
        None,
        U,
        RejectKind.UNFILLED,
    ),
    (
        None,
        FAK_UNMATCHED,
        None,
        U,
        RejectKind.UNFILLED,
    ),
    (
        400,
        PRECISION,
        None,
        P,
        RejectKind.PRECISION,
    ),
    (400, "invalid post-only order: order crosses book", None, P, RejectKind.MARKET_STATE),
    (400, "order 0xab is invalid. Duplicated.", None, A, RejectKind.DUPLICATE),
    (400, "the market is not yet ready to process new orders", None, P, RejectKind.MARKET_STATE),
    (401, "Unauthorized/Invalid api key", None, P, RejectKind.AUTH),
    (
        400,
        "the order signer address has to be the address of the API KEY",
        None,
        P,
        RejectKind.AUTH,
    ),
    (400, "invalid signature", None, P, RejectKind.AUTH),
    (403, "'0xab' address banned", None, P, RejectKind.ACCOUNT),
    (
        403,
        "Request to https://clob blocked by Cloudflare with status 403",
        None,
        P,
        RejectKind.AUTH,
    ),
    (425, "", None, A, RejectKind.RESTART),
    (
        503,
        "post-only mode: only post-only orders and cancels are allowed",
        "post_only_mode",
        P,
        RejectKind.MARKET_STATE,
    ),
    (503, "Trading is currently disabled", None, P, RejectKind.MARKET_STATE),
    (500, "there are no matching orders", None, U, RejectKind.UNFILLED),
    (500, "the trade contains rounding issues", None, U, RejectKind.UNFILLED),
    (500, "internal error", None, A, RejectKind.SERVER),
    (502, "", None, A, RejectKind.SERVER),
    (429, "Too Many Requests", None, T, RejectKind.RATE_LIMIT),
    (400, "something new", None, P, RejectKind.OTHER),
    # a 200 body that is not a known error is ambiguous (R4): looked up, never rejected
    (None, "something new", None, A, RejectKind.OTHER),
    (None, "Unknown order failure", "unknown", A, RejectKind.OTHER),  # SDK: success false …
    (None, "Unknown order failure", "unmatched", A, RejectKind.OTHER),  # … or status unmatched
    (None, FAK_UNMATCHED, "unmatched", U, RejectKind.UNFILLED),  # the known string decides
    (None, "not enough balance / allowance", "not_enough_balance", P, RejectKind.BALANCE),
    (None, "", "fok_not_filled", U, RejectKind.UNFILLED),
]


@pytest.mark.parametrize(("status", "message", "code", "error_class", "kind"), TABLE)
def test_classification_table(
    status: int | None, message: str, code: str | None, error_class: ErrorClass, kind: RejectKind
) -> None:
    verdict = classify(status, message, code)
    assert (verdict.error_class, verdict.kind) == (error_class, kind)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (None, True),
        (429, True),
        (425, True),
        (500, True),
        (503, True),
        (400, False),
        (404, False),
        (401, False),
    ],
)
def test_idempotent_reads_retry_only_transient_statuses(status: int | None, retry: bool) -> None:
    assert is_transient_read(status) is retry
