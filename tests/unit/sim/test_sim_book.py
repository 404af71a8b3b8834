"""Books: best-last on the wire, walks within a limit, FOK completeness, moves and re-ticks."""

from __future__ import annotations

from decimal import Decimal

from polycopy.sim.book import Book

D = Decimal


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Book:
    b = Book("1", "0x" + "ab" * 32, D("0.01"), 10, 0)
    b.replace([(D(p), D(s)) for p, s in bids], [(D(p), D(s)) for p, s in asks], 0)
    return b


def test_wire_levels_are_best_last_and_strings() -> None:
    b = book([("0.48", "5"), ("0.49", "7")], [("0.52", "3"), ("0.51", "2")])
    wire = b.wire(min_order_size=D(5), neg_risk=False)
    assert wire["bids"] == [{"price": "0.48", "size": "5"}, {"price": "0.49", "size": "7"}]
    assert wire["asks"] == [{"price": "0.52", "size": "3"}, {"price": "0.51", "size": "2"}]
    assert isinstance(wire["hash"], str)
    assert len(wire["hash"]) == 40


def test_buy_walk_spends_within_the_limit() -> None:
    b = book([], [("0.50", "10"), ("0.51", "10"), ("0.53", "100")])
    walk = b.walk_asks(D("0.52"), D("20"))
    assert [(t.price, t.shares) for t in walk.takes] == [(D("0.50"), D(10)), (D("0.51"), D(10))]
    assert walk.cash == D("10.1")
    assert walk.complete is False
    full = b.walk_asks(D("0.52"), D("7.55"))
    assert full.complete is True
    assert full.shares == D(10) + D("5")
    b.consume("BUY", walk.takes, 1)
    assert b.best_ask() == D("0.53")


def test_sell_walk_and_caps() -> None:
    b = book([("0.49", "10"), ("0.48", "20")], [])
    walk = b.walk_bids(D("0.48"), D(15))
    assert (walk.shares, walk.cash, walk.complete) == (D(15), D("7.3"), True)
    capped = b.walk_bids(D("0.48"), D(15), max_shares=D("3.2"))
    assert (capped.shares, capped.complete) == (D("3.2"), False)
    assert b.walk_bids(D("0.50"), D(15)).takes == ()


def test_leader_trades_move_an_unpinned_book_and_retick_merges_levels() -> None:
    b = Book("7", "0x" + "cd" * 32, D("0.01"), 5, 0)
    b.seed(D("0.40"), 0)
    assert (b.best_bid(), b.best_ask()) == (D("0.39"), D("0.41"))
    assert b.follow_trade("BUY", D("0.55"), D(1), 1) is True
    assert b.best_ask() == D("0.55")
    assert b.best_bid() == D("0.54")
    b.retick(D("0.1"), 2)
    assert all(level.price % D("0.1") == 0 for level in b.bids + b.asks)
    pinned = book([("0.30", "1")], [("0.70", "1")])
    assert pinned.follow_trade("BUY", D("0.55"), D(1), 1) is False
    assert pinned.best_ask() == D("0.70")
