"""The durable inbox: one row per identity, cursors that only move forward, pending rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from polycopy.domain.events import LeaderTrade, Side
from polycopy.ingest.inbox import Cursor, Inbox
from polycopy.store.db import Database

LEADER = "0x" + "a1" * 20
OTHER = "0x" + "b2" * 20


def trade(n: int, *, leader: str = LEADER, ts: int = 1_700_000_000, occ: int = 0) -> LeaderTrade:
    return LeaderTrade(
        leader=leader,
        asset=str(1000 + n),
        condition_id="0x" + "c" * 64,
        side=Side.BUY if n % 2 else Side.SELL,
        price=Decimal("0.37"),
        size=Decimal("12.5") + n,
        timestamp=datetime.fromtimestamp(ts + n, tz=UTC),
        tx_hash="0x" + f"{n:064x}",
        occurrence=occ,
        outcome="Yes",
        outcome_index=0,
        source="rest",
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


def open_inbox(path: Path) -> Inbox:
    return Inbox(Database(path), wall=lambda: 1_700_000_500.0)


def test_commit_returns_only_new_trades_and_survives_reopen(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    first = [trade(1), trade(2), trade(2)]
    assert [t.trade_id for t in inbox.commit(first)] == [first[0].trade_id, first[1].trade_id]
    assert inbox.commit([trade(2), trade(3)]) == [trade(3)]
    inbox.db.close()

    reopened = open_inbox(db_path)  # a restart: no in-memory memory of what was seen
    assert reopened.commit([trade(1), trade(3), trade(4)]) == [trade(4)]
    assert reopened.contains(trade(1).trade_id)
    assert not reopened.contains(trade(9).trade_id)


def test_occurrence_makes_a_different_identity(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    assert len(inbox.commit([trade(1, occ=0), trade(1, occ=1)])) == 2


def test_pending_round_trips_exactly_and_oldest_first(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    trades = [trade(5), trade(1), trade(3, leader=OTHER)]
    inbox.commit(trades)
    pending = inbox.pending()
    assert [t.trade_id for t in pending] == [
        trades[1].trade_id,
        trades[2].trade_id,
        trades[0].trade_id,
    ]
    for got in pending:
        want = next(t for t in trades if t.trade_id == got.trade_id)
        assert got == want  # every field, Decimals and times exact
        assert got.timestamp == want.timestamp
    assert [t.leader for t in inbox.pending({OTHER})] == [OTHER]

    assert inbox.mark_processed([trades[1].trade_id, trades[1].trade_id, "unknown"]) == 1
    assert inbox.pending_count() == 2
    inbox.db.close()
    reopened = open_inbox(db_path)
    assert {t.trade_id for t in reopened.pending()} == {trades[0].trade_id, trades[2].trade_id}


def test_mark_processed_joins_the_callers_transaction(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    inbox.commit([trade(1)])

    def decide_then_fail() -> None:
        with inbox.db.transaction():
            inbox.mark_processed([trade(1).trade_id])
            raise RuntimeError("decision not stored")

    with pytest.raises(RuntimeError):
        decide_then_fail()
    assert inbox.pending_count() == 1  # rolled back with the caller's transaction
    with inbox.db.transaction():
        inbox.mark_processed([trade(1).trade_id])
    assert inbox.pending_count() == 0


def test_cursor_starts_now_and_only_moves_forward(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    assert inbox.cursor(LEADER) is None
    cursor = inbox.follow(LEADER, 1_700_000_100)
    assert cursor == Cursor(LEADER, 1_700_000_100, frozenset(), 1_700_000_100)
    assert inbox.follow(LEADER, 1_800_000_000) == cursor  # an existing cursor is kept

    inbox.commit([trade(1)], {LEADER: (1_700_000_200, ["x"])})
    inbox.commit([], {LEADER: (1_700_000_200, ["y"])})
    inbox.commit([], {LEADER: (1_700_000_150, ["old"])})  # never backwards
    expected = Cursor(LEADER, 1_700_000_200, frozenset({"x", "y"}), 1_700_000_100)
    assert inbox.cursor(LEADER) == expected
    inbox.db.close()
    assert open_inbox(db_path).cursor(LEADER) == expected

    again = open_inbox(db_path)
    restarted = again.follow(LEADER, 1_700_009_000, restart=True)
    assert restarted.last_ts == restarted.follow_since == 1_700_009_000


def test_a_failed_commit_changes_nothing(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    inbox.follow(LEADER, 100)
    broken = LeaderTrade(
        leader=LEADER,
        asset="1",
        condition_id="",
        side=Side.BUY,
        price=Decimal("0.5"),
        size=Decimal("1"),
        timestamp=datetime.fromtimestamp(1_000, tz=UTC),
        tx_hash="0x" + "d" * 64,
    )
    object.__setattr__(broken, "source", object())  # an unbindable value makes SQLite fail
    with pytest.raises(Exception, match="type"):
        inbox.commit([trade(1), broken], {LEADER: (500, ["z"])})
    assert inbox.cursor(LEADER) == Cursor(LEADER, 100, frozenset(), 100)
    assert not inbox.contains(trade(1).trade_id)
    assert inbox.commit([trade(1)]) == [trade(1)]  # not remembered as seen


def test_dead_letters_are_bounded_and_written_with_the_next_commit(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    inbox.dead_letter("rtds", "price", "price: must be inside (0, 1)", "x" * 10_000)
    assert inbox.dead_letters() == []
    inbox.commit([trade(1)])
    [(source, reason, _detail, raw)] = inbox.dead_letters()
    assert (source, reason, len(raw)) == ("rtds", "price", 4096)
    for n in range(3):
        inbox.dead_letter("rest", "side", "side", b"\xff" + bytes([n]))
    inbox.flush()
    assert len(inbox.dead_letters()) == 4


def test_prune_keeps_pending_and_recent_rows(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    old, new = trade(1, ts=1_000), trade(2, ts=2_000_000)
    inbox.commit([old, new, trade(3, ts=1_000)])
    inbox.mark_processed([old.trade_id, new.trade_id])
    assert inbox.prune(2_000_000) == 1  # `old` only: trade 3 is still pending
    assert inbox.pending_count() == 1


def test_checked_position_moves_forward_only_and_survives_reopen(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    inbox.follow(LEADER, 1_700_000_100)
    inbox.mark_checked(LEADER, 1_700_000_400)
    inbox.mark_checked(LEADER, 1_700_000_300)  # never backwards
    inbox.mark_checked(OTHER, 1_700_000_400)  # not followed: no cursor appears
    cursor = inbox.cursor(LEADER)
    assert cursor is not None
    assert (cursor.last_ts, cursor.checked_ts, cursor.position) == (
        1_700_000_100,
        1_700_000_400,
        1_700_000_400,
    )
    inbox.commit([], {LEADER: (1_700_000_200, ["x"])})  # a trade does not undo the check
    inbox.db.close()
    reopened = open_inbox(db_path)
    assert reopened.cursor(LEADER) == Cursor(
        LEADER, 1_700_000_200, frozenset({"x"}), 1_700_000_100, 1_700_000_400
    )
    assert reopened.cursor(OTHER) is None


def test_unfollow_forgets_the_cursor_and_retires_pending_trades(db_path: Path) -> None:
    inbox = open_inbox(db_path)
    inbox.follow_many([LEADER, OTHER], 1_700_000_000)
    inbox.commit([trade(1), trade(2, leader=OTHER)], {LEADER: (1_700_000_001, ["x"])})
    assert inbox.unfollow([LEADER]) == 1
    assert inbox.followed() == {OTHER}
    assert [t.leader for t in inbox.pending()] == [OTHER]
    inbox.commit([], {LEADER: (1_700_000_300, ["late"])})  # a page in flight: no cursor back
    assert inbox.cursor(LEADER) is None
    inbox.db.close()

    reopened = open_inbox(db_path)
    assert reopened.followed() == {OTHER}
    cursor = reopened.follow(LEADER, 1_700_009_000)  # followed again: from then on
    assert cursor.last_ts == cursor.follow_since == 1_700_009_000
    assert reopened.contains(trade(1).trade_id)  # still a duplicate if it comes again
