"""`/positions` and `/value` decoding on real recorded payloads, staleness, module purity."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import polycopy.ingest.decode
import polycopy.ingest.staleness
from polycopy.domain.events import LeaderTrade, Side
from polycopy.ingest.decode import DecodeError, decode_positions, decode_value, rows_of
from polycopy.ingest.staleness import is_stale

from .conftest import load_rows, shared

KCH = "0x6a72f61820b26b1fe4d956e17b6dc2a1ea3033ee"


def test_positions_sum_open_positions_only() -> None:
    view = decode_positions(load_rows("positions/jm709__pscanner__positions.json"), KCH)
    # five rows: two open (0.9145, 0.525), one won (curPrice 1), two lost (curPrice 0)
    assert view.rows == 5
    assert view.value == Decimal("248552.0464") + Decimal("126599.1823")
    assert len(view.positions) == 2
    assert sum(view.positions.values()) == Decimal("271790.1") + Decimal("241141.2997")


def test_positions_v2_shape() -> None:
    rows = load_rows("positions/Polymarket__py-sdk__data_v2_positions.json")
    wallet = str(rows[0]["proxy_wallet"])
    view = decode_positions(rows, wallet)
    assert view.value > 0
    assert all(isinstance(v, Decimal) for v in view.positions.values())


def test_resolved_only_wallet_has_zero_exposure() -> None:
    rows = load_rows("positions/edulabrador__polymarket-smart-money__positions.json")
    view = decode_positions(rows, "0x09b428f7c2b469786286214aa5c90dd9015f7320")
    assert view.value == 0
    assert view.positions == {}


@pytest.mark.parametrize(
    "row",
    [
        {"curPrice": "0.5", "currentValue": "1", "size": "2"},  # no asset
        {"asset": "1", "curPrice": "NaN", "currentValue": "1", "size": "2"},
        {"asset": "1", "curPrice": "0.5", "currentValue": "-1", "size": "2"},
        {"asset": "1", "curPrice": "0.5", "size": "2"},
        {"asset": "1", "curPrice": "0.5", "currentValue": "1", "size": "2",
         "proxyWallet": "0x" + "1" * 40},
        "not a row",
    ],
)  # fmt: skip
def test_malformed_positions_fail_the_whole_snapshot(row: Any) -> None:
    with pytest.raises(DecodeError):
        decode_positions([row], KCH)


def test_value_shapes() -> None:
    path = shared("positions/Polymarket__py-sdk__data_v2_value.json")
    recorded = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    wallet = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
    assert decode_value({"data": recorded}, wallet) == Decimal("684953.8942")
    assert decode_value([{"user": KCH, "value": Decimal("12.5")}], KCH) == Decimal("12.5")
    assert decode_value([], KCH) == 0
    assert decode_value({"data": {"proxy_wallet": KCH, "value": 3}}, KCH) == 3
    for bad in ([{"user": KCH}], [{"user": KCH, "value": "-1"}], "x", [{}, {}]):
        with pytest.raises(DecodeError):
            decode_value(bad, KCH)
    with pytest.raises(DecodeError):
        decode_value([{"user": "0x" + "2" * 40, "value": 1}], KCH)


def test_rows_of_envelopes() -> None:
    assert rows_of([1]) == [1]
    assert rows_of({"data": [2]}) == [2]
    assert rows_of({"data": None}) == []
    with pytest.raises(DecodeError):
        rows_of({"error": "bad"})


def _trade(side: Side, at: datetime) -> LeaderTrade:
    return LeaderTrade(
        leader="0x" + "a" * 40,
        asset="1",
        condition_id="",
        side=side,
        price=Decimal("0.5"),
        size=Decimal("10"),
        timestamp=at,
        tx_hash="0x" + "b" * 64,
    )


def test_is_stale_buys_only() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = now - timedelta(seconds=61)
    fresh = now - timedelta(seconds=59)
    assert is_stale(_trade(Side.BUY, old), now, Decimal("60"))
    assert not is_stale(_trade(Side.BUY, fresh), now, 60)
    assert not is_stale(_trade(Side.SELL, old - timedelta(days=3)), now, 60)


FORBIDDEN = {"aiohttp", "websockets", "structlog", "tenacity", "asyncio", "time", "random", "os"}


@pytest.mark.parametrize("module", [polycopy.ingest.decode, polycopy.ingest.staleness])
def test_pure_modules_import_no_io(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
