"""RTDS frame decoding: the wallet pre-filter, strict payload decoding, nothing escapes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polycopy.domain.events import Side
from polycopy.ingest.decode import (
    KEEPALIVE,
    OTHER_MESSAGE,
    OTHER_WALLET,
    DecodeError,
    FrameRejected,
    FrameSkip,
    OccurrenceCounter,
    decode_rtds_frame,
    decode_trade,
    frame_wallet,
    loads,
)

from .conftest import WHALE, rtds_frame

LEADERS = frozenset({WHALE})
TX = "0x" + "ab" * 32


def trade_row(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "proxyWallet": WHALE,
        "timestamp": 1787102287,
        "conditionId": "0x" + "1d" * 32,
        "size": Decimal("2.7027"),
        "transactionHash": TX,
        "price": Decimal("0.26"),
        "asset": "72551024098258542594534683942523606143014690620243023298497729957846870197074",
        "side": "BUY",
        "outcomeIndex": 1,
        "outcome": "No",
    }
    row.update(over)
    return row


def test_real_rows_as_frames_decode_to_the_same_identity_as_rest(
    whale_rows: list[dict[str, Any]],
) -> None:
    trades = [r for r in whale_rows if r["type"] == "TRADE"][:200]
    for row in trades:
        for kind in ("trades", "orders_matched"):
            live = decode_rtds_frame(rtds_frame(row, kind), LEADERS)
            assert not isinstance(live, FrameSkip)
            rest = decode_trade(row, source="rest")
            assert live.trade_id == rest.trade_id
            assert live.source == f"rtds:{kind}"
            assert live.price == Decimal(str(row["price"]))
            assert isinstance(live.size, Decimal)


def test_other_wallets_are_skipped_before_parsing(whale_rows: list[dict[str, Any]]) -> None:
    frame = rtds_frame(whale_rows[0])
    assert frame_wallet(frame) == WHALE
    assert decode_rtds_frame(frame, frozenset({"0x" + "11" * 20})) is OTHER_WALLET
    # even a broken frame of another wallet costs nothing and is not ours to reject
    broken = frame.replace('"side": "BUY"', '"side": "HOLD"')
    assert decode_rtds_frame(broken, frozenset({"0x" + "11" * 20})) is OTHER_WALLET


def test_checksum_cased_wallet_matches_lower_case_leader() -> None:
    frame = json.dumps(
        {
            "topic": "activity",
            "type": "trades",
            "payload": {**trade_row(), "proxyWallet": WHALE.upper().replace("0X", "0x")},
        },
        default=str,
    )
    result = decode_rtds_frame(frame, LEADERS)
    assert not isinstance(result, FrameSkip)
    assert result.leader == WHALE


@pytest.mark.parametrize("raw", ["", "PONG", "pong", " ", b""])
def test_keepalive_frames(raw: str | bytes) -> None:
    assert decode_rtds_frame(raw, LEADERS) is KEEPALIVE


@pytest.mark.parametrize(
    "message",
    [
        {"topic": "crypto_prices", "type": "update", "payload": {}},
        {"topic": "activity", "type": "comment_created", "payload": {}},
        {"action": "subscribed"},
    ],
)
def test_other_messages_are_skipped(message: dict[str, Any]) -> None:
    assert decode_rtds_frame(json.dumps(message), LEADERS) is OTHER_MESSAGE


def _frame(payload: dict[str, Any]) -> str:
    return json.dumps({"topic": "activity", "type": "trades", "payload": payload}, default=str)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "json"),
        ("[1, 2]", "json"),
        ("garbage", "json"),
        (b"\xff\xfe", "json"),
        ('{"topic": "activity", "type": "trades"}', "envelope"),
        ('{"topic": "activity", "type": "trades", "payload": [1]}', "envelope"),
        (_frame(trade_row(side="HOLD")), "side"),
        (_frame(trade_row(price="1.5")), "price"),
        (_frame(trade_row(size="-3")), "size"),
        (_frame({k: v for k, v in trade_row().items() if k != "transactionHash"}),
         "transactionHash"),
        (_frame({k: v for k, v in trade_row().items() if k != "asset"}), "asset"),
        (_frame({k: v for k, v in trade_row().items() if k != "timestamp"}), "timestamp"),
        (_frame(trade_row(outcomeIndex="1e999999")), "outcomeIndex"),
        ('{"topic":"activity","type":"trades","payload":{"proxyWallet":"'
         + WHALE + '","price":NaN}}', "json"),
        ('{"topic":"activity","type":"trades","payload":{"proxyWallet":"'
         + WHALE + '","price":Infinity}}', "json"),
        ("[" * 100_000, "json"),
    ],
)  # fmt: skip
def test_bad_frames_are_rejected_with_a_reason(raw: str | bytes, reason: str) -> None:
    with pytest.raises(FrameRejected) as caught:
        decode_rtds_frame(raw, LEADERS)
    assert caught.value.reason == reason


def test_nan_price_in_a_string_is_rejected() -> None:
    with pytest.raises(FrameRejected) as caught:
        decode_rtds_frame(_frame(trade_row(price="NaN")), LEADERS)
    assert caught.value.reason == "price"


def test_rtds_trades_always_carry_occurrence_zero() -> None:
    frame = _frame(trade_row())
    first = decode_rtds_frame(frame, LEADERS)
    second = decode_rtds_frame(frame, LEADERS)
    assert not isinstance(first, FrameSkip)
    assert not isinstance(second, FrameSkip)
    assert first.occurrence == second.occurrence == 0
    assert first.trade_id == second.trade_id


def test_occurrence_counter_numbers_identical_fills_and_normalises_numbers() -> None:
    counter = OccurrenceCounter()
    a = counter.assign(decode_trade(trade_row(price=Decimal("0.26"))))
    b = counter.assign(decode_trade(trade_row(price=Decimal("0.260"))))
    c = counter.assign(decode_trade(trade_row(size=Decimal("5"))))
    assert (a.occurrence, b.occurrence, c.occurrence) == (0, 1, 0)
    assert len({a.trade_id, b.trade_id, c.trade_id}) == 3


def test_loads_keeps_decimals_and_refuses_constants() -> None:
    assert loads('{"p": 0.1}') == {"p": Decimal("0.1")}
    with pytest.raises(DecodeError):
        loads('{"p": -Infinity}')


def test_decoded_side_and_wallet() -> None:
    result = decode_rtds_frame(_frame(trade_row(side="SELL")), LEADERS)
    assert not isinstance(result, FrameSkip)
    assert result.side is Side.SELL
    assert result.leader == WHALE


# --- fuzz: nothing but FrameRejected escapes ------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["BUY", "SELL", WHALE, TX, "0.5", "NaN", "1e999", "-1", "activity"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "proxyWallet",
                    "side",
                    "price",
                    "size",
                    "asset",
                    "timestamp",
                    "transactionHash",
                    "outcomeIndex",
                    "conditionId",
                    "type",
                    "topic",
                    "payload",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=8,
)


def _classify(raw: str | bytes) -> None:
    try:
        result = decode_rtds_frame(raw, LEADERS)
    except FrameRejected as exc:
        reason = exc.reason
        assert reason.isidentifier()
        return
    if not isinstance(result, FrameSkip):
        assert result.leader in LEADERS
        assert 0 < result.price < 1
        assert result.size > 0


@settings(max_examples=300, deadline=None)
@given(payload=json_values, kind=st.sampled_from(["trades", "orders_matched", "x", 3]))
def test_fuzz_payloads(payload: Any, kind: Any) -> None:
    _classify(json.dumps({"topic": "activity", "type": kind, "payload": payload}))


@settings(max_examples=300, deadline=None)
@given(row=st.fixed_dictionaries({}, optional=dict.fromkeys(trade_row(), json_values)))
def test_fuzz_leader_payload_fields(row: dict[str, Any]) -> None:
    _classify(_frame({**row, "proxyWallet": WHALE}))


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps))
def test_fuzz_raw_text(raw: str | bytes) -> None:
    _classify(raw)
