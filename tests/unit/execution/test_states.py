"""R8: the order state machine production uses — the transition table, as `Ledger.settle`
applies it to a real SQLite ledger: illegal moves are not applied, terminal states never
revert except CANCELED → FILLED, filled is monotonic and bounded, replays are idempotent, a
late fill of a closed intent is applied once and alerted, and Σ fills equals the position."""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from exec_helpers import ASSET, LEADER, make_plan
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from polycopy.execution.port import ExecutionReport, SignedSubmission, VenueFill, summarize
from polycopy.execution.states import (
    DUST_SHARES,
    FINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    OrderStatus,
    can_transition,
    transition,
)
from polycopy.store.ledger import Ledger

D = Decimal
PRICE = D("0.5")
NOTIONAL = D("10")  # the intent's pUSD: at most 20 shares at PRICE (+ dust)


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)


def test_terminal_states_never_revert_except_late_fill() -> None:
    for final in FINAL_STATES:
        for target in OrderStatus:
            allowed = can_transition(final, target)
            assert allowed == (final is OrderStatus.CANCELED and target is OrderStatus.FILLED)


def test_illegal_transition_raises() -> None:
    with pytest.raises(IllegalTransition):
        transition(OrderStatus.FILLED, OrderStatus.LIVE)
    with pytest.raises(IllegalTransition):
        transition(OrderStatus.NEW, OrderStatus.FILLED)  # nothing was ever sent
    assert transition(OrderStatus.CANCELED, OrderStatus.FILLED) is OrderStatus.FILLED


def test_an_intent_is_signed_once() -> None:
    assert not can_transition(OrderStatus.SIGNED, OrderStatus.SIGNED)
    assert not can_transition(OrderStatus.NEW, OrderStatus.NEW)
    assert can_transition(OrderStatus.UNKNOWN, OrderStatus.UNKNOWN)  # a repeated report


class LedgerOrderMachine(RuleBasedStateMachine):
    """Random reports — any state, fills out of order, duplicated, conflicting, late —
    settled into one intent of a real ledger file."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="polycopy-r8-"))
        self.ledger = Ledger.open(self.directory, "live")
        intent = self.ledger.begin_intent(make_plan(notional=NOTIONAL), "FAK")
        self.intent = self.ledger.record_submission(
            intent, SignedSubmission("0xh", '{"makerAmount":"10000000"}', 0)
        )
        self.history: list[OrderStatus] = [OrderStatus.SIGNED]
        self.recorded: dict[str, Decimal] = {}  # trade id → shares, as first recorded
        self.last_filled = D(0)

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(
        status=st.sampled_from(list(OrderStatus)),
        fills=st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c", "d", "e"]),
                st.sampled_from([D("0.5"), D("2"), D("3.2"), D("6"), D("9")]),
            ),
            max_size=3,
        ),
    )
    def settle(self, status: OrderStatus, fills: list[tuple[str, Decimal]]) -> None:
        before = self.ledger.intent(self.intent.intent_id)
        assert before is not None
        alerts = self.ledger.alerts
        venue = tuple(VenueFill(t, "0xh", PRICE, shares) for t, shares in fills)
        report = ExecutionReport(status, summarize(venue, status is OrderStatus.FILLED), venue)
        result = self.ledger.settle(before, report)
        after = result.intent
        # the state moved by the table, or not at all
        assert after.status is before.status or can_transition(before.status, after.status)
        if after.status is not before.status:
            self.history.append(after.status)
        # a fill is recorded once: an applied trade id is new
        for fill in result.applied:
            assert fill.trade_id not in self.recorded
            self.recorded[fill.trade_id] = fill.shares
        # every alert is accounted for: conflicts, overfills, and late fills of a closed intent
        late = 1 if before.status.final and result.applied else 0
        assert self.ledger.alerts - alerts == result.conflicts + result.overfills + late

    @invariant()
    def fills_bounded_monotonic_and_equal_to_the_position(self) -> None:
        fills = self.ledger.fills(self.intent.intent_id)
        assert len({f.trade_id for f in fills}) == len(fills)
        filled = sum((f.shares for f in fills), D(0))
        assert filled == sum(self.recorded.values(), D(0))
        assert filled >= self.last_filled
        self.last_filled = filled
        assert D(0) <= filled * PRICE <= NOTIONAL + DUST_SHARES * PRICE
        positions = self.ledger.positions(LEADER)
        held = positions[0].shares if positions else D(0)
        assert [p.asset for p in positions] in ([], [ASSET])
        assert held == filled  # Σ fills == the position delta (the position started empty)

    @invariant()
    def no_reversion_from_terminal(self) -> None:
        for earlier, later in zip(self.history, self.history[1:], strict=False):
            if earlier in FINAL_STATES:
                assert earlier is OrderStatus.CANCELED
                assert later is OrderStatus.FILLED


TestLedgerOrderMachine = LedgerOrderMachine.TestCase
TestLedgerOrderMachine.settings = settings(max_examples=75, stateful_step_count=25, deadline=None)
