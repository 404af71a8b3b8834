"""Bounds on what strict decoding accepts (absurd magnitudes, timestamps far ahead or in
milliseconds) and one identity per fill whichever feed rendered its numbers — for RTDS
frames, REST rows and tapes alike, since they share `decode.py`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from polycopy.ingest.decode import (
    FUTURE_MARGIN_S,
    DecodeError,
    FrameRejected,
    FrameSkip,
    OccurrenceCounter,
    decode_positions,
    decode_rtds_frame,
    decode_trade,
    decode_value,
    epoch_seconds_of,
    loads,
    row_epoch_s,
)
from polycopy.tapes import TapeError, read_positions, read_tape

from .conftest import WHALE

LEADERS = frozenset({WHALE})
NOW = 1_787_102_300
TX = "0x" + "b6" * 32
ASSET = "72551024098258542594534683942523606143014690620243023298497729957846870197074"


def row_text(price: str = "0.26", size: str = "2.7027", timestamp: str = "1787102287") -> str:
    """An `/activity` row as the wire has it: numbers are JSON number text, not strings."""
    return (
        '{"proxyWallet":"' + WHALE + '","timestamp":' + timestamp + ',"conditionId":"0x'
        + "1d" * 32 + '","type":"TRADE","size":' + size + ',"usdcSize":0.702702,'
        '"transactionHash":"' + TX + '","price":' + price + ',"asset":"' + ASSET + '",'
        '"side":"BUY","outcomeIndex":1,"outcome":"No"}'
    )  # fmt: skip


def frame_text(price: str = "0.26", size: str = "2.7027", timestamp: str = "1787102287") -> str:
    return (
        '{"connection_id":"x","topic":"activity","type":"trades","timestamp":1787102287053,'
        '"payload":' + row_text(price, size, timestamp) + "}"
    )


ABSURD = [
    ("1e999999999", "0.26", "size"),  # the audit's reproduction: 14 s and > 1 GB to print
    ("2.7027", "1e-999999999", "price"),
    ("0E+999999999", "0.26", "size"),
    ("0E-999999999", "0.26", "size"),
    ("2000000000", "0.26", "size"),  # 2 × 10^9 shares in one fill
    ("400000000", "0.5", "size"),  # 2 × 10^8 USDC in one fill
    ("1." + "1" * 40, "0.26", "size"),  # 40 decimal places
    ("2.7027", "0." + "3" * 40, "price"),
]


@pytest.mark.parametrize(("size", "price", "reason"), ABSURD)
def test_absurd_numbers_in_an_rtds_frame_are_rejected(size: str, price: str, reason: str) -> None:
    with pytest.raises(FrameRejected) as caught:
        decode_rtds_frame(frame_text(price=price, size=size), LEADERS, NOW)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("size", "price", "reason"), ABSURD)
def test_absurd_numbers_in_a_rest_row_are_rejected(size: str, price: str, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_trade(loads(row_text(price=price, size=size)), source="rest", now=NOW)
    assert caught.value.reason == reason


def test_absurd_numbers_in_a_tape_are_counted_as_malformed(tmp_path: Path) -> None:
    tape = tmp_path / "tape.json"
    rows = [row_text(price=p, size=s) for s, p, _ in ABSURD] + [row_text()]
    tape.write_text("[\n" + ",\n".join(rows) + "\n]\n", encoding="utf-8")
    read = read_tape(tape)
    assert read.stats.malformed == len(ABSURD)
    assert [str(t.size) for t in read.trades] == ["2.7027"]
    assert all("range" in p.message or "places" in p.message for p in read.stats.problems)


def test_absurd_position_values_fail_the_snapshot(tmp_path: Path) -> None:
    row = {"proxyWallet": WHALE, "asset": ASSET, "curPrice": Decimal("0.5"), "size": Decimal(3)}
    with pytest.raises(DecodeError, match="currentValue: out of range"):
        decode_positions([{**row, "currentValue": Decimal("1e999999999")}], WHALE)
    with pytest.raises(DecodeError, match="value: out of range"):
        decode_value([{"user": WHALE, "value": Decimal("1e999999999")}], WHALE)
    snapshot = tmp_path / "positions.json"
    snapshot.write_text(
        '[{"proxyWallet":"' + WHALE + '","asset":"1","curPrice":0.5,"size":3,'
        '"currentValue":1e999999999}]',
        encoding="utf-8",
    )
    with pytest.raises(TapeError, match="currentValue: out of range"):
        read_positions(snapshot)


@pytest.mark.parametrize(
    ("timestamp", "seconds"),
    [
        ("1787102287", 1787102287),
        ("1787102287053", 1787102287),  # milliseconds, as the RTDS envelope has them
        ('"1787102287"', 1787102287),
        (str(NOW + FUTURE_MARGIN_S), NOW + FUTURE_MARGIN_S),  # as far ahead as is allowed
    ],
)
def test_timestamps_in_seconds_or_milliseconds(timestamp: str, seconds: int) -> None:
    trade = decode_trade(loads(row_text(timestamp=timestamp)), now=NOW)
    assert int(trade.timestamp.timestamp()) == seconds
    assert row_epoch_s(loads(row_text(timestamp=timestamp)), NOW) == seconds


@pytest.mark.parametrize(
    "timestamp",
    [
        "9999999999",  # the audit's poison row: year 2286
        str(NOW + FUTURE_MARGIN_S + 1),
        str((NOW + 3600) * 1000),  # milliseconds, an hour ahead
        "99999999999999",  # 14 digits: neither seconds nor milliseconds
        "1e999999999",
        "-5",
        "0",
    ],
)
def test_timestamps_far_ahead_or_absurd_are_rejected(timestamp: str) -> None:
    row = loads(row_text(timestamp=timestamp))
    with pytest.raises(DecodeError) as caught:
        decode_trade(row, now=NOW)
    assert caught.value.reason == "timestamp"
    assert row_epoch_s(row, NOW) is None
    with pytest.raises(FrameRejected):
        decode_rtds_frame(frame_text(timestamp=timestamp), LEADERS, NOW)


def test_without_a_clock_only_the_magnitude_is_bounded() -> None:
    assert int(epoch_seconds_of(9_999_999_999)) == 9_999_999_999  # tapes: no clock
    with pytest.raises(DecodeError):
        epoch_seconds_of(Decimal("1e999999999"))


# --- one identity per fill ------------------------------------------------------------------
# The same fill as the two feeds render it: RTDS sends the price as a float of the order's
# price, `/activity` derives it from the settled amounts and its sizes carry float noise
# (real /activity values: 0.12000001318105698, 0.060000003760011265, 62.013960000000004).
RENDERINGS = [
    (("0.12", "62.01396"), ("0.12000001318105698", "62.013960000000004")),
    (("0.06", "45.72032"), ("0.060000003760011265", "45.720319999999994")),
    (("0.06", "2.5"), ("0.059999562398348784", "2.5")),
    (("0.292", "126.69"), ("0.29199778988081143", "126.69")),  # a fill across two levels
]


@pytest.mark.parametrize(("rtds", "rest"), RENDERINGS)
def test_one_fill_rendered_by_both_feeds_has_one_identity(
    rtds: tuple[str, str], rest: tuple[str, str], tmp_path: Path
) -> None:
    live = decode_rtds_frame(frame_text(*rtds), LEADERS, NOW)
    assert not isinstance(live, FrameSkip)
    polled = OccurrenceCounter().assign(decode_trade(loads(row_text(*rest)), now=NOW))
    assert live.trade_id == polled.trade_id
    assert polled.price == Decimal(rest[0])  # the trade keeps what the wire said
    assert polled.size == Decimal(rest[1])

    tape = tmp_path / "tape.jsonl"  # replay reads the same row through the same function
    tape.write_text(row_text(*rest) + "\n", encoding="utf-8")
    assert [t.trade_id for t in read_tape(tape).trades] == [live.trade_id]


def test_canonical_identity_keeps_distinct_fills_apart() -> None:
    def trade_id(price: str, size: str) -> str:
        return decode_trade(loads(row_text(price=price, size=size)), now=NOW).trade_id

    assert trade_id("0.26", "2.7027") == trade_id("0.2600", "2.702700")
    assert trade_id("0.26", "2.7027") != trade_id("0.2601", "2.7027")  # another tick
    assert trade_id("0.26", "2.7027") != trade_id("0.26", "2.702701")  # another share unit
    # fills that only differ below the identity's precision are numbered, not merged
    counter = OccurrenceCounter()
    first = counter.assign(decode_trade(loads(row_text(price="0.26000001")), now=NOW))
    second = counter.assign(decode_trade(loads(row_text(price="0.25999999")), now=NOW))
    assert (first.occurrence, second.occurrence) == (0, 1)
    assert first.trade_id != second.trade_id


def test_clean_values_hash_as_before() -> None:
    # grid prices and 6-decimal sizes (the simulator's, most tapes') keep their identity
    from polycopy.domain.events import Side, trade_identity

    trade = decode_trade(json.loads(row_text(), parse_float=Decimal), now=NOW)
    assert trade.trade_id == trade_identity(
        WHALE, TX, ASSET, Side.BUY, Decimal("0.26"), Decimal("2.7027"), 0
    )
