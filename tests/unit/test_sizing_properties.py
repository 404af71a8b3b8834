"""Hypothesis properties of the policy, driven through the Copier exactly as replay drives it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from polycopy.domain.copier import Copier
from polycopy.domain.events import Decision, LeaderTrade, Side
from polycopy.domain.money import round_shares_down
from polycopy.domain.reasons import Enforcement, Mode
from polycopy.domain.settings import EffectiveLeaderConfig
from polycopy.domain.sizing import Execution, FillStatus, OrderPlan
from polycopy.replay import fill_at_last_price
from tests.builders import LEADER, OTHER, D, config, leader_cfg, trade

ASSETS = ("111", "222", "333")
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

prices = st.one_of(
    st.integers(1, 99).map(lambda c: D(c) / 100),
    st.integers(1, 9999).map(lambda c: D(c) / 10000),
)
sizes = st.integers(1, 10**8).map(lambda c: D(c) / 100)


@st.composite
def trades(draw: st.DrawFn, leaders: tuple[str, ...] = (LEADER, OTHER)) -> list[LeaderTrade]:
    count = draw(st.integers(1, 40))
    out = []
    clock = 0.0
    for _ in range(count):
        clock += draw(st.floats(0, 4, allow_nan=False))
        out.append(
            trade(
                draw(st.sampled_from([Side.BUY, Side.BUY, Side.SELL])),
                draw(prices),
                draw(sizes),
                leader=draw(st.sampled_from(leaders)),
                asset=draw(st.sampled_from(ASSETS)),
                at=clock,
            )
        )
    return out


@st.composite
def configs(draw: st.DrawFn, address: str) -> EffectiveLeaderConfig:
    r_min = D(draw(st.integers(0, 50))) / 10000
    r_max = r_min + D(draw(st.integers(0, 500))) / 10000
    min_exec = D(draw(st.integers(0, 300))) / 100
    return leader_cfg(
        address,
        mode=draw(st.sampled_from([Mode.FIXED_RATE, Mode.BUDGETED_DYNAMIC])),
        rate=str(D(draw(st.integers(0, 1000))) / 10000),
        budget=str(D(draw(st.integers(0, 20000))) / 100),
        r_min=str(r_min),
        r_max=str(r_max),
        enforcement=draw(st.sampled_from([Enforcement.HARD, Enforcement.SOFT])),
        netting=draw(st.booleans()),
        netting_window_s=str(draw(st.integers(0, 5))),
        small_min=str(D(draw(st.integers(0, 200))) / 100),
        min_exec_notional_usdc=str(min_exec),
        max_exec_notional_usdc=str(min_exec + D(draw(st.integers(0, 5000))) / 100),
        max_trade_pct_bankroll=str(D(draw(st.integers(1, 100))) / 100),
        min_leader_trade_notional_usdc=str(D(draw(st.integers(0, 500)))),
        max_price_per_share=str(D(draw(st.integers(1, 99))) / 100),
        bankroll=str(draw(st.integers(1, 5000))),
    )


@dataclass
class Step:
    decision: Decision
    cfg: EffectiveLeaderConfig
    held_before: dict[tuple[str, str], Decimal]
    held_after: dict[tuple[str, str], Decimal]


Fill = Callable[[OrderPlan, Copier], Execution]


def drive(
    cfgs: dict[str, EffectiveLeaderConfig],
    tape: list[LeaderTrade],
    fill: Fill = fill_at_last_price,
) -> list[Step]:
    """The replay loop, recording every attributed position before and after each decision."""
    copier = Copier(cfgs)
    for address in cfgs:
        copier.set_exposure(address, D("5000"), None)
    steps: list[Step] = []

    def held() -> dict[tuple[str, str], Decimal]:
        return {(a, s): copier.book.shares(a, s) for a in cfgs for s in ASSETS}

    def run(items: list[Decision | OrderPlan]) -> None:
        for item in items:
            before = held()
            if isinstance(item, OrderPlan):
                decision = copier.complete(item, fill(item, copier))
            else:
                decision = item
            steps.append(Step(decision, cfgs[decision.leader], before, held()))

    for t in tape:
        run(copier.due(t.timestamp))
        copier.book.set_mark(t.asset, t.price)
        run(copier.handle(t, t.timestamp))
    run(copier.drain())
    for address in cfgs:  # the incremental A_u never drifts from a full rescan
        assert copier.book.exposure(address) == copier.book.recomputed_value(address)
    return steps


@PROPERTY_SETTINGS
@given(data=st.data())
def test_policy_invariants_hold_on_every_decision(data: st.DataObject) -> None:
    cfgs = {LEADER: data.draw(configs(LEADER)), OTHER: data.draw(configs(OTHER))}
    for step in drive(cfgs, data.draw(trades())):
        d, cfg = step.decision, step.cfg
        key = (d.leader, d.asset)
        # one leader's decision never touches another leader's attributed shares
        for other_key, shares in step.held_before.items():
            if other_key != key:
                assert step.held_after[other_key] == shares
        assert step.held_after[key] >= 0
        if d.rate is not None and cfg.mode is Mode.BUDGETED_DYNAMIC:
            assert cfg.r_min <= d.rate <= cfg.r_max
        if d.exec_shares == 0:
            assert step.held_after[key] == step.held_before[key]
            continue
        # shares on the size grid, never rounded up: notional = shares × price exactly
        assert d.exec_shares == d.exec_shares.quantize(D("0.01"))
        assert d.exec_price is not None
        assert d.exec_notional == d.exec_shares * d.exec_price
        if d.side is Side.BUY:
            assert d.exec_notional <= cfg.rails.max_exec_notional_usdc
            assert d.exec_notional <= cfg.rails.max_trade_pct_bankroll * cfg.bankroll_usdc
            if d.target_notional is not None and not d.netted_ids:
                assert d.exec_notional <= d.target_notional
            if cfg.hard_budget:
                event("executed BUY under a HARD budget")
                assert cfg.budget_usdc is not None
                assert d.attributed_exposure <= cfg.budget_usdc  # HARD: A_u after ≤ B_u
        else:
            event("executed SELL")
            # a sell never exceeds the leader's attributed shares
            assert d.exec_shares <= step.held_before[key]


def fills_anywhere_inside_the_bound(data: st.DataObject) -> Fill:
    """A venue that fills each order at any price its bound allows: a BUY at or below its
    limit (more shares for the same pUSD), a SELL at or above — away from the mark."""

    def fill(plan: OrderPlan, copier: Copier) -> Execution:
        cents = int(plan.limit_price * 100)
        if plan.side is Side.BUY:
            price = D(data.draw(st.integers(1, max(1, cents)), label="buy fill")) / 100
            shares = round_shares_down(plan.notional / price, D("0.01"))
        else:
            price = D(data.draw(st.integers(min(99, cents), 99), label="sell fill")) / 100
            shares = plan.shares
        if shares <= 0:
            return Execution(FillStatus.NONE)
        return Execution(FillStatus.FILLED, shares=shares, notional=shares * price, price=price)

    return fill


@PROPERTY_SETTINGS
@given(data=st.data())
def test_hard_budget_holds_whatever_the_fill_price(data: st.DataObject) -> None:
    """A_u after a BUY ≤ B_u even when fills land away from the mark: a cheap fill buys more
    shares, and the fill's price revalues the shares of that token already held."""
    cfgs = {LEADER: data.draw(configs(LEADER)), OTHER: data.draw(configs(OTHER))}
    for step in drive(cfgs, data.draw(trades()), fills_anywhere_inside_the_bound(data)):
        d, cfg = step.decision, step.cfg
        if d.side is Side.BUY and d.exec_shares > 0 and cfg.hard_budget:
            event("executed BUY under a HARD budget, fill away from the mark")
            assert cfg.budget_usdc is not None
            assert d.attributed_exposure <= cfg.budget_usdc


