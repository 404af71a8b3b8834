"""The durable ledger on a real SQLite file: intents before orders, idempotent fills (R7),
positions and PnL per leader, reservations, restart rebuild, paper/live separation (R23)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from exec_helpers import ASSET, LEADER, make_plan

from polycopy.domain.events import Side
from polycopy.domain.ledger import AttributedBook
from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import Execution, FillStatus
from polycopy.execution.book_walk import FeeSchedule
from polycopy.execution.errors import InvariantError
from polycopy.execution.port import (
    ExecutionReport,
    SignedSubmission,
    VenueFill,
    intent_id_for,
    rejected,
)
from polycopy.execution.states import OrderStatus
from polycopy.store.db import Database, StoreError
from polycopy.store.ledger import Ledger, ledger_path, plan_from_json, plan_to_json


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(tmp_path, "live")


def filled(fills: tuple[VenueFill, ...], complete: bool = True) -> ExecutionReport:
    shares = sum((f.shares for f in fills), Decimal(0))
    notional = sum((f.notional for f in fills), Decimal(0))
    status = FillStatus.FILLED if complete else FillStatus.PARTIAL
    execution = Execution(status, shares=shares, notional=notional, price=notional / shares)
    return ExecutionReport(
        OrderStatus.FILLED if complete else OrderStatus.CANCELED, execution, fills, "0xhash"
    )


def test_pragmas_and_separate_files(tmp_path: Path, ledger: Ledger) -> None:
    assert ledger.path == ledger_path(tmp_path, "live") == tmp_path / "polycopy-live.sqlite3"
    assert ledger.db.pragma("journal_mode") == "wal"
    assert ledger.db.pragma("synchronous") == 1  # NORMAL: the pre-POST commit is FULL
    with ledger.db.durable_transaction():
        assert ledger.db.pragma("synchronous") == 2  # FULL
    assert ledger.db.pragma("synchronous") == 1
    ledger.close()
    database = Database(tmp_path / "polycopy-live.sqlite3")
    with pytest.raises(StoreError, match="live ledger"):
        Ledger(database, "paper")


def test_intent_is_durable_unique_and_idempotent(tmp_path: Path, ledger: Ledger) -> None:
    plan = make_plan(decision_id="dec-1")
    intent = ledger.begin_intent(plan, "FAK")
    assert intent.intent_id == intent_id_for("dec-1")
    assert intent.status is OrderStatus.NEW
    again = ledger.begin_intent(plan, "FAK")
    assert again == intent
    # visible to another connection at once: the commit happened before anything is sent
    other = sqlite3.connect(tmp_path / "polycopy-live.sqlite3")
    assert other.execute("SELECT count(*) FROM ledger_intents").fetchone()[0] == 1
    signed = ledger.record_submission(
        intent, SignedSubmission("0xhash", '{"salt":1}', 1_700_000_000_000)
    )
    row = other.execute("SELECT status, order_hash, signed_order FROM ledger_intents").fetchone()
    assert row == ("SIGNED", "0xhash", '{"salt":1}')
    assert signed.status is OrderStatus.SIGNED
    assert signed.order_hash == "0xhash"
    assert ledger.begin_intent(plan, "FAK").status is OrderStatus.SIGNED  # never a second NEW
    with pytest.raises(sqlite3.IntegrityError):
        other.execute(
            "INSERT INTO ledger_intents(intent_id, decision_id, leader, asset, condition_id, side,"
            " order_type, notional, shares, limit_price, plan, status, created_at, updated_at)"
            " VALUES ('x', 'dec-1', '', '', '', 'BUY', 'FAK', '1', '1', '0.5', '{}', 'NEW', 0, 0)"
        )


def test_an_intent_is_signed_once(tmp_path: Path, ledger: Ledger) -> None:
    """R3: a second submission for the same intent raises and changes nothing — whether it
    comes while SIGNED, once the state moved on, or with the very same bytes."""
    intent = ledger.begin_intent(make_plan(decision_id="once"), "FAK")
    fees = FeeSchedule(Decimal("0.07"), Decimal("1"), True)
    signed = ledger.record_submission(
        intent, SignedSubmission("0xfirst", '{"salt":1}', 1_700_000_000_000, fees)
    )
    assert signed.fees == fees  # journaled with the order: fills after a restart use it
    with pytest.raises(InvariantError, match="signed already"):
        ledger.record_submission(intent, SignedSubmission("0xsecond", '{"salt":2}', 1))
    with pytest.raises(InvariantError):
        ledger.record_submission(signed, SignedSubmission("0xfirst", '{"salt":1}', 1))
    unknown = ledger.note_lookup(signed, "nothing yet")
    assert unknown.status is OrderStatus.UNKNOWN
    with pytest.raises(InvariantError):
        ledger.record_submission(unknown, SignedSubmission("0xthird", "{}", 2))
    ledger.close()
    stored = Ledger.open(tmp_path, "live").intent(intent.intent_id)
    assert stored is not None
    assert (stored.order_hash, stored.signed_order, stored.fees) == ("0xfirst", '{"salt":1}', fees)


def test_a_late_fill_of_a_closed_intent_is_applied_once_with_an_alert(ledger: Ledger) -> None:
    intent = ledger.begin_intent(make_plan(notional=Decimal("10")), "FAK")
    intent = ledger.record_submission(intent, SignedSubmission("0xlate", "{}", 0))
    closed = ledger.settle(intent, rejected("0xlate", "never received", OrderStatus.EXPIRED))
    assert closed.intent.status is OrderStatus.EXPIRED
    assert ledger.alerts == 0
    late = VenueFill("t-late", "0xlate", Decimal("0.5"), Decimal("4"))
    first = ledger.settle(closed.intent, filled((late,), complete=False))
    assert [f.trade_id for f in first.applied] == ["t-late"]
    assert first.intent.status is OrderStatus.EXPIRED  # a terminal state does not revert
    assert ledger.alerts == 1  # … but the fill is not silent
    assert ledger.positions(LEADER)[0].shares == Decimal("4")
    again = ledger.settle(first.intent, filled((late,), complete=False))
    assert not again.applied
    assert again.duplicates == 1
    assert ledger.alerts == 1  # an exact replay is no news
    assert ledger.positions(LEADER)[0].shares == Decimal("4")  # never twice


def test_fills_are_idempotent_by_trade_id(ledger: Ledger) -> None:
    plan = make_plan(notional=Decimal("10"))
    intent = ledger.begin_intent(plan, "FAK")
    intent = ledger.record_submission(intent, SignedSubmission("0xhash", "{}", 0))
    one = VenueFill("t1", "0xhash", Decimal("0.50"), Decimal("8"))
    two = VenueFill("t2", "0xhash", Decimal("0.51"), Decimal("4"))
    partial = filled((one,), complete=False)
    first = ledger.settle(intent, replace(partial, status=OrderStatus.PARTIALLY_FILLED))
    assert len(first.applied) == 1
    again = ledger.settle(first.intent, filled((one, two)))
    assert [f.trade_id for f in again.applied] == ["t2"]
    assert again.duplicates == 1
    noisy = ledger.settle(
        again.intent, filled((VenueFill("t2", "0xhash", Decimal("0.51"), Decimal("5")),))
    )
    assert noisy.conflicts == 1
    assert not noisy.applied
    assert ledger.alerts == 1
    [position] = ledger.positions(LEADER)
    assert position.shares == Decimal("12")
    assert position.cost == Decimal("0.50") * 8 + Decimal("0.51") * 4
    assert len(ledger.fills(intent.intent_id)) == 2


def test_overfill_alerts_and_is_not_applied(ledger: Ledger) -> None:
    intent = ledger.begin_intent(make_plan(notional=Decimal("5")), "FAK")
    intent = ledger.record_submission(intent, SignedSubmission("0xh2", "{}", 0))
    big = VenueFill("t1", "0xh2", Decimal("0.5"), Decimal("30"))  # $15 on a $5 order
    result = ledger.settle(intent, filled((big,)))
    assert result.overfills == 1
    assert not result.applied
    assert ledger.positions() == []


def test_sell_realises_pnl_and_fees(ledger: Ledger) -> None:
    buy = ledger.begin_intent(make_plan(notional=Decimal("10"), decision_id="b"), "FAK")
    buy = ledger.record_submission(buy, SignedSubmission("0xb", "{}", 0))
    ledger.settle(
        buy, filled((VenueFill("t1", "0xb", Decimal("0.40"), Decimal("20"), Decimal("0.1")),))
    )
    sell_plan = make_plan(
        Side.SELL, shares=Decimal("5"), reference=Decimal("0.60"), decision_id="s"
    )
    sell = ledger.begin_intent(sell_plan, "FAK")
    sell = ledger.record_submission(sell, SignedSubmission("0xs", "{}", 0))
    ledger.settle(
        sell, filled((VenueFill("t2", "0xs", Decimal("0.60"), Decimal("5"), Decimal("0.05")),))
    )
    pnl = ledger.pnl(LEADER)
    assert pnl.realized == Decimal("1.0")  # 5 × (0.60 − 0.40)
    assert pnl.fees == Decimal("0.15")
    assert pnl.cost == Decimal("6")  # 15 shares at 0.40
    ledger.set_mark(ASSET, Decimal("0.50"))
    pnl = ledger.pnl(LEADER)
    assert pnl.value == Decimal("7.5")
    assert pnl.unrealized == Decimal("1.5")


def test_open_buy_intents_are_reservations_and_restart_rebuilds_the_book(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path, "paper")
    done = ledger.begin_intent(make_plan(notional=Decimal("10"), decision_id="done"), "FAK")
    ledger.settle(done, filled((VenueFill("p1", "paper:x", Decimal("0.5"), Decimal("20")),)))
    ledger.begin_intent(make_plan(notional=Decimal("7"), decision_id="open"), "FAK")
    ledger.set_mark(ASSET, Decimal("0.55"))
    ledger.close()

    reopened = Ledger.open(tmp_path, "paper")
    assert reopened.reserved(LEADER) == Decimal("7")
    book = AttributedBook()
    reopened.load_into(book)
    assert book.shares(LEADER, ASSET) == Decimal("20")
    assert book.reserved(LEADER) == Decimal("7")
    assert book.exposure(LEADER) == Decimal("20") * Decimal("0.55") + Decimal("7")  # A_u


def test_decisions_group_commit_and_settle_upserts(ledger: Ledger) -> None:
    from polycopy.config import parse_config
    from polycopy.domain.sizing import finalize

    cfg = parse_config({"leaders": [{"address": LEADER}]}).leaders[LEADER]
    plan = make_plan(decision_id="dx")
    unknown = finalize(
        plan, Execution(FillStatus.FAILED, reason=Reason.EXEC_UNKNOWN), Decimal(0), cfg
    )
    ledger.record_decision(unknown)
    assert ledger.db.conn.execute("SELECT count(*) FROM ledger_decisions").fetchone()[0] == 0
    ledger.flush()
    assert ledger.decision("dx")["reasons"] == ["EXEC_UNKNOWN"]  # type: ignore[index]
    ledger.record_decision(unknown)  # the same decision again: ignored
    intent = ledger.begin_intent(plan, "FAK")
    resolved = finalize(
        plan, Execution(FillStatus.NONE, reason=Reason.EXEC_NO_LIQUIDITY), Decimal(0), cfg
    )
    report = ExecutionReport(
        OrderStatus.ABANDONED, resolved_execution := Execution(FillStatus.NONE)
    )
    del resolved_execution
    ledger.settle(intent, report, resolved)
    assert ledger.decision("dx")["outcome"] == "SKIPPED"  # type: ignore[index]
    assert ledger.db.conn.execute("SELECT count(*) FROM ledger_decisions").fetchone()[0] == 1


def test_a_paper_settle_joins_the_next_group_commit(tmp_path: Path) -> None:
    """An intent nothing was sent for (paper) is written with its fills and decision by the
    next flush: a read sees it at once; a crash before the flush leaves no trace of it."""
    from polycopy.config import parse_config
    from polycopy.domain.sizing import finalize

    cfg = parse_config({"leaders": [{"address": LEADER}]}).leaders[LEADER]
    paper = Ledger.open(tmp_path, "paper")
    plan = make_plan(decision_id="dp", notional=Decimal("10"))
    intent = paper.new_intent(plan, "FAK")
    fill = VenueFill("paper-1", "paper:x", Decimal("0.50"), Decimal("20"))
    report = replace(filled((fill,)), order_hash="paper:x")
    decision = finalize(plan, report.execution, Decimal(10), cfg)
    result = paper.settle(intent, report, decision, unwritten=plan, deferred=True)
    assert result.intent.status is OrderStatus.FILLED
    assert [f.trade_id for f in result.applied] == ["paper-1"]
    assert paper.has_decision("dp")

    def rows(path: Path) -> tuple[int, int, int]:
        conn = sqlite3.connect(path)
        try:
            return tuple(  # type: ignore[return-value]
                conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
                for t in ("ledger_intents", "ledger_fills", "ledger_decisions")
            )
        finally:
            conn.close()

    assert rows(paper.path) == (0, 0, 0)  # not written yet: a crash here forgets it all
    [position] = paper.positions(LEADER)  # a read writes the deferred settles first
    assert position.shares == Decimal("20")
    assert rows(paper.path) == (1, 1, 1)
    assert paper.intent(intent.intent_id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="only an unwritten"):
        paper.settle(intent, report, decision, deferred=True)
    paper.close()


def test_plan_codec_round_trips() -> None:
    plan = make_plan(Side.SELL, shares=Decimal("12.34"), reference=Decimal("0.47"))
    assert plan_from_json(plan_to_json(plan)) == plan
