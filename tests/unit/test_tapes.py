"""Decoding leader rows and reading tapes: every format, and bad input that must not abort."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polycopy.domain.events import Side
from polycopy.ingest.decode import DecodeError, NotATrade, OccurrenceCounter, decode_trade
from polycopy.tapes import RowProblem, TapeError, read_positions, read_tape, read_tapes

WALLET = "0x" + "ab" * 20
TX2 = "0x" + "12" * 32
TX = "0x" + "cd" * 32


def row(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "proxyWallet": WALLET,
        "timestamp": 1767556641,
        "conditionId": "0x" + "ef" * 32,
        "type": "TRADE",
        "size": Decimal("22"),
        "usdcSize": Decimal("21.78"),
        "transactionHash": TX,
        "price": Decimal("0.99"),
        "asset": "7569193888527361373004542539606397796548900909995441660423726239146791440889",
        "side": "BUY",
        "outcomeIndex": 0,
        "outcome": "Up",
    }
    base.update(overrides)
    return base


def test_decodes_v1_row_exactly() -> None:
    trade = decode_trade(row(proxyWallet=WALLET.upper().replace("0X", "0x")))
    assert trade.leader == WALLET
    assert trade.side is Side.BUY
    assert trade.price == Decimal("0.99")
    assert trade.size == Decimal("22")
    assert trade.timestamp.timestamp() == 1767556641
    assert trade.outcome_index == 0


def test_decodes_v2_snake_case_row() -> None:
    v2 = {
        "proxy_wallet": WALLET,
        "timestamp": 1788886609,
        "condition_id": "0x" + "01" * 32,
        "type": "TRADE",
        "size": "14.285715",
        "usdc_size": "13.285715",
        "transaction_hash": TX,
        "price": "0.9300000035",
        "token_id": "98255",
        "side": "SELL",
        "outcome_index": 999,
    }
    trade = decode_trade(v2)
    assert trade.side is Side.SELL
    assert trade.price == Decimal("0.9300000035")
    assert trade.outcome_index is None  # 999 = unknown


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": Decimal("1.5")}, "price"),
        ({"price": Decimal("0")}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"size": Decimal("-3")}, "size"),
        ({"size": None}, "size"),
        ({"side": "HOLD"}, "side"),
        ({"side": ""}, "side"),
        ({"asset": ""}, "asset"),
        ({"asset": "abc"}, "asset"),
        ({"transactionHash": "0x12"}, "transactionHash"),
        ({"proxyWallet": "bob"}, "proxyWallet"),
        ({"timestamp": None}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"price": True}, "price"),
    ],
)
def test_rejects_bad_fields_naming_them(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(DecodeError, match=field):
        decode_trade(row(**overrides))


def test_missing_fields_are_named() -> None:
    for key in ("proxyWallet", "transactionHash", "price", "size", "side", "asset"):
        broken = row()
        del broken[key]
        with pytest.raises(DecodeError):
            decode_trade(broken)


def test_other_activity_types_are_not_errors() -> None:
    with pytest.raises(NotATrade) as info:
        decode_trade(row(type="REDEEM", side="", price=0))
    assert info.value.kind == "REDEEM"


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(list(row())),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=12),
            st.decimals(allow_nan=True, allow_infinity=True),
        ),
    )
)
def test_fuzzed_rows_raise_only_documented_errors(fuzz: dict[str, object]) -> None:
    try:
        trade = decode_trade({**row(), **fuzz})
    except (DecodeError, NotATrade):
        return
    assert 0 < trade.price < 1
    assert trade.size > 0


def test_identical_fills_in_one_tx_get_distinct_identities() -> None:
    counter = OccurrenceCounter()
    first = counter.assign(decode_trade(row()))
    second = counter.assign(decode_trade(row()))
    assert (first.occurrence, second.occurrence) == (0, 1)
    assert first.trade_id != second.trade_id
    again = OccurrenceCounter().assign(decode_trade(row()))
    assert again.trade_id == first.trade_id  # same fill from another source: same identity


# --- files ----------------------------------------------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _json_rows(*rows: dict[str, object]) -> str:
    return json.dumps(
        [{k: (float(v) if isinstance(v, Decimal) else v) for k, v in r.items()} for r in rows],
        indent=1,
    )


def test_reads_bare_array_envelope_jsonl_and_csv(tmp_path: Path) -> None:
    r1, r2 = row(timestamp=100), row(timestamp=200, side="SELL", transactionHash="0x" + "11" * 32)
    bare = _write(tmp_path / "a.json", _json_rows(r1, r2))
    envelope = _write(tmp_path / "b.json", json.dumps({"data": json.loads(_json_rows(r1, r2))}))
    jsonl = _write(
        tmp_path / "c.jsonl", "\n".join(json.dumps(x) for x in json.loads(_json_rows(r1, r2)))
    )
    header = (
        "timestamp,type,side,proxyWallet,conditionId,asset,outcomeIndex,size,price,transactionHash"
    )
    lines = [header] + [
        f"{r['timestamp']},TRADE,{r['side']},{WALLET},{r['conditionId']},{r['asset']},0,22,0.99,{r['transactionHash']}"
        for r in (r1, r2)
    ]
    csv = _write(tmp_path / "d.csv", "\n".join(lines) + "\n")
    for path in (bare, envelope, jsonl, csv):
        tape = read_tape(path)
        assert [t.side for t in tape.trades] == [Side.BUY, Side.SELL], path
        assert tape.stats.malformed == 0


def test_newest_first_files_are_replayed_oldest_first(tmp_path: Path) -> None:
    rows = [row(timestamp=300 - i, transactionHash="0x" + f"{i:064x}") for i in range(3)]
    tape = read_tape(_write(tmp_path / "desc.json", _json_rows(*rows)))
    assert [int(t.timestamp.timestamp()) for t in tape.trades] == [298, 299, 300]


def test_malformed_rows_are_counted_with_file_and_line(tmp_path: Path) -> None:
    text = _json_rows(row(timestamp=1), row(timestamp=2, price=1.5), row(timestamp=3))
    path = _write(tmp_path / "bad.json", text)
    tape = read_tape(path)
    assert len(tape.trades) == 2
    assert tape.stats.malformed == 1
    problem = tape.stats.problems[0]
    assert problem.path == str(path)
    assert problem.line > 1
    assert "price" in problem.message


def test_truncated_json_keeps_rows_before_the_damage(tmp_path: Path) -> None:
    text = _json_rows(row(timestamp=1), row(timestamp=2, transactionHash="0x" + "22" * 32))
    path = _write(tmp_path / "cut.json", text[: len(text) - 40])
    tape = read_tape(path)
    assert len(tape.trades) == 1
    assert tape.stats.malformed == 1
    assert "not valid JSON" in tape.stats.problems[0].message


def test_a_damaged_row_in_the_middle_costs_that_row_only(tmp_path: Path) -> None:
    rows = [row(timestamp=t, transactionHash=f"0x{t:064x}") for t in (1, 2, 3, 4)]
    lines = _json_rows(*rows).split("\n")
    cut = next(i for i, line in enumerate(lines) if '"timestamp": 2' in line)
    del lines[cut]  # row 2 loses a field separator's worth of text: `"timestamp": 2,` gone
    lines[cut - 1] = lines[cut - 1].rstrip(",") + ' "oops"'  # and becomes invalid JSON
    tape = read_tape(_write(tmp_path / "damaged.json", "\n".join(lines)))
    assert sorted(int(t.timestamp.timestamp()) for t in tape.trades) == [1, 3, 4]
    assert tape.stats.malformed == 1
    assert "not valid JSON" in tape.stats.problems[0].message


def test_only_the_envelopes_own_data_key_holds_the_rows(tmp_path: Path) -> None:
    rows = json.loads(_json_rows(row(timestamp=5), row(timestamp=6, transactionHash=TX2)))
    text = json.dumps({"meta": {"data": [], "note": '"data": ['}, "data": rows, "count": 2})
    tape = read_tape(_write(tmp_path / "nested.json", text))
    assert [int(t.timestamp.timestamp()) for t in tape.trades] == [5, 6]
    assert tape.stats.malformed == 0


def test_a_bad_position_row_is_reported_and_the_rest_still_count(tmp_path: Path) -> None:
    good = {"proxyWallet": WALLET, "asset": "1", "size": 10, "currentValue": 5, "curPrice": 0.5}
    bad = {"proxyWallet": WALLET, "asset": "2", "size": 10, "currentValue": "NaN", "curPrice": 0.5}
    path = _write(tmp_path / "p.json", json.dumps([good, bad, {"asset": "3"}], indent=1))
    problems: list[RowProblem] = []
    [snap] = read_positions(path, problems)
    assert snap.exposure == Decimal("5")
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "expected a finite number, got 'NaN'",
        "proxyWallet missing",
    ]
    assert all(str(p).startswith(f"{path}:") for p in problems)
    with pytest.raises(TapeError, match=r"got .NaN."):
        read_positions(path)


def test_bad_csv_and_jsonl_lines_do_not_abort(tmp_path: Path) -> None:
    header = (
        "timestamp,type,side,proxyWallet,conditionId,asset,outcomeIndex,size,price,transactionHash"
    )
    good = f"5,TRADE,BUY,{WALLET},0xc,123,0,10,0.5,{TX}"
    csv = _write(
        tmp_path / "x.csv",
        "\n".join([header, good, "6,TRADE,BUY", f"7,TRADE,BUY,{WALLET},0xc,123,0,10,NaN,{TX}"]),
    )
    tape = read_tape(csv)
    assert len(tape.trades) == 1
    assert tape.stats.malformed == 2
    assert [p.line for p in tape.stats.problems] == [3, 4]
    jsonl = _write(
        tmp_path / "y.jsonl", json.dumps(json.loads(_json_rows(row()))[0]) + "\n{oops\n\n[1]\n"
    )
    tape = read_tape(jsonl)
    assert len(tape.trades) == 1
    assert tape.stats.malformed == 2


def test_unreadable_tape_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TapeError, match="not found"):
        read_tape(tmp_path / "missing.json")


def test_merge_orders_by_time_and_filters_wallets(tmp_path: Path) -> None:
    other = "0x" + "99" * 20
    a = _write(
        tmp_path / "a.json",
        _json_rows(row(timestamp=10), row(timestamp=30, transactionHash="0x" + "31" * 32)),
    )
    b = _write(
        tmp_path / "b.json",
        _json_rows(
            row(timestamp=20, transactionHash="0x" + "21" * 32),
            row(timestamp=25, proxyWallet=other),
        ),
    )
    tape = read_tapes([a, b], leaders=frozenset({WALLET}))
    assert [int(t.timestamp.timestamp()) for t in tape.trades] == [10, 20, 30]
    assert tape.stats.other_wallet == 1


def test_positions_snapshot_counts_open_positions_only(tmp_path: Path) -> None:
    rows = [
        {"proxyWallet": WALLET, "asset": "1", "size": 100, "currentValue": 52, "curPrice": 0.52},
        {"proxyWallet": WALLET, "asset": "2", "size": 50, "currentValue": 0, "curPrice": 0},
        {"proxyWallet": WALLET, "asset": "3", "size": 10, "currentValue": 10, "curPrice": 1},
    ]
    [snap] = read_positions(_write(tmp_path / "p.json", json.dumps(rows)))
    assert snap.exposure == Decimal("52")
    assert snap.positions == {"1": Decimal("100")}


def test_real_positions_files_parse(shared_data: Path) -> None:
    [kch] = read_positions(shared_data / "positions" / "jm709__pscanner__positions.json")
    assert kch.exposure > 0
    [v2] = read_positions(shared_data / "positions" / "Polymarket__py-sdk__data_v2_positions.json")
    assert v2.leader.startswith("0x")
    [deeddit] = read_positions(
        shared_data / "positions" / "edulabrador__polymarket-smart-money__positions.json"
    )
    assert deeddit.exposure == 0  # every position resolved (curPrice 0 or 1)
