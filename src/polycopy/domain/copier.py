"""The sizing worker's state: one owner of attributed positions, netting buffers and what is
known of each leader. Replay and the daemon drive the same object.

Contract with the caller: every `OrderPlan` returned must be passed to `complete` (or
`abandon`) before the next call, so that each decision sees the fills before it. BUY plans
are reserved against the leader's budget from the moment they are returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from polycopy.domain.events import Decision, LeaderTrade, Side
from polycopy.domain.ledger import AttributedBook
from polycopy.domain.money import ZERO
from polycopy.domain.netting import NettingBook, NettingBuffer
from polycopy.domain.reasons import Reason
from polycopy.domain.settings import DEFAULT_MARKET, EffectiveLeaderConfig, MarketRules
from polycopy.domain.sizing import (
    Deferral,
    Execution,
    FillStatus,
    HeldState,
    LeaderExposure,
    OrderPlan,
    decide,
    decide_flush,
    finalize,
    gate,
)

Step = Decision | OrderPlan
MarketLookup = Callable[[str], MarketRules]


@dataclass(slots=True)
class LeaderState:
    """What is known of a leader: E_u, when it was refreshed, and per-asset positions P."""

    exposure: Decimal | None = None
    refreshed_at: datetime | None = None  # None in replay (no age to report)
    positions: dict[str, Decimal] = field(default_factory=dict)

    def observe(self, trade: LeaderTrade) -> None:
        """Adjust E_u and P by one observed leader trade (BUY +, SELL −, floor 0)."""
        held = self.positions.get(trade.asset, ZERO)
        if trade.side is Side.BUY:
            self.positions[trade.asset] = held + trade.size
            if self.exposure is not None:
                self.exposure += trade.notional
        else:
            self.positions[trade.asset] = max(held - trade.size, ZERO)
            if self.exposure is not None:
                self.exposure = max(self.exposure - trade.notional, ZERO)


class Copier:
    def __init__(
        self,
        configs: Mapping[str, EffectiveLeaderConfig],
        markets: MarketLookup | None = None,
        book: AttributedBook | None = None,
    ) -> None:
        self._configs: dict[str, EffectiveLeaderConfig] = dict(configs)
        self._markets: MarketLookup = markets or (lambda _asset: DEFAULT_MARKET)
        self.book = book or AttributedBook()
        self.netting = NettingBook()
        self.leaders: dict[str, LeaderState] = {}
        self._inflight: dict[str, EffectiveLeaderConfig] = {}  # decision id → cfg it used
        self._selling: dict[tuple[str, str], Decimal] = {}  # (leader, asset) → shares in flight
        self._retired: dict[str, EffectiveLeaderConfig] = {}  # leaders removed by a reload

    # --- configuration and leader knowledge ---------------------------------------------
    @property
    def configs(self) -> Mapping[str, EffectiveLeaderConfig]:
        return self._configs

    def set_configs(self, configs: Mapping[str, EffectiveLeaderConfig]) -> None:
        """Swap the effective configuration between two decisions (SIGHUP).

        A removed leader's last settings are kept for its open plans and netting buffers.
        """
        for address, cfg in self._configs.items():
            if address not in configs:
                self._retired[address] = cfg
        for address in configs:
            self._retired.pop(address, None)
        self._configs = dict(configs)

    def knows(self, leader: str) -> bool:
        """Followed now, or removed by a reload (its last settings are kept)."""
        return leader in self._configs or leader in self._retired

    def set_markets(self, markets: MarketLookup) -> None:
        self._markets = markets

    def market(self, asset: str) -> MarketRules:
        return self._markets(asset)

    def leader(self, address: str) -> LeaderState:
        state = self.leaders.get(address)
        if state is None:
            state = self.leaders[address] = LeaderState()
        return state

    def set_exposure(
        self,
        leader: str,
        value: Decimal,
        refreshed_at: datetime | None,
        positions: Mapping[str, Decimal] | None = None,
    ) -> None:
        state = self.leader(leader)
        state.exposure = value
        state.refreshed_at = refreshed_at
        if positions is not None:
            state.positions = dict(positions)

    def exposure_for(self, leader: str, asset: str, now: datetime) -> LeaderExposure:
        state = self.leaders.get(leader)
        if state is None:
            return LeaderExposure(value=None, position=None)
        age = (now - state.refreshed_at).total_seconds() if state.refreshed_at else None
        return LeaderExposure(value=state.exposure, position=state.positions.get(asset), age_s=age)

    def held_for(self, leader: str, asset: str) -> HeldState:
        """H less the shares that SELLs in flight will take: two exits of one position sized
        concurrently never sell the same shares twice."""
        return HeldState(
            shares=self.book.shares(leader, asset) - self._selling.get((leader, asset), ZERO),
            attributed=self.book.exposure(leader),
            mark=self.book.mark(asset),
        )

    # --- the decision loop ---------------------------------------------------------------
    def handle(
        self, trade: LeaderTrade, now: datetime, gate_reason: Reason | None = None
    ) -> list[Step]:
        """Decide one leader trade. Call `due(now)` first so that expired buffers flush first.

        `gate_reason` makes the shell's own verdict (STALE_EVENT, KILL_SWITCH, …) the decision.
        A trade of a leader that a reload removed is decided with its last settings, as
        LEADER_NOT_FOLLOWED.
        """
        cfg = self._configs.get(trade.leader)
        if cfg is None:
            cfg = self._retired[trade.leader]
            gate_reason = Reason.LEADER_NOT_FOLLOWED
        exposure = self.exposure_for(trade.leader, trade.asset, now)
        held = self.held_for(trade.leader, trade.asset)
        steps: list[Step] = []
        if gate_reason is not None:
            steps.append(gate(trade, cfg, exposure, held, gate_reason, now))
        else:
            verdict = decide(trade, cfg, exposure, held, self._markets(trade.asset), now)
            if isinstance(verdict, Deferral):
                steps.append(verdict.decision)
                buffer = self.netting.add(
                    leader=trade.leader,
                    asset=trade.asset,
                    condition_id=trade.condition_id,
                    signed_notional=verdict.signed_notional,
                    sell_shares=verdict.sell_shares,
                    price=verdict.price,
                    decision_id=verdict.decision.decision_id,
                    event_ts=trade.timestamp,
                    now=now,
                    window_s=cfg.netting.netting_window_s,
                )
                if abs(buffer.net_notional) >= cfg.rails.min_exec_notional_usdc:
                    self.netting.pop(buffer.key)
                    steps.append(self._flush(buffer, now))
            else:
                steps.append(self._track(verdict, cfg))
        self.leader(trade.leader).observe(trade)
        return steps

    def due(self, now: datetime) -> list[Step]:
        """Flushes of every netting buffer whose window ended at or before `now`."""
        return [self._flush(buffer, buffer.due_at) for buffer in self.netting.due(now)]

    def drain(self) -> list[Step]:
        """Flush every buffer at its own deadline (end of a replay)."""
        return [self._flush(buffer, buffer.due_at) for buffer in self.netting.drain()]

    def complete(self, plan: OrderPlan, execution: Execution) -> Decision:
        """Record what filled for a plan and return its decision."""
        cfg = self._inflight.pop(plan.decision_id, None) or self._config_of(plan.leader)
        if execution.reason is not Reason.EXEC_UNKNOWN:
            self.book.release(plan.leader, plan.decision_id)  # unknown keeps its reservation
            self._unreserve_sell(plan)
        if execution.status in (FillStatus.FILLED, FillStatus.PARTIAL) and execution.shares > 0:
            price = execution.price if execution.price is not None else plan.reference_price
            notional = execution.notional if execution.notional > 0 else None
            self.book.apply_fill(
                plan.leader, plan.asset, plan.side, execution.shares, price, notional
            )
        return finalize(plan, execution, self.book.exposure(plan.leader), cfg)

    def restore_open(self, plan: OrderPlan) -> None:
        """An order still open from before a restart (its outcome unknown): its SELL shares
        stay set aside until it is resolved. (A BUY's reservation comes from the ledger.)"""
        if plan.side is Side.SELL:
            self._track(plan, self._config_of(plan.leader))

    def abandon(self, plan: OrderPlan) -> None:
        """Forget a plan that will never be sent."""
        self._inflight.pop(plan.decision_id, None)
        self.book.release(plan.leader, plan.decision_id)
        self._unreserve_sell(plan)

    # --- internals -----------------------------------------------------------------------
    def _flush(self, buffer: NettingBuffer, now: datetime) -> Step:
        cfg = self._config_of(buffer.leader)
        exposure = self.exposure_for(buffer.leader, buffer.asset, now)
        held = self.held_for(buffer.leader, buffer.asset)
        verdict = decide_flush(buffer, cfg, exposure, held, self._markets(buffer.asset), now)
        return self._track(verdict, cfg)

    def _config_of(self, leader: str) -> EffectiveLeaderConfig:
        return self._configs.get(leader) or self._retired[leader]

    def _track(self, step: Step, cfg: EffectiveLeaderConfig) -> Step:
        if isinstance(step, OrderPlan):
            self._inflight[step.decision_id] = cfg
            if step.side is Side.BUY:
                self.book.reserve(step.leader, step.decision_id, step.reserve)
            else:
                key = (step.leader, step.asset)
                self._selling[key] = self._selling.get(key, ZERO) + step.shares
        return step

    def _unreserve_sell(self, plan: OrderPlan) -> None:
        key = (plan.leader, plan.asset)
        if plan.side is Side.SELL and key in self._selling:
            left = self._selling[key] - plan.shares
            if left > 0:
                self._selling[key] = left
            else:
                del self._selling[key]
