"""Backtest: drive recorded leader trades through the same policy and ledger code as the daemon.

The simulated clock is the trade time. Paper fills happen at the asset's last tape price,
which for a copied trade is the leader's own price (SPEC §5) — or, with recorded order books
(`--book-dir`), by walking the latest book at or before the trade with the paper executor's
own book walk (`book_fill`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from polycopy.config import LoadedConfig
from polycopy.domain.copier import Copier, Step
from polycopy.domain.events import Decision, Side
from polycopy.domain.money import ZERO, fmt, round_shares_down
from polycopy.domain.reasons import Outcome, Reason
from polycopy.domain.settings import DEFAULT_MARKET, MarketRules
from polycopy.domain.sizing import Execution, FillStatus, OrderPlan
from polycopy.execution.amounts import VALID_TICKS
from polycopy.execution.book_source import BookDirectory
from polycopy.execution.book_walk import walk_plan
from polycopy.tapes import PositionsSnapshot, Tape, TapeError, TapeStats, read_positions, read_tapes

Fill = Callable[[OrderPlan, Copier], Execution]


def fill_at_last_price(plan: OrderPlan, copier: Copier) -> Execution:
    """Paper fill at the asset's last tape price, within the plan's price bound."""
    price = copier.book.mark(plan.asset) or plan.reference_price
    if (plan.side is Side.BUY and price > plan.limit_price) or (
        plan.side is Side.SELL and price < plan.limit_price
    ):
        return Execution(FillStatus.NONE, reason=Reason.EXEC_SLIPPAGE_LIMIT)
    if plan.side is Side.BUY:
        shares = round_shares_down(plan.notional / price, copier.market(plan.asset).size_step)
    else:
        shares = plan.shares
    if shares <= 0:
        return Execution(FillStatus.NONE, reason=Reason.EXEC_NO_LIQUIDITY)
    return Execution(FillStatus.FILLED, shares=shares, notional=shares * price, price=price)


def book_fill(books: BookDirectory, order_type: str = "FAK") -> Fill:
    """Paper fills against recorded books: the latest book of the token at or before the
    decision time, walked within the plan's bound (FAK partial, FOK all-or-nothing). A token
    without a book falls back to `fill_at_last_price`."""
    fok = order_type == "FOK"

    def fill(plan: OrderPlan, copier: Copier) -> Execution:
        moment = plan.context.ts
        book = books.at(plan.asset, int(moment.timestamp() * 1000))
        if book is None:
            return fill_at_last_price(plan, copier)
        tick = book.tick_size if book.tick_size in VALID_TICKS else None
        rules = copier.market(plan.asset)
        result = walk_plan(plan, book, fok=fok, tick=tick, min_notional=rules.min_order_notional)
        if isinstance(result, Reason):
            return Execution(FillStatus.NONE, reason=result)
        return result.execution()

    return fill


@dataclass
class LeaderSummary:
    leader: str
    name: str
    mode: str
    budget: Decimal | None
    trades: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    exec_notional: Decimal = ZERO
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    attributed_exposure: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO

    def count(self, decision: Decision) -> None:
        self.outcomes[decision.outcome] += 1  # members are str: the counters key by value
        self.reasons.update(decision.reasons)
        if decision.exec_notional:
            self.exec_notional += decision.exec_notional
            if decision.side is Side.BUY:
                self.bought += decision.exec_notional
            else:
                self.sold += decision.exec_notional

    @property
    def utilization(self) -> Decimal | None:
        if not self.budget:
            return None
        return self.attributed_exposure / self.budget

    def to_json(self) -> dict[str, Any]:
        util = self.utilization
        return {
            "leader": self.leader,
            "name": self.name,
            "mode": self.mode,
            "budget": fmt(self.budget) if self.budget is not None else None,
            "trades": self.trades,
            "executed": self.outcomes[Outcome.EXECUTED.value],
            "capped": self.outcomes[Outcome.CAPPED.value],
            "skipped": self.outcomes[Outcome.SKIPPED.value],
            "deferred": self.outcomes[Outcome.DEFERRED.value],
            "failed": self.outcomes[Outcome.FAILED.value],
            "exec_notional": fmt(self.exec_notional),
            "bought_notional": fmt(self.bought),
            "sold_notional": fmt(self.sold),
            "attributed_exposure": fmt(_cents(self.attributed_exposure)),
            "utilization": fmt(util.quantize(Decimal("0.0001"))) if util is not None else None,
            "realized_pnl": fmt(_cents(self.realized_pnl)),
            "unrealized_pnl": fmt(_cents(self.unrealized_pnl)),
            "reasons": dict(sorted(self.reasons.items())),
        }


@dataclass
class ReplayResult:
    leaders: list[LeaderSummary]
    stats: TapeStats
    decisions: int
    duplicates: int
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "tape": {
                "rows": self.stats.rows,
                "trades": self.stats.trades,
                "duplicates": self.duplicates,
                "non_trade": dict(sorted(self.stats.non_trade.items())),
                "other_wallet": self.stats.other_wallet,
                "malformed": self.stats.malformed,
            },
            "leaders": [s.to_json() for s in self.leaders],
        }


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def load_markets(path: Path | str | None) -> Callable[[str], MarketRules]:
    """Per-market rules from a JSON file `{token_id: {tick_size, min_order_notional,
    size_step}}`; every other market uses the default profile (tick 0.01, $1 minimum)."""
    if path is None:
        return lambda _asset: DEFAULT_MARKET
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, json.JSONDecodeError) as exc:
        raise TapeError(f"{path}: not a readable JSON market file: {exc}") from None
    if not isinstance(raw, dict):
        raise TapeError(f"{path}: expected an object keyed by token id")
    rules: dict[str, MarketRules] = {}
    for token, spec in raw.items():
        if not isinstance(spec, dict):
            raise TapeError(f"{path}: {token}: expected an object")
        unknown = set(spec) - {"tick_size", "min_order_notional", "size_step"}
        if unknown:
            raise TapeError(f"{path}: {token}: unknown keys {sorted(unknown)}")
        try:
            rules[str(token)] = MarketRules(
                tick_size=Decimal(str(spec.get("tick_size", DEFAULT_MARKET.tick_size))),
                size_step=Decimal(str(spec.get("size_step", DEFAULT_MARKET.size_step))),
                min_order_notional=Decimal(
                    str(spec.get("min_order_notional", DEFAULT_MARKET.min_order_notional))
                ),
            )
        except ArithmeticError:
            raise TapeError(f"{path}: {token}: values must be numbers") from None
    return lambda asset: rules.get(asset, DEFAULT_MARKET)


def replay(
    config: LoadedConfig,
    tapes: Sequence[Path | str],
    out: IO[str],
    positions: Sequence[Path | str] = (),
    markets: Callable[[str], MarketRules] | None = None,
    fill: Fill = fill_at_last_price,
) -> ReplayResult:
    leaders = frozenset(config.leaders)
    tape = read_tapes(tapes, leaders)
    copier = Copier(config.leaders, markets)
    for leader in config.leaders:
        copier.set_exposure(leader, ZERO, None)
    warnings: list[str] = []
    seeded: dict[str, PositionsSnapshot] = {}
    for path in positions:
        before = len(tape.stats.problems)
        for snapshot in read_positions(path, tape.stats.problems):
            if snapshot.leader not in copier.configs:
                warnings.append(f"{path}: positions of {snapshot.leader}, not a followed leader")
                continue
            if snapshot.leader in seeded:  # pages of one snapshot, or several snapshots
                warnings.append(
                    f"{path}: more positions of {snapshot.leader}: added to the earlier ones"
                )
                snapshot = seeded[snapshot.leader].combined(snapshot)
            seeded[snapshot.leader] = snapshot
            _seed(copier, snapshot)
        tape.stats.malformed += len(tape.stats.problems) - before
    summaries = {
        address: LeaderSummary(
            leader=address,
            name=cfg.name,
            mode=cfg.mode.value,
            budget=cfg.budget_usdc if cfg.mode.value == "BUDGETED_DYNAMIC" else None,
        )
        for address, cfg in config.leaders.items()
    }
    written = 0
    for decision in _run(copier, tape, fill, summaries):
        out.write(decision.to_json())
        out.write("\n")
        summaries[decision.leader].count(decision)
        written += 1
    for address, summary in summaries.items():
        summary.attributed_exposure = copier.book.exposure(address)
        pnl = copier.book.pnl(address)
        summary.realized_pnl = pnl.realized
        summary.unrealized_pnl = pnl.unrealized
    duplicates = tape.stats.trades - sum(s.trades for s in summaries.values())
    return ReplayResult(
        leaders=[summaries[a] for a in sorted(summaries, key=lambda a: (summaries[a].name, a))],
        stats=tape.stats,
        decisions=written,
        duplicates=duplicates,
        warnings=warnings,
    )


def _seed(copier: Copier, snapshot: PositionsSnapshot) -> None:
    if snapshot.leader not in copier.configs:
        return
    copier.set_exposure(snapshot.leader, snapshot.exposure, None, snapshot.positions)


def _run(
    copier: Copier, tape: Tape, fill: Fill, summaries: dict[str, LeaderSummary]
) -> Iterator[Decision]:
    seen: set[str] = set()
    for trade in tape.trades:
        if trade.trade_id in seen:
            continue  # the same fill from two files: one decision
        seen.add(trade.trade_id)
        summaries[trade.leader].trades += 1
        now = trade.timestamp
        yield from _execute(copier, copier.due(now), fill)
        copier.book.set_mark(trade.asset, trade.price)
        yield from _execute(copier, copier.handle(trade, now), fill)
    yield from _execute(copier, copier.drain(), fill)


def _execute(copier: Copier, steps: Iterable[Step], fill: Fill) -> Iterator[Decision]:
    for step in steps:
        if isinstance(step, OrderPlan):
            yield copier.complete(step, fill(step, copier))
        else:
            yield step
