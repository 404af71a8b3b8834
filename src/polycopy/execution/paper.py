"""Paper execution: the real order book, walked with the same bound and minimums as live.

Structurally isolated from the order endpoint (R23): it loads no key, builds no SDK client,
and its only I/O is public GETs (`/book`, market metadata) through `ClobHttp`, which cannot
post. Fills are at the book's levels, FAK partial by default, FOK all-or-nothing, with the
market's taker fees.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import OrderPlan
from polycopy.execution.book_walk import walk_plan
from polycopy.execution.clob_http import ClobHttp, VenueNotFound
from polycopy.execution.errors import VenueError
from polycopy.execution.market_stream import BookSource
from polycopy.execution.markets import MarketCatalog
from polycopy.execution.port import (
    ExecutionReport,
    OrderIntent,
    SubmissionJournal,
    VenueFill,
    not_sent,
    rejected,
)
from polycopy.execution.settings import ExecutionSettings
from polycopy.execution.states import OrderStatus

log = structlog.get_logger("polycopy.paper")


class PaperExecutor:
    def __init__(
        self,
        http: ClobHttp,
        catalog: MarketCatalog,
        settings: ExecutionSettings | None = None,
        *,
        books: BookSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._books: BookSource = books or http  # a MarketStream keeps them live
        self._catalog = catalog
        self._settings = settings or ExecutionSettings()
        self._clock = clock
        self.alerts = 0  # a paper fill never needs an operator
        self.sends_orders = False

    @property
    def mode(self) -> str:
        return "paper"

    async def execute(
        self, plan: OrderPlan, intent: OrderIntent, journal: SubmissionJournal
    ) -> ExecutionReport:
        del journal  # nothing is signed or sent
        try:
            market = await self._catalog.get(plan.asset, plan.context.condition_id)
            book = await self._books.book(plan.asset)
        except VenueNotFound as exc:
            return not_sent(Reason.EXEC_NO_LIQUIDITY, str(exc))
        except VenueError as exc:
            log.warning("paper_book_unavailable", asset=plan.asset, error=str(exc))
            return rejected(None, f"paper: book unavailable: {exc}", OrderStatus.ABANDONED)
        result = walk_plan(
            plan,
            book,
            fok=intent.order_type == "FOK",
            fees=market.fees,
            tick=market.tick_size,
            min_notional=market.min_order_notional,
        )
        if isinstance(result, Reason):
            return not_sent(result, "below the market's minimum order size")
        order_hash = f"paper:{intent.intent_id}"
        now = self._clock()
        fills = tuple(
            VenueFill(
                trade_id=f"paper-{intent.intent_id}-{i}",
                order_hash=order_hash,
                price=level.price,
                shares=level.shares,
                fee=level.fee,
                ts=now,
            )
            for i, level in enumerate(result.fills)
        )
        status = OrderStatus.FILLED if result.complete else OrderStatus.CANCELED
        detail = "" if result.complete else f"paper: {result.reason}"
        return ExecutionReport(status, result.execution(), fills, order_hash, detail)

    async def resolve(self, intent: OrderIntent) -> ExecutionReport | None:
        """A paper intent still open after a restart never filled (fills are recorded in the
        same transaction that closes it)."""
        return rejected(
            None, "paper: interrupted before its fill was recorded", OrderStatus.ABANDONED
        )

    async def close(self) -> None:
        await self._http.close()
