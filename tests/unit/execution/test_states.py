"""R8: the order state machine — a transition table, illegal moves raise, terminal states
never revert except CANCELED → FILLED, fills monotonic and bounded, replays idempotent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from polycopy.execution.states import (
    DUST_SHARES,
    FINAL_STATES,
    TRANSITIONS,
    FillVerdict,
    IllegalTransition,
    OrderStatus,
    OrderTracker,
    can_transition,
    transition,
)


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


def test_exact_replay_ignored_conflict_and_overfill_alert() -> None:
    tracker = OrderTracker(quantity=Decimal(10), status=OrderStatus.SIGNED)
    assert tracker.fill("t1", Decimal("3.2"), Decimal("0.5")) is FillVerdict.APPLIED
    assert tracker.fill("t1", Decimal("3.2"), Decimal("0.5")) is FillVerdict.DUPLICATE
    assert tracker.alerts == 0
    assert tracker.fill("t1", Decimal("3.3"), Decimal("0.5")) is FillVerdict.CONFLICT
    assert tracker.fill("t2", Decimal("7"), Decimal("0.5")) is FillVerdict.OVERFILL
    assert tracker.alerts == 2
    assert tracker.filled == Decimal("3.2")
    assert tracker.status is OrderStatus.PARTIALLY_FILLED


class OrderMachine(RuleBasedStateMachine):
    """Random event sequences — out of order, duplicated, late — against the tracker."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = OrderTracker(quantity=Decimal(10))
        self.applied: dict[str, Decimal] = {}
        self.history: list[OrderStatus] = [self.tracker.status]
        self.last_filled = Decimal(0)

    @rule(to=st.sampled_from(list(OrderStatus)))
    def move(self, to: OrderStatus) -> None:
        before = self.tracker.status
        try:
            self.tracker.move(to)
        except IllegalTransition:
            assert self.tracker.status is before  # not applied
            assert not can_transition(before, to)
            return
        assert can_transition(before, to)
        self.history.append(self.tracker.status)

    @rule(
        trade=st.sampled_from(["a", "b", "c", "d", "e"]),
        shares=st.sampled_from([Decimal("0.5"), Decimal("2"), Decimal("3.2"), Decimal("6")]),
    )
    def fill(self, trade: str, shares: Decimal) -> None:
        before = self.tracker.status
        try:
            verdict = self.tracker.fill(trade, shares, Decimal("0.5"))
        except IllegalTransition:
            assert before in (
                OrderStatus.NEW,
                OrderStatus.ABANDONED,
                OrderStatus.REJECTED,
                OrderStatus.EXPIRED,
            )
            return
        if verdict is FillVerdict.APPLIED:
            self.applied[trade] = shares
            if self.tracker.status is not before:
                self.history.append(self.tracker.status)
        elif verdict is FillVerdict.DUPLICATE:
            assert self.applied[trade] == shares

    @invariant()
    def filled_bounded_and_monotonic(self) -> None:
        filled = self.tracker.filled
        assert Decimal(0) <= filled <= self.tracker.quantity + DUST_SHARES
        assert filled >= self.last_filled
        self.last_filled = filled
        assert filled == sum(self.applied.values(), Decimal(0))

    @invariant()
    def no_reversion_from_terminal(self) -> None:
        for earlier, later in zip(self.history, self.history[1:], strict=False):
            if earlier in FINAL_STATES and earlier is not later:
                assert earlier is OrderStatus.CANCELED
                assert later is OrderStatus.FILLED


TestOrderMachine = OrderMachine.TestCase
TestOrderMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