def _comparable(decision: Decision) -> dict[str, Any]:
    record = decision.to_record()
    record.pop("config_version")
    record["reasons"] = [r for r in record["reasons"] if r != "MODE_FALLBACK_FIXED_RATE"]
    return record


def _replay_configs(data: dict[str, Any], tape: list[LeaderTrade]) -> list[dict[str, Any]]:
    loaded = config(data)
    return [_comparable(s.decision) for s in drive(loaded.leaders, tape)]


leader_entries = st.fixed_dictionaries(
    {
        "sizing_mode_override": st.sampled_from(["INHERIT", "FIXED_RATE", "BUDGETED_DYNAMIC"]),
        "budget_usdc": st.integers(1, 100),
        "fixed_copy_rate": st.sampled_from([None, "0.005", "0.02"]),
    }
)


@PROPERTY_SETTINGS
@given(
    tape=trades(),
    a=leader_entries,
    b=leader_entries,
    default=st.sampled_from(["FIXED_RATE", "BUDGETED_DYNAMIC"]),
)
def test_master_switch_off_is_exactly_fixed_rate(
    tape: list[LeaderTrade], a: dict[str, Any], b: dict[str, Any], default: str
) -> None:
    def leaders(force_fixed: bool) -> list[dict[str, Any]]:
        out = []
        for address, entry in ((LEADER, a), (OTHER, b)):
            item = {"address": address, "name": address[:8], "budget_usdc": entry["budget_usdc"]}
            if entry["fixed_copy_rate"]:
                item["fixed_copy_rate"] = entry["fixed_copy_rate"]
            item["sizing_mode_override"] = (
                "FIXED_RATE" if force_fixed else entry["sizing_mode_override"]
            )
            out.append(item)
        return out

    switched_off = {
        "sizing": {"sizing_mode_default": default, "budgeted_dynamic_enabled": False},
        "leaders": leaders(force_fixed=False),
    }
    all_fixed = {"sizing": {"sizing_mode_default": "FIXED_RATE"}, "leaders": leaders(True)}
    assert _replay_configs(switched_off, tape) == _replay_configs(all_fixed, tape)


