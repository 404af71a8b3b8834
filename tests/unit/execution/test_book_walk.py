"""The paper fill: books are best-LAST on the wire; walks stay within the bound; FAK keeps
partial fills, FOK is all-or-nothing; fees per reference §3.5."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from exec_helpers import make_plan
from hypothesis import given
from hypothesis import strategies as st

from polycopy.domain.events import Side
from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import FillStatus
from polycopy.execution.book_walk import BookError, FeeSchedule, parse_book, walk, walk_plan

SHARED_BOOK = (
    Path(__file__).resolve().parents[4] / "shared/data/books/ra1nty__polymarket-cli__book.json"
)


def book(asks: list[tuple[str, str]], bids: list[tuple[str, str]] = ()) -> dict[str, object]:  # type: ignore[assignment]
    return {
        "market": "0xabc",
        "asset_id": "1",
        "timestamp": "1757908892351",
        # worst first, best LAST — as the venue sends them
        "asks": [{"price": p, "size": s} for p, s in sorted(asks, reverse=True)],
        "bids": [{"price": p, "size": s} for p, s in sorted(bids)],
        "tick_size": "0.01",
        "min_order_size": "5",
        "neg_risk": False,
    }


def test_parse_sorts_best_first_whatever_the_wire_order() -> None:
    parsed = parse_book(
        book([("0.54", "10"), ("0.52", "25"), ("0.53", "60")], [("0.48", "30"), ("0.50", "15")])
    )
    assert [level.price for level in parsed.asks] == [
        Decimal("0.52"),
        Decimal("0.53"),
        Decimal("0.54"),
    ]
    assert parsed.best_bid == Decimal("0.50")
    assert parsed.best_ask == Decimal("0.52")
    assert parsed.tick_size == Decimal("0.01")
    assert parsed.timestamp_ms == 1757908892351


def test_real_recorded_book_parses() -> None:
    payload = json.loads(SHARED_BOOK.read_text())
    parsed = parse_book(payload)
    assert parsed.bids == ()
    assert parsed.asks[0].price == min(Decimal(a["price"]) for a in payload["asks"])
    assert parsed.tick_size == Decimal("0.001")


def test_malformed_books_are_refused() -> None:
    with pytest.raises(BookError):
        parse_book({"asks": []})
    with pytest.raises(BookError):
        parse_book({"asset_id": "1", "asks": [{"price": "1.5", "size": "1"}]})
    with pytest.raises(BookError):
        parse_book({"asset_id": "1", "asks": [{"price": "NaN", "size": "1"}]})


def test_buy_larger_than_top_of_book_fills_several_levels_at_the_vwap() -> None:
    parsed = parse_book(book([("0.50", "10"), ("0.51", "10"), ("0.52", "100"), ("0.60", "100")]))
    result = walk(parsed, Side.BUY, limit=Decimal("0.52"), notional=Decimal("20"))
    assert result.complete
    assert [f.price for f in result.fills] == [Decimal("0.50"), Decimal("0.51"), Decimal("0.52")]
    spent = Decimal("0.50") * 10 + Decimal("0.51") * 10
    third = ((Decimal("20") - spent) / Decimal("0.52")).quantize(Decimal("0.000001"), "ROUND_FLOOR")
    assert result.shares == 20 + third
    assert result.notional == spent + third * Decimal("0.52")
    assert result.vwap is not None
    assert Decimal("0.50") < result.vwap <= Decimal("0.52")
    execution = result.execution()
    assert execution.status is FillStatus.FILLED
    assert execution.price == result.vwap


def test_fak_partial_fill_stops_at_the_bound() -> None:
    parsed = parse_book(book([("0.50", "10"), ("0.55", "100")]))
    result = walk(parsed, Side.BUY, limit=Decimal("0.52"), notional=Decimal("20"))
    assert not result.complete
    assert result.shares == 10
    assert result.reason is Reason.EXEC_PARTIAL_FILL
    assert result.execution().status is FillStatus.PARTIAL


def test_fok_is_all_or_nothing() -> None:
    parsed = parse_book(book([("0.50", "10"), ("0.55", "100")]))
    killed = walk(parsed, Side.BUY, limit=Decimal("0.52"), notional=Decimal("20"), fok=True)
    assert killed.fills == ()
    assert killed.reason is Reason.EXEC_SLIPPAGE_LIMIT
    filled = walk(parsed, Side.BUY, limit=Decimal("0.52"), notional=Decimal("4"), fok=True)
    assert filled.complete
    assert filled.shares == 8
    thin = parse_book(book([("0.50", "1")]))
    empty = walk(thin, Side.BUY, limit=Decimal("0.90"), notional=Decimal("20"), fok=True)
    assert empty.fills == ()
    assert empty.reason is Reason.EXEC_NO_LIQUIDITY


def test_no_liquidity_versus_slippage() -> None:
    assert (
        walk(parse_book(book([])), Side.BUY, limit=Decimal("0.5"), notional=Decimal("5")).reason
        is Reason.EXEC_NO_LIQUIDITY
    )
    far = walk(
        parse_book(book([("0.60", "100")])), Side.BUY, limit=Decimal("0.5"), notional=Decimal("5")
    )
    assert far.reason is Reason.EXEC_SLIPPAGE_LIMIT
    assert far.execution().status is FillStatus.NONE


def test_sell_walks_bids_down_to_the_floor() -> None:
    parsed = parse_book(book([], [("0.40", "50"), ("0.47", "10"), ("0.48", "5")]))
    result = walk(parsed, Side.SELL, limit=Decimal("0.45"), shares=Decimal("20"))
    assert result.shares == 15
    assert not result.complete
    assert result.notional == Decimal("0.48") * 5 + Decimal("0.47") * 10


def test_fee_formula_matches_the_reference_example() -> None:
    fees = FeeSchedule(rate=Decimal("0.07"), exponent=Decimal(1))
    assert fees.fee(Decimal(25), Decimal("0.64")) == Decimal("0.4032")
    parsed = parse_book(book([("0.64", "25")]))
    result = walk(parsed, Side.BUY, limit=Decimal("0.64"), notional=Decimal("16"), fees=fees)
    assert result.shares == 25
    assert result.fee == Decimal("0.4032")
    assert result.execution().fee == Decimal("0.4032")


def test_walk_plan_applies_the_venue_minimum_and_the_current_tick() -> None:
    parsed = parse_book(book([("0.50", "100")]))
    tiny = make_plan(notional=Decimal("0.99"))
    assert walk_plan(tiny, parsed, fok=False) is Reason.MARKET_MIN_ORDER_SIZE
    plan = make_plan(notional=Decimal("10"), reference=Decimal("0.495"), tick=Decimal("0.001"))
    result = walk_plan(
        plan, parsed, fok=False, tick=Decimal("0.01")
    )  # tick coarsened: 0.515 → 0.51
    assert not isinstance(result, Reason)
    assert result.complete


levels = st.lists(st.tuples(st.integers(1, 999), st.integers(1, 100_000)), min_size=0, max_size=12)


@given(levels, st.integers(1, 999), st.integers(100, 1_000_000), st.booleans())
def test_buy_walk_never_pays_above_the_bound(
    raw: list[tuple[int, int]], limit_milli: int, cents: int, fok: bool
) -> None:
    parsed = parse_book(book([(str(Decimal(p) / 1000), str(Decimal(s) / 100)) for p, s in raw]))
    limit = Decimal(limit_milli) / 1000
    spend = Decimal(cents) / 100
    result = walk(parsed, Side.BUY, limit=limit, notional=spend, fok=fok)
    assert all(fill.price <= limit for fill in result.fills)
    assert result.notional <= spend
    if result.fills:
        assert result.vwap is not None
        assert result.vwap <= limit
        assert [f.price for f in result.fills] == sorted(f.price for f in result.fills)
    if fok:
        assert result.complete or not result.fills


@given(levels, st.integers(1, 999), st.integers(1, 1_000_000), st.booleans())
def test_sell_walk_never_sells_below_the_bound(
    raw: list[tuple[int, int]], limit_milli: int, centishares: int, fok: bool
) -> None:
    parsed = parse_book(book([], [(str(Decimal(p) / 1000), str(Decimal(s) / 100)) for p, s in raw]))
    limit = Decimal(limit_milli) / 1000
    shares = Decimal(centishares) / 100
    result = walk(parsed, Side.SELL, limit=limit, shares=shares, fok=fok)
    assert all(fill.price >= limit for fill in result.fills)
    assert result.shares <= shares
