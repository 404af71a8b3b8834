"""The sizing policy (SPEC §2): worked examples, rail order, one scenario per reason code."""

from __future__ import annotations

import pytest

from polycopy.domain.copier import Copier
from polycopy.domain.events import Decision, LeaderTrade, Side
from polycopy.domain.money import round_shares_down
from polycopy.domain.netting import NettingBuffer
from polycopy.domain.reasons import Enforcement, Mode, Outcome, Reason
from polycopy.domain.settings import EffectiveLeaderConfig, MarketRules
from polycopy.domain.sizing import (
    Deferral,
    Execution,
    FillStatus,
    HeldState,
    LeaderExposure,
    OrderPlan,
    decide,
    decide_flush,
    effective_rate,
    finalize,
    gate,
)
from tests.builders import ASSET, LEADER, T0, D, leader_cfg, trade

MARKET = MarketRules()
NO_HOLD = HeldState(shares=D(0), attributed=D(0))


def exposure(value: str | None = "1000", position: str | None = None) -> LeaderExposure:
    return LeaderExposure(
        value=D(value) if value is not None else None,
        position=D(position) if position is not None else None,
    )


# --- rate --------------------------------------------------------------------------------
def test_worked_example_b40_e100k_gives_0_0004() -> None:
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="40")
    rate, reasons = effective_rate(cfg, D("100000"))
    assert rate == D("0.0004")
    assert reasons == []


def test_worked_example_b40_e300k_gives_0_000133() -> None:
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="40")
    rate, _ = effective_rate(cfg, D("300000"))
    assert rate == D(40) / D(300000)
    assert str(rate).startswith("0.000133333333")


def test_rate_clamps_and_says_so() -> None:
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="40", r_min="0.001", r_max="0.01")
    assert effective_rate(cfg, D("1000000")) == (D("0.001"), [Reason.RATE_CLAMPED_MIN])
    assert effective_rate(cfg, D("100")) == (D("0.01"), [Reason.RATE_CLAMPED_MAX])


def test_zero_or_negative_exposure_counts_as_infinite_ratio() -> None:
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="40", r_max="0.05")
    assert effective_rate(cfg, D("0")) == (D("0.05"), [Reason.RATE_CLAMPED_MAX])
    assert effective_rate(cfg, D("-5")) == (D("0.05"), [Reason.RATE_CLAMPED_MAX])


def test_fixed_rate_ignores_exposure() -> None:
    cfg = leader_cfg(rate="0.02")
    assert effective_rate(cfg, None) == (D("0.02"), [])