@PROPERTY_SETTINGS
@given(
    tape=trades(),
    window=st.integers(0, 10),
    small_min=st.sampled_from(["0", "0.25", "0.9"]),
)
def test_netting_off_changes_nothing(tape: list[LeaderTrade], window: int, small_min: str) -> None:
    leaders = [{"address": LEADER, "name": "a"}, {"address": OTHER, "name": "b"}]
    plain = {"leaders": leaders}
    tuned = {
        "netting": {
            "small_trade_netting_mode": "OFF",
            "netting_window_s": window,
            "small_trade_min_exec_notional_usdc": small_min,
        },
        "leaders": [{**leaders[0], "netting": {"small_trade_netting_mode": False}}, leaders[1]],
    }
    records = _replay_configs(plain, tape)
    assert records == _replay_configs(tuned, tape)  # netting's own knobs do nothing when off
    netting_codes = {"NETTING_DEFERRED", "NETTING_FLUSH", "NETTED_BELOW_MIN"}
    assert len(records) == len(tape)  # one decision per trade, no flush records
    assert all(
        r["outcome"] != "DEFERRED" and not netting_codes & set(r["reasons"]) for r in records
    )


def test_deterministic_example_keeps_whale_within_budget() -> None:
    """A concrete burst: a whale buying $1M per trade cannot push A_u past B_u."""
    cfg = leader_cfg(
        mode=Mode.BUDGETED_DYNAMIC, budget="30", r_max="0.05", max_exec_notional_usdc="5"
    )
    burst = [trade("BUY", "0.40", "2500000", at=i) for i in range(20)]
    steps = drive({LEADER: cfg}, burst)
    executed = [s.decision for s in steps if s.decision.exec_notional > 0]
    assert executed
    assert all(d.attributed_exposure <= D("30") for d in executed)
    assert steps[-1].decision.reasons[-1].value == "BUDGET_EXHAUSTED"
    assert sum(d.exec_notional for d in executed) <= D("30")


@PROPERTY_SETTINGS
@given(data=st.data())
def test_fast_json_line_equals_the_record(data: st.DataObject) -> None:
    import json

    cfgs = {LEADER: data.draw(configs(LEADER)), OTHER: data.draw(configs(OTHER))}
    for step in drive(cfgs, data.draw(trades())):
        line = step.decision.to_json()
        assert json.loads(line) == step.decision.to_record()
        assert line == json.dumps(step.decision.to_record(), separators=(",", ":"))
