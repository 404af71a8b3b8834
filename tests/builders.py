"""Small builders for tests: effective configs and leader trades with sensible defaults."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from polycopy.config import LoadedConfig, parse_config
from polycopy.domain.events import LeaderTrade, Side
from polycopy.domain.reasons import Enforcement, Mode
from polycopy.domain.settings import EffectiveLeaderConfig, NettingRules, Rails

D = Decimal
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LEADER = "0x" + "11" * 20
OTHER = "0x" + "22" * 20
ASSET = "1234567890"


def rails(**overrides: Any) -> Rails:
    values: dict[str, Decimal] = {
        "min_leader_trade_notional_usdc": D("0"),
        "min_exec_notional_usdc": D("1"),
        "max_exec_notional_usdc": D("25"),
        "max_trade_pct_bankroll": D("0.10"),
        "max_price_per_share": D("0.97"),
    }
    values.update({k: D(str(v)) for k, v in overrides.items()})
    return Rails(**values)


def leader_cfg(
    address: str = LEADER,
    *,
    mode: Mode = Mode.FIXED_RATE,
    rate: str = "0.01",
    budget: str | None = None,
    r_min: str = "0",
    r_max: str = "0.05",
    enforcement: Enforcement = Enforcement.HARD,
    netting: bool = False,
    netting_window_s: str = "2",
    small_min: str = "0.5",
    bankroll: str = "200",
    fell_back: bool = False,
    slippage: str = "0.02",
    **rail_overrides: Any,
) -> EffectiveLeaderConfig:
    return EffectiveLeaderConfig(
        address=address,
        name=address[:8],
        mode=mode,
        mode_fell_back=fell_back,
        fixed_copy_rate=D(rate),
        budget_usdc=D(budget) if budget is not None else None,
        r_min=D(r_min),
        r_max=D(r_max),
        enforcement=enforcement,
        rails=rails(**rail_overrides),
        netting=NettingRules(netting, D(small_min), D(netting_window_s)),
        bankroll_usdc=D(bankroll),
        max_slippage=D(slippage),
        config_version="test",
    )


_counter = 0


def trade(
    side: Side | str = Side.BUY,
    price: str | Decimal = "0.50",
    size: str | Decimal = "100",
    *,
    leader: str = LEADER,
    asset: str = ASSET,
    at: datetime | float = 0,
    tx: str | None = None,
) -> LeaderTrade:
    global _counter
    _counter += 1
    when = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    tx_hash = tx or "0x" + hashlib.sha256(str(_counter).encode()).hexdigest()
    return LeaderTrade(
        leader=leader,
        asset=asset,
        condition_id="0x" + "ab" * 32,
        side=Side(side),
        price=D(str(price)),
        size=D(str(size)),
        timestamp=when,
        tx_hash=tx_hash,
    )


def config(data: dict[str, Any]) -> LoadedConfig:
    return parse_config(data, environ={})