# --- BUY rails in order -------------------------------------------------------------------
def test_plain_buy_becomes_an_order_sized_by_the_rate() -> None:
    verdict = decide(trade("BUY", "0.50", "400"), leader_cfg(), exposure(), NO_HOLD, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    assert verdict.notional == D("2.00")  # 200 × 0.01
    assert verdict.limit_price == D("0.52")  # 0.50 + 2 cents, on the tick grid
    assert verdict.shares == D("3.84")  # 2.00 / 0.52 rounded down
    assert verdict.reasons == ()


def test_rails_apply_in_order_and_record_each_cap() -> None:
    cfg = leader_cfg(rate="0.5", max_exec_notional_usdc="25", max_trade_pct_bankroll="0.05")
    verdict = decide(trade("BUY", "0.50", "1000"), cfg, exposure(), NO_HOLD, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    # 250 → 25 (max exec) → 10 (5 % of 200)
    assert verdict.notional == D("10.00")
    assert verdict.reasons == (
        Reason.CAPPED_MAX_EXEC_NOTIONAL,
        Reason.CAPPED_MAX_TRADE_PCT_BANKROLL,
    )


def test_hard_budget_caps_to_headroom() -> None:
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="30", r_max="1")
    held = HeldState(shares=D(0), attributed=D("27.5"))
    verdict = decide(trade("BUY", "0.50", "1000"), cfg, exposure("1000"), held, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    assert verdict.notional == D("2.50")
    assert Reason.CAPPED_BUDGET_HEADROOM in verdict.reasons


def test_hard_headroom_sets_aside_the_revaluation_of_shares_already_held() -> None:
    """100 shares of the token are held at a mark of 0.40; a BUY at 0.50 may fill up to its
    0.52 limit, which would revalue those shares by up to 100 × 0.12 = 12."""
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="60", r_max="1")
    held = HeldState(shares=D("100"), attributed=D("40"), mark=D("0.40"))
    verdict = decide(trade("BUY", "0.50", "1000"), cfg, exposure("100"), held, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    assert verdict.limit_price == D("0.52")
    assert verdict.notional == D("8.00")  # 60 − 40 − 12
    assert Reason.CAPPED_BUDGET_HEADROOM in verdict.reasons
    assert verdict.reserve == D("20.00")  # the budget counts the revaluation while in flight
    tight = HeldState(shares=D("100"), attributed=D("49"), mark=D("0.40"))
    skipped = decide(trade("BUY", "0.50", "1000"), cfg, exposure("100"), tight, MARKET, T0)
    assert isinstance(skipped, Decision)
    assert skipped.reasons[-1] is Reason.BUDGET_EXHAUSTED


def test_a_fill_becomes_the_mark_so_cheap_shares_never_overvalue_a_budget() -> None:
    copier = Copier({LEADER: leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="10", r_max="1")})
    copier.set_exposure(LEADER, D("0"), None)
    copier.book.set_mark(ASSET, D("0.50"))  # a stale mark above the book
    (plan,) = copier.handle(trade("BUY", "0.50", "1000"), T0)
    assert isinstance(plan, OrderPlan)
    shares = round_shares_down(plan.notional / D("0.40"), D("0.01"))
    done = copier.complete(
        plan,
        Execution(FillStatus.FILLED, shares=shares, notional=shares * D("0.40"), price=D("0.40")),
    )
    assert copier.book.mark(ASSET) == D("0.4")
    assert done.attributed_exposure == D("10")  # 25 shares at 0.40, not at 0.50


def test_soft_budget_does_not_check_headroom() -> None:
    cfg = leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="30", enforcement=Enforcement.SOFT)
    held = HeldState(shares=D(0), attributed=D("500"))
    verdict = decide(trade("BUY", "0.50", "1000"), cfg, exposure("10000"), held, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    assert verdict.notional == D("1.50")  # 500 × 30/10000


def test_full_exit_sells_exactly_what_is_held() -> None:
    held = HeldState(shares=D("12.34"), attributed=D("6"))
    verdict = decide(
        trade("SELL", "0.40", "50"), leader_cfg(), exposure(position="50"), held, MARKET, T0
    )
    assert isinstance(verdict, OrderPlan)
    assert verdict.side is Side.SELL
    assert verdict.shares == D("12.34")
    assert verdict.limit_price == D("0.38")


def test_proportional_exit_sells_the_leaders_fraction_rounded_down() -> None:
    held = HeldState(shares=D("10"), attributed=D("5"))
    verdict = decide(
        trade("SELL", "0.50", "30"), leader_cfg(), exposure(position="100"), held, MARKET, T0
    )
    assert isinstance(verdict, OrderPlan)
    assert verdict.shares == D("3.00")  # 30 % of 10


def test_unknown_leader_position_means_full_exit() -> None:
    held = HeldState(shares=D("7.77"), attributed=D("4"))
    verdict = decide(
        trade("SELL", "0.50", "1"), leader_cfg(), exposure(position=None), held, MARKET, T0
    )
    assert isinstance(verdict, OrderPlan)
    assert verdict.shares == D("7.77")


def test_sells_ignore_buy_only_rails() -> None:
    cfg = leader_cfg(
        min_leader_trade_notional_usdc="1000",
        max_price_per_share="0.10",
        max_exec_notional_usdc="1",
        mode=Mode.BUDGETED_DYNAMIC,
        budget="1",
    )
    held = HeldState(shares=D("100"), attributed=D("99"))
    verdict = decide(trade("SELL", "0.99", "5"), cfg, exposure(position="5"), held, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    assert verdict.shares == D("100")


# --- one scenario per reason code -----------------------------------------------------------
def _reasons(verdict: object) -> tuple[Reason, ...]:
    if isinstance(verdict, Deferral):
        return verdict.decision.reasons
    assert isinstance(verdict, (Decision, OrderPlan))
    return verdict.reasons


BD = Mode.BUDGETED_DYNAMIC
REASON_SCENARIOS = {
    Reason.LEADER_NOTIONAL_BELOW_MIN: {
        "cfg": leader_cfg(min_leader_trade_notional_usdc="100"),
        "trade": trade("BUY", "0.5", "10"),
        "outcome": Outcome.SKIPPED,
    },
    Reason.PRICE_ABOVE_MAX: {
        "cfg": leader_cfg(),
        "trade": trade("BUY", "0.98", "1000"),
        "outcome": Outcome.SKIPPED,
    },
    Reason.EXPOSURE_UNAVAILABLE: {
        "cfg": leader_cfg(mode=BD, budget="30"),
        "trade": trade("BUY", "0.5", "1000"),
        "exposure": exposure(None),
        "outcome": Outcome.SKIPPED,
    },
    Reason.CAPPED_MAX_EXEC_NOTIONAL: {
        "cfg": leader_cfg(rate="1"),
        "trade": trade("BUY", "0.5", "100"),
        "outcome": None,
    },
    Reason.CAPPED_MAX_TRADE_PCT_BANKROLL: {
        "cfg": leader_cfg(rate="1", max_exec_notional_usdc="1000"),
        "trade": trade("BUY", "0.5", "100"),
        "outcome": None,
    },
    Reason.CAPPED_BUDGET_HEADROOM: {
        "cfg": leader_cfg(mode=BD, budget="10", r_max="1"),
        "trade": trade("BUY", "0.5", "1000"),
        "held": HeldState(D(0), D("5")),
        "exposure": exposure("100"),
        "outcome": None,
    },
    Reason.BUDGET_EXHAUSTED: {
        "cfg": leader_cfg(mode=BD, budget="10"),
        "trade": trade("BUY", "0.5", "100"),
        "held": HeldState(D(0), D("9.5")),
        "outcome": Outcome.SKIPPED,
    },
    Reason.EXEC_BELOW_MIN: {
        "cfg": leader_cfg(),
        "trade": trade("BUY", "0.5", "10"),
        "outcome": Outcome.SKIPPED,
    },
    Reason.MARKET_MIN_ORDER_SIZE: {
        "cfg": leader_cfg(min_exec_notional_usdc="0.1"),
        "trade": trade("BUY", "0.5", "50"),
        "outcome": Outcome.SKIPPED,
    },
    Reason.NO_POSITION_TO_SELL: {
        "cfg": leader_cfg(),
        "trade": trade("SELL", "0.5", "50"),
        "outcome": Outcome.SKIPPED,
    },
    Reason.NETTING_DEFERRED: {
        "cfg": leader_cfg(netting=True),
        "trade": trade("BUY", "0.5", "10"),
        "outcome": Outcome.DEFERRED,
    },
    Reason.RATE_CLAMPED_MIN: {
        "cfg": leader_cfg(mode=BD, budget="1", r_min="0.01"),
        "trade": trade("BUY", "0.5", "1000"),
        "exposure": exposure("1000000"),
        "outcome": None,
    },
    Reason.RATE_CLAMPED_MAX: {
        "cfg": leader_cfg(mode=BD, budget="100", r_max="0.01"),
        "trade": trade("BUY", "0.5", "1000"),
        "exposure": exposure("100"),
        "outcome": None,
    },
    Reason.MODE_FALLBACK_FIXED_RATE: {
        "cfg": leader_cfg(fell_back=True),
        "trade": trade("BUY", "0.5", "1000"),
        "outcome": None,
    },
}


R = Reason
EXACT_REASONS = {
    R.CAPPED_MAX_EXEC_NOTIONAL: (R.CAPPED_MAX_EXEC_NOTIONAL, R.CAPPED_MAX_TRADE_PCT_BANKROLL),
    R.CAPPED_BUDGET_HEADROOM: (
        R.CAPPED_MAX_EXEC_NOTIONAL,
        R.CAPPED_MAX_TRADE_PCT_BANKROLL,
        R.CAPPED_BUDGET_HEADROOM,
    ),
    R.RATE_CLAMPED_MIN: (R.RATE_CLAMPED_MIN, R.CAPPED_BUDGET_HEADROOM),
}


@pytest.mark.parametrize(
    ("trade_", "held", "cfg", "expected"),
    [
        # the first filter that fires decides: below the leader minimum and above the price cap
        (
            trade("BUY", "0.99", "10"),
            NO_HOLD,
            leader_cfg(min_leader_trade_notional_usdc="100"),
            (R.LEADER_NOTIONAL_BELOW_MIN,),
        ),
        # a partial exit too small to send on its own (netting off)
        (
            trade("SELL", "0.50", "10"),
            HeldState(D("100"), D("50")),
            leader_cfg(),
            (R.EXEC_BELOW_MIN,),
        ),
        # a full exit goes out whatever its size, but not below the venue's $1
        (
            trade("SELL", "0.50", "1000"),
            HeldState(D("1.5"), D("0.75")),
            leader_cfg(),
            (R.MARKET_MIN_ORDER_SIZE,),
        ),
        # headroom exactly the minimum is not exhausted: the copy is capped to it
        (
            trade("BUY", "0.50", "1000"),
            HeldState(D(0), D("9")),
            leader_cfg(mode=Mode.BUDGETED_DYNAMIC, budget="10"),  # r = 10/1000: $5 wanted
            (R.CAPPED_BUDGET_HEADROOM,),
        ),
    ],
    ids=["filters-in-order", "small-partial-exit", "dust-full-exit", "headroom-equals-min"],
)
def test_rail_precedence_and_edges(
    trade_: LeaderTrade, held: HeldState, cfg: EffectiveLeaderConfig, expected: tuple[Reason, ...]
) -> None:
    verdict = decide(trade_, cfg, exposure(position="1000"), held, MARKET, T0)
    assert _reasons(verdict) == expected
    if expected == (R.CAPPED_BUDGET_HEADROOM,):
        assert isinstance(verdict, OrderPlan)
        assert verdict.notional == D("1.00")


@pytest.mark.parametrize("reason", list(REASON_SCENARIOS), ids=lambda r: r.value)
def test_policy_reason_code(reason: Reason) -> None:
    case = REASON_SCENARIOS[reason]
    verdict = decide(
        case["trade"],
        case["cfg"],
        case.get("exposure", exposure()),
        case.get("held", NO_HOLD),
        MARKET,
        T0,
    )
    assert _reasons(verdict) == EXACT_REASONS.get(reason, (reason,))  # all of them, in rail order
    if case["outcome"] is None:
        assert isinstance(verdict, OrderPlan)
    elif isinstance(verdict, Deferral):
        assert verdict.decision.outcome is case["outcome"]
    else:
        assert isinstance(verdict, Decision)
        assert verdict.outcome is case["outcome"]


@pytest.mark.parametrize("reason", [Reason.STALE_EVENT, Reason.KILL_SWITCH, Reason.QUEUE_OVERFLOW])
def test_shell_gates_produce_full_skipped_records(reason: Reason) -> None:
    decision = gate(trade(), leader_cfg(), exposure(), NO_HOLD, reason, T0)
    assert decision.outcome is Outcome.SKIPPED
    assert decision.reasons[-1] is reason
    assert decision.exec_notional == 0


def _buffer(net: str, price: str = "0.5") -> NettingBuffer:
    buffer = NettingBuffer(LEADER, ASSET, "0xcond", T0, T0)
    buffer.net_notional = D(net)
    buffer.last_price = D(price)
    buffer.decision_ids = ["a", "b"]
    return buffer


def test_netting_flush_reason_and_ids() -> None:
    cfg = leader_cfg(netting=True)
    verdict = decide_flush(_buffer("1.5"), cfg, exposure(), NO_HOLD, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    assert verdict.reasons == (Reason.NETTING_FLUSH,)
    assert verdict.context.netted_ids == ("a", "b")


def test_netted_below_min_is_dropped() -> None:
    cfg = leader_cfg(netting=True, small_min="0.5")
    verdict = decide_flush(_buffer("0.3"), cfg, exposure(), NO_HOLD, MARKET, T0)
    assert isinstance(verdict, Decision)
    assert verdict.outcome is Outcome.SKIPPED
    assert verdict.reasons == (Reason.NETTING_FLUSH, Reason.NETTED_BELOW_MIN)


def _plan() -> OrderPlan:
    verdict = decide(trade("BUY", "0.50", "400"), leader_cfg(), exposure(), NO_HOLD, MARKET, T0)
    assert isinstance(verdict, OrderPlan)
    return verdict


@pytest.mark.parametrize(
    ("execution", "outcome", "reason"),
    [
        (
            Execution(FillStatus.PARTIAL, D("1"), D("0.5"), D("0.5")),
            Outcome.CAPPED,
            Reason.EXEC_PARTIAL_FILL,
        ),
        (
            Execution(FillStatus.NONE, reason=Reason.EXEC_NO_LIQUIDITY),
            Outcome.SKIPPED,
            Reason.EXEC_NO_LIQUIDITY,
        ),
        (
            Execution(FillStatus.NONE, reason=Reason.EXEC_SLIPPAGE_LIMIT),
            Outcome.SKIPPED,
            Reason.EXEC_SLIPPAGE_LIMIT,
        ),
        (
            Execution(FillStatus.FAILED, reason=Reason.EXEC_REJECTED),
            Outcome.FAILED,
            Reason.EXEC_REJECTED,
        ),
        (
            Execution(FillStatus.FAILED, reason=Reason.EXEC_UNKNOWN),
            Outcome.FAILED,
            Reason.EXEC_UNKNOWN,
        ),
    ],
    ids=lambda v: v.value if isinstance(v, Reason) else "",
)
def test_execution_reason_codes(execution: Execution, outcome: Outcome, reason: Reason) -> None:
    decision = finalize(_plan(), execution, D(0), leader_cfg())
    assert decision.outcome is outcome
    assert reason in decision.reasons
    if outcome is not Outcome.CAPPED:
        assert decision.exec_notional == 0
        assert decision.exec_shares == 0


def test_a_trade_of_a_leader_removed_by_a_reload_is_decided_as_not_followed() -> None:
    other = "0x" + "77" * 20
    copier = Copier({LEADER: leader_cfg(), other: leader_cfg(other)})
    copier.set_exposure(LEADER, D("1000"), None)
    copier.set_configs({other: leader_cfg(other)})  # SIGHUP: LEADER is gone
    assert copier.knows(LEADER)
    (decision,) = copier.handle(trade("BUY", "0.50", "400"), T0)
    assert isinstance(decision, Decision)
    assert (decision.outcome, decision.reasons) == (Outcome.SKIPPED, (R.LEADER_NOT_FOLLOWED,))
    assert not copier.knows("0x" + "99" * 20)


def test_every_reason_code_has_a_scenario() -> None:
    covered = set(REASON_SCENARIOS) | {
        Reason.LEADER_NOT_FOLLOWED,
        Reason.STALE_EVENT,
        Reason.KILL_SWITCH,
        Reason.QUEUE_OVERFLOW,
        Reason.NETTING_FLUSH,
        Reason.NETTED_BELOW_MIN,
        Reason.EXEC_PARTIAL_FILL,
        Reason.EXEC_NO_LIQUIDITY,
        Reason.EXEC_SLIPPAGE_LIMIT,
        Reason.EXEC_REJECTED,
        Reason.EXEC_UNKNOWN,
    }
    assert covered == set(Reason)


# --- netting through the copier -------------------------------------------------------------
def _fill_at_reference(plan: OrderPlan) -> Execution:
    price = plan.reference_price
    shares = (
        plan.shares
        if plan.side is Side.SELL
        else round_shares_down(plan.notional / price, D("0.01"))
    )
    return Execution(FillStatus.FILLED, shares, shares * price, price)


def _run(copier: Copier, steps: list[object]) -> list[Decision]:
    out = []
    for step in steps:
        if isinstance(step, OrderPlan):
            out.append(copier.complete(step, _fill_at_reference(step)))
        else:
            assert isinstance(step, Decision)
            out.append(step)
    return out


def test_netting_buffers_small_buys_until_threshold() -> None:
    cfg = leader_cfg(netting=True)
    copier = Copier({LEADER: cfg})
    copier.set_exposure(LEADER, D("1000"), None)
    first = _run(copier, copier.handle(trade("BUY", "0.5", "60", at=0), T0))
    assert [d.outcome for d in first] == [Outcome.DEFERRED]  # $0.30
    second = _run(copier, copier.handle(trade("BUY", "0.5", "140", at=1), T0))
    assert [d.outcome for d in second] == [Outcome.DEFERRED, Outcome.EXECUTED]  # +$0.70 → $1.00
    flush = second[1]
    assert Reason.NETTING_FLUSH in flush.reasons
    assert flush.netted_ids == (first[0].decision_id, second[0].decision_id)
    assert flush.exec_notional == D("1.00")


def test_netting_window_flushes_by_the_clock_passed_in() -> None:
    from datetime import timedelta

    cfg = leader_cfg(netting=True, netting_window_s="2")
    copier = Copier({LEADER: cfg})
    copier.set_exposure(LEADER, D("1000"), None)
    _run(copier, copier.handle(trade("BUY", "0.5", "120", at=0), T0))  # $0.60
    assert copier.due(T0 + timedelta(seconds=1.9)) == []
    flushed = _run(copier, copier.due(T0 + timedelta(seconds=2)))
    assert len(flushed) == 1
    # $0.60 ≥ small-trade minimum 0.50, but below the venue's $1 for marketable orders
    assert flushed[0].reasons == (Reason.NETTING_FLUSH, Reason.MARKET_MIN_ORDER_SIZE)
    assert flushed[0].ts == T0 + timedelta(seconds=2)


def _holding(copier: Copier, shares: str, price: str) -> None:
    copier.book.apply_fill(LEADER, ASSET, Side.BUY, D(shares), D(price))


def test_netted_sells_flush_their_own_shares_whatever_their_prices() -> None:
    """SPEC §2.5: SELLs subtract in shares at their prices. Two partial exits of 5 of the
    leader's 1,000 shares, at 0.10 and at 0.90, are 1 and 1.005 of our 200 shares."""
    copier = Copier({LEADER: leader_cfg(netting=True)})
    copier.set_exposure(LEADER, D("1000"), None, {ASSET: D("1000")})
    _holding(copier, "200", "0.50")
    first = _run(copier, copier.handle(trade("SELL", "0.10", "5", at=0), T0))
    assert [d.outcome for d in first] == [Outcome.DEFERRED]  # 1 share, $0.10
    second = _run(copier, copier.handle(trade("SELL", "0.90", "5", at=1), T0))
    assert [d.outcome for d in second] == [Outcome.DEFERRED, Outcome.EXECUTED]  # net −$1.0045
    flush = second[1]
    assert flush.side is Side.SELL
    assert flush.exec_shares == D("2.00")  # 1 + 1.005 rounded down, not $1.0045 / 0.90
    assert copier.book.shares(LEADER, ASSET) == D("198.00")


def test_buys_in_the_buffer_offset_netted_sells_by_value() -> None:
    copier = Copier({LEADER: leader_cfg(netting=True, rate="0.001")})
    copier.set_exposure(LEADER, D("1000"), None, {ASSET: D("1000")})
    _holding(copier, "400", "0.50")
    _run(copier, copier.handle(trade("BUY", "0.50", "1000", at=0), T0))  # +$0.50 deferred
    # 200 of the leader's 2,000 shares: 40 of ours, $20 — not small, sold at once
    big = _run(copier, copier.handle(trade("SELL", "0.50", "200", at=1), T0))
    assert big[0].exec_shares == D("40.00")
    # 8 of its 1,800: 1.6 of our 360 shares, −$0.80, nets with the +$0.50 to −$0.30 ...
    small = _run(copier, copier.handle(trade("SELL", "0.50", "8", at=2), T0))
    assert [d.outcome for d in small] == [Outcome.DEFERRED]
    (flush,) = _run(copier, copier.drain())
    # ... which is below the $0.50 small-trade minimum: dropped, nothing sold
    assert flush.reasons == (Reason.NETTING_FLUSH, Reason.NETTED_BELOW_MIN)
    assert copier.book.shares(LEADER, ASSET) == D("360.00")


def test_a_netted_sell_never_exceeds_the_attributed_shares() -> None:
    copier = Copier({LEADER: leader_cfg(netting=True, small_min="0")})
    copier.set_exposure(LEADER, D("1000"), None, {ASSET: D("1000")})
    _holding(copier, "3", "0.50")
    steps = copier.handle(trade("SELL", "0.50", "300", at=0), T0)  # 30 %: 0.9 shares, $0.45
    assert [s.outcome for s in _run(copier, steps)] == [Outcome.DEFERRED]
    copier.book.apply_fill(LEADER, ASSET, Side.SELL, D("2.5"), D("0.50"))  # sold elsewhere
    (flush,) = _run(copier, copier.drain())
    assert flush.reasons[-1] is Reason.MARKET_MIN_ORDER_SIZE  # 0.5 share left, $0.25
    assert copier.book.shares(LEADER, ASSET) == D("0.5")


def test_two_exits_sized_while_one_is_in_flight_never_sell_the_same_shares() -> None:
    """The daemon's order: a due netting flush (a SELL) goes out, and before it fills the
    leader's full exit of the same token is sized."""
    from datetime import timedelta

    cfg = leader_cfg(netting=True, netting_window_s="2", min_exec_notional_usdc="3")
    copier = Copier({LEADER: cfg})
    copier.set_exposure(LEADER, D("1000"), T0, {ASSET: D("1000")})
    _holding(copier, "10", "0.50")
    for i in range(3):  # 16 % each: deferred, $0.80 … $0.59
        (deferred,) = copier.handle(trade("SELL", "0.50", "160", at=i), T0)
        assert isinstance(deferred, Decision)
    later = T0 + timedelta(seconds=3)
    (flush,) = copier.due(later)
    (exit_,) = copier.handle(trade("SELL", "0.50", "520", at=3), later)  # the rest: f = 1
    assert isinstance(flush, OrderPlan)
    assert isinstance(exit_, OrderPlan)
    assert flush.shares + exit_.shares == D("10")
    for plan in (flush, exit_):
        copier.complete(plan, _fill_at_reference(plan))  # no LedgerInvariantError
    assert copier.book.shares(LEADER, ASSET) == 0


def test_netting_off_skips_small_trades() -> None:
    copier = Copier({LEADER: leader_cfg(netting=False)})
    copier.set_exposure(LEADER, D("1000"), None)
    decisions = _run(copier, copier.handle(trade("BUY", "0.5", "60"), T0))
    assert decisions[0].reasons == (Reason.EXEC_BELOW_MIN,)
    assert len(copier.netting) == 0


def test_decision_record_has_every_contract_field() -> None:
    copier = Copier({LEADER: leader_cfg()})
    copier.set_exposure(LEADER, D("1000"), None)
    decision = _run(copier, copier.handle(trade("BUY", "0.5", "400"), T0))[0]
    record = decision.to_record()
    for name in (
        "decision_id",
        "ts",
        "event_ts",
        "leader",
        "leader_name",
        "asset",
        "condition_id",
        "side",
        "leader_price",
        "leader_size",
        "leader_notional",
        "mode",
        "enforcement",
        "rate",
        "leader_exposure",
        "budget",
        "target_notional",
        "exec_notional",
        "exec_shares",
        "exec_price",
        "outcome",
        "reasons",
        "attributed_exposure",
        "headroom",
        "netted_ids",
    ):
        assert name in record
    assert record["exec_notional"] == "2"  # 4 shares at the leader's 0.50 (bound 0.52)
    assert record["exec_shares"] == "4"
    assert record["ts"].endswith("Z")
    assert all(isinstance(record[k], str) for k in ("leader_price", "rate", "exec_shares"))


def test_marks_of_tokens_nobody_holds_can_be_forgotten() -> None:
    copier = Copier({LEADER: leader_cfg()})
    copier.book.set_mark("held", D("0.5"))
    copier.book.set_mark("seen-once", D("0.3"))
    copier.book.apply_fill(LEADER, "held", Side.BUY, D("10"), D("0.5"))
    assert copier.book.forget_unheld_marks() == 1
    assert copier.book.mark("held") == D("0.5")
    assert copier.book.mark("seen-once") is None
    assert copier.book.exposure(LEADER) == D("5")
