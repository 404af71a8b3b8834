"""The sizing policy (SPEC §2.1–2.5): a pure function from a leader trade to a decision.

`decide` returns either a final `Decision` (skipped or deferred) or an `OrderPlan` for the
executor. Once the executor reports what filled, `finalize` turns the plan into the decision
record. Nothing here reads a clock, logs or touches the network; `now` is an argument.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from polycopy.domain.events import Decision, LeaderTrade, Side
from polycopy.domain.money import (
    CENT,
    ZERO,
    buy_limit_price,
    round_down,
    round_shares_down,
    sell_limit_price,
)
from polycopy.domain.netting import NettingBuffer
from polycopy.domain.reasons import CAP_REASONS, Enforcement, Mode, Outcome, Reason
from polycopy.domain.settings import EffectiveLeaderConfig, MarketRules
from polycopy.domain.value import value


@value
class LeaderExposure:
    """What we know of the leader when a trade arrives."""

    value: Decimal | None  # E_u; None when it has never been known
    position: Decimal | None  # P: the leader's shares in this asset just before the trade
    age_s: float | None = None  # live only


@value
class HeldState:
    """Our side, for this leader and asset."""

    shares: Decimal  # H: our shares of the asset attributed to the leader
    attributed: Decimal  # A_u including reservations
    mark: Decimal | None = None  # the asset's mark, at which H is valued inside A_u


@value
class DecisionContext:
    """The fields every decision about one trade (or flush) shares."""

    decision_id: str
    ts: datetime
    event_ts: datetime | None
    leader: str
    leader_name: str
    asset: str
    condition_id: str
    side: Side
    leader_price: Decimal | None
    leader_size: Decimal | None
    leader_notional: Decimal | None
    mode: Mode
    enforcement: Enforcement | None
    rate: Decimal | None
    leader_exposure: Decimal | None
    budget: Decimal | None
    target_notional: Decimal | None
    netted_ids: tuple[str, ...]
    exposure_age_s: float | None
    config_version: str


@value
class OrderPlan:
    """An order the policy wants executed. BUYs are sized in USDC, SELLs in shares."""

    context: DecisionContext
    side: Side
    notional: Decimal  # BUY: most USDC to spend; SELL: shares × reference price
    shares: Decimal  # BUY: fewest shares at the limit; SELL: shares to sell
    limit_price: Decimal  # worst acceptable price, on the tick grid
    reference_price: Decimal  # the leader's price (or the flush's last price)
    reasons: tuple[Reason, ...]
    # BUY: what the order may add to A_u, reserved against the budget while it is open —
    # the notional plus the revaluation of shares already held (see `_revaluation`)
    budget_charge: Decimal | None = None

    @property
    def reserve(self) -> Decimal:
        return self.notional if self.budget_charge is None else self.budget_charge

    @property
    def decision_id(self) -> str:
        return self.context.decision_id

    @property
    def leader(self) -> str:
        return self.context.leader

    @property
    def asset(self) -> str:
        return self.context.asset


@value
class Deferral:
    """A small trade to park in the netting buffer; `decision` is its DEFERRED record."""

    decision: Decision
    signed_notional: Decimal
    price: Decimal
    sell_shares: Decimal = ZERO  # a SELL's copy shares (fraction × H), unrounded


class FillStatus(StrEnum):
    FILLED = "FILLED"
    PARTIAL = "PARTIAL"
    NONE = "NONE"  # nothing matched (no liquidity within the bound)
    FAILED = "FAILED"  # rejected or unknown


@value
class Execution:
    """What an executor reports back for one plan."""

    status: FillStatus
    shares: Decimal = ZERO
    notional: Decimal = ZERO
    price: Decimal | None = None  # volume-weighted fill price
    reason: Reason | None = None  # EXEC_* reason when not a clean full fill
    fee: Decimal = ZERO  # taker fees paid in pUSD (on top of a BUY's notional)


Verdict = Decision | OrderPlan | Deferral


# --- rate ---------------------------------------------------------------------------------
def effective_rate(
    cfg: EffectiveLeaderConfig, exposure: Decimal | None
) -> tuple[Decimal | None, list[Reason]]:
    """r_u and its info reasons (SPEC §2.1–2.2). None when BUDGETED_DYNAMIC lacks E_u."""
    reasons = [Reason.MODE_FALLBACK_FIXED_RATE] if cfg.mode_fell_back else []
    if cfg.mode is Mode.FIXED_RATE:
        return cfg.fixed_copy_rate, reasons
    if exposure is None:
        return None, reasons
    if cfg.budget_usdc is None:  # config validation forbids this; fail safe anyway
        return ZERO, reasons
    if exposure <= 0:  # B/E = +inf
        reasons.append(Reason.RATE_CLAMPED_MAX)
        return cfg.r_max, reasons
    raw = cfg.budget_usdc / exposure
    if raw < cfg.r_min:
        reasons.append(Reason.RATE_CLAMPED_MIN)
        return cfg.r_min, reasons
    if raw > cfg.r_max:
        reasons.append(Reason.RATE_CLAMPED_MAX)
        return cfg.r_max, reasons
    return raw, reasons


# --- entry points -------------------------------------------------------------------------
def decide(
    trade: LeaderTrade,
    cfg: EffectiveLeaderConfig,
    exposure: LeaderExposure,
    held: HeldState,
    market: MarketRules,
    now: datetime,
) -> Verdict:
    rate, reasons = effective_rate(cfg, exposure.value)
    ctx = _trade_context(trade, cfg, exposure, rate, now)
    if trade.side is Side.BUY:
        return _decide_buy(trade, cfg, exposure, held, market, ctx, reasons)
    return _decide_sell(trade, cfg, exposure, held, market, ctx, reasons)


def gate(
    trade: LeaderTrade,
    cfg: EffectiveLeaderConfig,
    exposure: LeaderExposure,
    held: HeldState,
    reason: Reason,
    now: datetime,
) -> Decision:
    """A SKIPPED decision decided by the shell before sizing (STALE_EVENT, KILL_SWITCH, …)."""
    rate, reasons = effective_rate(cfg, exposure.value)
    ctx = _trade_context(trade, cfg, exposure, rate, now)
    return _skip(ctx, cfg, held, [*reasons, reason])


def decide_flush(
    buffer: NettingBuffer,
    cfg: EffectiveLeaderConfig,
    exposure: LeaderExposure,
    held: HeldState,
    market: MarketRules,
    now: datetime,
) -> Decision | OrderPlan:
    """Turn a netting buffer into one BUY or SELL that passes the rails again from step 4."""
    net = buffer.net_notional
    side = Side.BUY if net >= 0 else Side.SELL
    ids = tuple(buffer.decision_ids)
    ctx = DecisionContext(
        decision_id=flush_id(ids),
        ts=now,
        event_ts=buffer.last_event_ts,
        leader=cfg.address,
        leader_name=cfg.name,
        asset=buffer.asset,
        condition_id=buffer.condition_id,
        side=side,
        leader_price=buffer.last_price,
        leader_size=None,
        leader_notional=None,
        mode=cfg.mode,
        enforcement=_enforcement(cfg),
        rate=None,
        leader_exposure=exposure.value,
        budget=_budget(cfg),
        target_notional=abs(net),
        netted_ids=ids,
        exposure_age_s=exposure.age_s,
        config_version=cfg.config_version,
    )
    reasons: list[Reason] = [Reason.NETTING_FLUSH]
    if abs(net) < cfg.netting.small_trade_min_exec_notional_usdc or net == 0:
        return _skip(ctx, cfg, held, [*reasons, Reason.NETTED_BELOW_MIN])
    if side is Side.BUY:
        revaluation = _revaluation(cfg, held, market, buffer.last_price)
        allowed = _apply_budget(_apply_caps(net, cfg, reasons), cfg, held, reasons, revaluation)
        if allowed is None:
            return _skip(ctx, cfg, held, reasons)
        return _buy_order(ctx, cfg, held, market, allowed, buffer.last_price, reasons, revaluation)
    if held.shares <= 0:
        return _skip(ctx, cfg, held, [*reasons, Reason.NO_POSITION_TO_SELL])
    # the deferred SELLs' own shares, less the part that the buffer's BUYs offset by value
    wanted = round_shares_down(buffer.sell_shares * -net / buffer.sell_notional, market.size_step)
    shares = min(wanted, round_shares_down(held.shares, market.size_step))
    return _sell_order(ctx, cfg, held, market, shares, buffer.last_price, reasons)


def finalize(
    plan: OrderPlan,
    execution: Execution,
    attributed_after: Decimal,
    cfg: EffectiveLeaderConfig,
) -> Decision:
    """The decision record once the executor has reported what filled."""
    reasons = list(plan.reasons)
    if execution.reason is not None:
        reasons.append(execution.reason)
    if execution.status is FillStatus.FILLED:
        capped = any(r in CAP_REASONS for r in reasons)
        outcome = Outcome.CAPPED if capped else Outcome.EXECUTED
    elif execution.status is FillStatus.PARTIAL:
        if Reason.EXEC_PARTIAL_FILL not in reasons:
            reasons.append(Reason.EXEC_PARTIAL_FILL)
        outcome = Outcome.CAPPED
    elif execution.status is FillStatus.NONE:
        outcome = Outcome.SKIPPED
    else:
        outcome = Outcome.FAILED
    filled = execution.status in (FillStatus.FILLED, FillStatus.PARTIAL)
    return _record(
        plan.context,
        outcome=outcome,
        reasons=reasons,
        attributed=attributed_after,
        cfg=cfg,
        exec_notional=execution.notional if filled else ZERO,
        exec_shares=execution.shares if filled else ZERO,
        exec_price=execution.price if filled else None,
    )


def flush_id(decision_ids: tuple[str, ...]) -> str:
    return hashlib.sha256(("flush|" + "|".join(decision_ids)).encode()).hexdigest()[:32]


# --- BUY ----------------------------------------------------------------------------------
def _decide_buy(
    trade: LeaderTrade,
    cfg: EffectiveLeaderConfig,
    exposure: LeaderExposure,
    held: HeldState,
    market: MarketRules,
    ctx: DecisionContext,
    reasons: list[Reason],
) -> Verdict:
    rails = cfg.rails
    # 1–3: filters on the leader's trade
    if trade.notional < rails.min_leader_trade_notional_usdc:
        return _skip(ctx, cfg, held, [*reasons, Reason.LEADER_NOTIONAL_BELOW_MIN])
    if trade.price > rails.max_price_per_share:
        return _skip(ctx, cfg, held, [*reasons, Reason.PRICE_ABOVE_MAX])
    if ctx.rate is None:  # BUDGETED_DYNAMIC without a known E_u
        return _skip(ctx, cfg, held, [*reasons, Reason.EXPOSURE_UNAVAILABLE])
    # 4–5: caps and budget headroom
    revaluation = _revaluation(cfg, held, market, trade.price)
    allowed = _apply_budget(
        _apply_caps(trade.notional * ctx.rate, cfg, reasons), cfg, held, reasons, revaluation
    )
    if allowed is None:
        return _skip(ctx, cfg, held, reasons)
    # 6: too small to send on its own
    if allowed < rails.min_exec_notional_usdc:
        return _small(ctx, cfg, held, reasons, allowed, trade.price)
    # 7–8: exchange rules, then the order
    return _buy_order(ctx, cfg, held, market, allowed, trade.price, reasons, revaluation)


def _apply_caps(
    exec_notional: Decimal, cfg: EffectiveLeaderConfig, reasons: list[Reason]
) -> Decimal:
    rails = cfg.rails
    if exec_notional > rails.max_exec_notional_usdc:
        exec_notional = rails.max_exec_notional_usdc
        reasons.append(Reason.CAPPED_MAX_EXEC_NOTIONAL)
    bankroll_cap = rails.max_trade_pct_bankroll * cfg.bankroll_usdc
    if exec_notional > bankroll_cap:
        exec_notional = bankroll_cap
        reasons.append(Reason.CAPPED_MAX_TRADE_PCT_BANKROLL)
    return exec_notional


def _revaluation(
    cfg: EffectiveLeaderConfig, held: HeldState, market: MarketRules, reference: Decimal
) -> Decimal:
    """How much a BUY's fill can lift the value of the shares of this asset already held.

    A fill becomes the asset's mark (`AttributedBook.apply_fill`), so H shares valued at the
    old mark are revalued at the fill price, which a BUY bounds by its limit price. HARD
    headroom sets this aside, so that the BUY itself never takes A_u above B_u.
    """
    if not cfg.hard_budget or held.shares <= 0 or held.mark is None:
        return ZERO
    limit = buy_limit_price(reference, cfg.max_slippage, market.tick_size)
    return held.shares * (limit - held.mark) if limit > held.mark else ZERO


def _apply_budget(
    exec_notional: Decimal,
    cfg: EffectiveLeaderConfig,
    held: HeldState,
    reasons: list[Reason],
    revaluation: Decimal = ZERO,
) -> Decimal | None:
    """HARD budgets only: None when the leader has no headroom left (BUDGET_EXHAUSTED)."""
    if not cfg.hard_budget or cfg.budget_usdc is None:
        return exec_notional
    headroom = cfg.budget_usdc - held.attributed - revaluation
    if headroom < cfg.rails.min_exec_notional_usdc:
        reasons.append(Reason.BUDGET_EXHAUSTED)
        return None
    if exec_notional > headroom:
        reasons.append(Reason.CAPPED_BUDGET_HEADROOM)
        return headroom
    return exec_notional


def _buy_order(
    ctx: DecisionContext,
    cfg: EffectiveLeaderConfig,
    held: HeldState,
    market: MarketRules,
    exec_notional: Decimal,
    reference: Decimal,
    reasons: list[Reason],
    revaluation: Decimal = ZERO,
) -> Decision | OrderPlan:
    limit = buy_limit_price(reference, cfg.max_slippage, market.tick_size)
    spend = round_down(exec_notional, CENT)  # a marketable BUY gives USDC with 2 decimals
    shares = round_shares_down(spend / limit, market.size_step)
    if spend < market.min_order_notional or shares <= 0:
        return _skip(ctx, cfg, held, [*reasons, Reason.MARKET_MIN_ORDER_SIZE])
    return OrderPlan(
        context=ctx,
        side=Side.BUY,
        notional=spend,
        shares=shares,
        limit_price=limit,
        reference_price=reference,
        reasons=tuple(reasons),
        budget_charge=spend + revaluation if revaluation else None,
    )


# --- SELL ---------------------------------------------------------------------------------
def _decide_sell(
    trade: LeaderTrade,
    cfg: EffectiveLeaderConfig,
    exposure: LeaderExposure,
    held: HeldState,
    market: MarketRules,
    ctx: DecisionContext,
    reasons: list[Reason],
) -> Verdict:
    if held.shares <= 0:
        return _skip(ctx, cfg, held, [*reasons, Reason.NO_POSITION_TO_SELL])
    position = exposure.position
    if position is None or position <= 0 or trade.size >= position:
        fraction = Decimal(1)
    else:
        fraction = trade.size / position
    whole = round_shares_down(held.shares, market.size_step)
    if fraction == 1:
        shares = whole  # full exit: all of H that the venue can express
    else:
        shares = min(round_shares_down(fraction * held.shares, market.size_step), whole)
        notional = fraction * held.shares * trade.price
        if notional < cfg.rails.min_exec_notional_usdc:
            return _small(ctx, cfg, held, reasons, -notional, trade.price, fraction * held.shares)
    return _sell_order(ctx, cfg, held, market, shares, trade.price, reasons)


def _sell_order(
    ctx: DecisionContext,
    cfg: EffectiveLeaderConfig,
    held: HeldState,
    market: MarketRules,
    shares: Decimal,
    reference: Decimal,
    reasons: list[Reason],
) -> Decision | OrderPlan:
    notional = shares * reference
    if shares <= 0 or notional < market.min_order_notional:
        return _skip(ctx, cfg, held, [*reasons, Reason.MARKET_MIN_ORDER_SIZE])
    return OrderPlan(
        context=ctx,
        side=Side.SELL,
        notional=notional,
        shares=shares,
        limit_price=sell_limit_price(reference, cfg.max_slippage, market.tick_size),
        reference_price=reference,
        reasons=tuple(reasons),
    )


# --- records ------------------------------------------------------------------------------
def _small(
    ctx: DecisionContext,
    cfg: EffectiveLeaderConfig,
    held: HeldState,
    reasons: list[Reason],
    signed_notional: Decimal,
    price: Decimal,
    sell_shares: Decimal = ZERO,
) -> Decision | Deferral:
    """Step 6: net a small trade when netting is on, otherwise skip it. Never round up."""
    if not cfg.netting.enabled:
        return _skip(ctx, cfg, held, [*reasons, Reason.EXEC_BELOW_MIN])
    record = _record(
        ctx,
        outcome=Outcome.DEFERRED,
        reasons=[*reasons, Reason.NETTING_DEFERRED],
        attributed=held.attributed,
        cfg=cfg,
    )
    return Deferral(
        decision=record, signed_notional=signed_notional, price=price, sell_shares=sell_shares
    )


def _skip(
    ctx: DecisionContext, cfg: EffectiveLeaderConfig, held: HeldState, reasons: list[Reason]
) -> Decision:
    return _record(
        ctx, outcome=Outcome.SKIPPED, reasons=reasons, attributed=held.attributed, cfg=cfg
    )


def _record(
    ctx: DecisionContext,
    *,
    outcome: Outcome,
    reasons: list[Reason],
    attributed: Decimal,
    cfg: EffectiveLeaderConfig,
    exec_notional: Decimal = ZERO,
    exec_shares: Decimal = ZERO,
    exec_price: Decimal | None = None,
) -> Decision:
    headroom = (
        cfg.budget_usdc - attributed if cfg.hard_budget and cfg.budget_usdc is not None else None
    )
    return Decision(
        decision_id=ctx.decision_id,
        ts=ctx.ts,
        event_ts=ctx.event_ts,
        leader=ctx.leader,
        leader_name=ctx.leader_name,
        asset=ctx.asset,
        condition_id=ctx.condition_id,
        side=ctx.side,
        leader_price=ctx.leader_price,
        leader_size=ctx.leader_size,
        leader_notional=ctx.leader_notional,
        mode=ctx.mode,
        enforcement=ctx.enforcement,
        rate=ctx.rate,
        leader_exposure=ctx.leader_exposure,
        budget=ctx.budget,
        target_notional=ctx.target_notional,
        exec_notional=exec_notional,
        exec_shares=exec_shares,
        exec_price=exec_price,
        outcome=outcome,
        reasons=tuple(reasons),
        attributed_exposure=attributed,
        headroom=headroom,
        netted_ids=ctx.netted_ids,
        exposure_age_s=ctx.exposure_age_s,
        config_version=ctx.config_version,
    )


def _trade_context(
    trade: LeaderTrade,
    cfg: EffectiveLeaderConfig,
    exposure: LeaderExposure,
    rate: Decimal | None,
    now: datetime,
) -> DecisionContext:
    notional = trade.notional
    return DecisionContext(
        decision_id=trade.trade_id,
        ts=now,
        event_ts=trade.timestamp,
        leader=trade.leader,
        leader_name=cfg.name,
        asset=trade.asset,
        condition_id=trade.condition_id,
        side=trade.side,
        leader_price=trade.price,
        leader_size=trade.size,
        leader_notional=notional,
        mode=cfg.mode,
        enforcement=_enforcement(cfg),
        rate=rate,
        leader_exposure=exposure.value,
        budget=_budget(cfg),
        target_notional=notional * rate if rate is not None else None,
        netted_ids=(),
        exposure_age_s=exposure.age_s,
        config_version=cfg.config_version,
    )


def _enforcement(cfg: EffectiveLeaderConfig) -> Enforcement | None:
    return cfg.enforcement if cfg.mode is Mode.BUDGETED_DYNAMIC else None


def _budget(cfg: EffectiveLeaderConfig) -> Decimal | None:
    return cfg.budget_usdc if cfg.mode is Mode.BUDGETED_DYNAMIC else None
