"""A paper or live copier wired as the daemon will wire it — real Copier, ExecutionService,
Ledger (SQLite file), executor and, for live, the real SDK — against an in-process simulator."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from polycopy.config import EndpointsSection, parse_config
from polycopy.domain.copier import Copier
from polycopy.domain.events import Decision, LeaderTrade, Side
from polycopy.domain.sizing import OrderPlan
from polycopy.execution.clob_http import ClobHttp
from polycopy.execution.live import LiveExecutor
from polycopy.execution.markets import MarketCatalog
from polycopy.execution.paper import PaperExecutor
from polycopy.execution.port import Executor
from polycopy.execution.service import ExecutionService
from polycopy.execution.settings import ExecutionSettings
from polycopy.secrets import load_credentials
from polycopy.sim import SimServer
from polycopy.store.ledger import Ledger

LEADER = "0x00000000000000000000000000000000000a11ce"
D = Decimal


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float = 5.0,  # noqa: ASYNC109 - the brief's `eventually(cond, timeout)`
    interval: float = 0.02,
) -> None:
    """Wait until `condition` holds (never a bare sleep in a test)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def one_certificate(directory: Path) -> Path:
    """A CA bundle of one certificate (the first of certifi's): cheap to load."""
    import certifi

    text = Path(certifi.where()).read_text(encoding="ascii")
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    start = text.index("-----BEGIN CERTIFICATE-----")
    path = directory / "one-ca.pem"
    path.write_text(text[start:end] + "\n", encoding="ascii")
    return path


def new_key() -> str:
    return "0x" + bytes(Account.create().key).hex()


@dataclass
class Rig:
    mode: str
    sim: SimServer
    ledger: Ledger
    copier: Copier
    service: ExecutionService
    executor: Executor
    catalog: MarketCatalog
    key: str | None = None
    trades: int = 0
    decisions: list[Decision] = field(default_factory=list)

    async def copy(
        self, token: str, side: str, price: str, size: str, condition_id: str = ""
    ) -> Decision:
        """One leader trade through sizing and execution; returns its decision."""
        self.trades += 1
        trade = LeaderTrade(
            leader=LEADER,
            asset=token,
            condition_id=condition_id or self.condition_of(token),
            side=Side(side),
            price=D(price),
            size=D(size),
            timestamp=datetime.now(UTC),
            tx_hash="0x" + secrets.token_hex(32),
        )
        await self.catalog.get(token, trade.condition_id)  # sizing sees the market's rules
        decision: Decision | None = None
        for step in self.copier.handle(trade, trade.timestamp):
            if isinstance(step, OrderPlan):
                decision = await self.service.execute(step)
            else:
                self.ledger.record_decision(step)
                decision = step
        assert decision is not None
        self.decisions.append(decision)
        return decision

    def condition_of(self, token: str) -> str:
        market = self.sim.state.market_of(token)
        return market.condition_id if market is not None else ""

    def posts(self) -> list[dict[str, Any]]:
        return self.sim.requests(path="/order", method="POST")

    def sim_orders(self) -> list[dict[str, Any]]:
        return self.sim.orders()

    async def close(self) -> None:
        await self.executor.close()
        self.ledger.close()


def config(sim: SimServer, **execution: Any) -> Any:
    return parse_config(
        {
            "bankroll_usdc": 1000,
            "sizing": {"fixed_copy_rate_default": 1},
            "rails": {"max_exec_notional_usdc": 100, "max_trade_pct_bankroll": 1},
            "endpoints": sim.endpoints(),
            "execution": {"unknown_close_after_s": 0, "fill_wait_s": 2, **execution},
            "leaders": [{"address": LEADER, "name": "rig"}],
        },
        environ={},
    )


async def build_rig(
    mode: str,
    sim: SimServer,
    state_dir: Path,
    *,
    key: str | None = None,
    tuning: dict[str, Any] | None = None,
    clob_url: str | None = None,
    **execution: Any,
) -> Rig:
    """`execution` are `execution:` config keys; `tuning` sets `ExecutionSettings` fields that
    are not config keys (yet); `clob_url` points the executor at another venue front."""
    loaded = config(sim, **execution)
    settings = replace(ExecutionSettings.from_config(loaded.settings.execution), **(tuning or {}))
    ledger = Ledger.open(state_dir, mode)
    executor: PaperExecutor | LiveExecutor
    if mode == "paper":
        http = ClobHttp(sim.url, timeout_s=settings.http_timeout_s, policy=settings.get_policy)
        catalog = MarketCatalog(http, ttl_s=settings.market_cache_ttl_s)
        executor = PaperExecutor(http, catalog, settings)
    else:
        key = key or new_key()
        credentials = load_credentials({"POLYCOPY_PRIVATE_KEY": key})
        urls = sim.endpoints()
        if clob_url is not None:
            urls = {**urls, "clob_url": clob_url}
        endpoints = EndpointsSection(**urls)
        executor = await LiveExecutor.create(credentials, endpoints, settings)
        catalog = executor.catalog
    copier = Copier(loaded.leaders, markets=catalog.rules)
    ledger.load_into(copier.book)
    service = ExecutionService(executor, ledger, copier.complete, order_type=settings.order_type)
    try:
        await service.reconcile()
    except BaseException:
        await executor.close()
        ledger.close()
        raise
    return Rig(mode, sim, ledger, copier, service, executor, catalog, key)
