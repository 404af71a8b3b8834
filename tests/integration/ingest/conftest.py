"""Ingest against the simulated Polymarket on 127.0.0.1: real websockets, real HTTP, real SQLite.

`Worker` stands in for the sizing worker through the ingester's public contract: it takes
items off the queue, records them and marks each trade processed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from polycopy.config import EndpointsSection, IngestSection
from polycopy.domain.events import LeaderTrade, Side, trade_identity
from polycopy.ingest.exposure import ExposureSnapshot
from polycopy.ingest.ingester import Ingester
from polycopy.sim import SimServer
from polycopy.store.db import Database

FAST = {
    "poll_interval_s": Decimal("0.5"),
    "ws_stall_s": Decimal("30"),
    "ws_ping_interval_s": Decimal("0.5"),
    "ws_backoff_initial_s": Decimal("0.05"),
    "ws_backoff_max_s": Decimal("0.5"),
    "exposure_refresh_s": Decimal("3600"),
    "rest_backoff_initial_s": Decimal("0.02"),
    "rest_backoff_max_s": Decimal("0.2"),
    "rest_deadline_s": Decimal("10"),
    "rest_rate_limit_per_10s": 100_000,
    "positions_rate_limit_per_10s": 100_000,
}


async def eventually(
    condition: Callable[[], bool],
    timeout: float = 10.0,  # noqa: ASYNC109 - the project's documented helper signature
    interval: float = 0.02,
) -> None:
    """Wait until `condition()` holds; fail with a clear message after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        await asyncio.sleep(interval)


def settings(**overrides: Any) -> IngestSection:
    return IngestSection(**{**FAST, **overrides})


def endpoints(sim: SimServer) -> EndpointsSection:
    return EndpointsSection(**sim.endpoints())


def expected_ids(fills: Iterable[Mapping[str, Any]]) -> list[str]:
    """Identities (SPEC §2.8) of the simulator's emitted fills, occurrences numbered in order."""
    seen: Counter[tuple[str, ...]] = Counter()
    ids = []
    for f in sorted(fills, key=lambda f: (f["timestamp"], f["seq"])):
        key = (f["proxyWallet"], f["transactionHash"], f["asset"], f["side"], f["price"], f["size"])
        occurrence = seen[key]
        seen[key] += 1
        ids.append(
            trade_identity(
                f["proxyWallet"],
                f["transactionHash"],
                f["asset"],
                Side(f["side"]),
                Decimal(f["price"]),
                Decimal(f["size"]),
                occurrence,
            )
        )
    return ids


class Worker:
    """Drains the ingester's queue the way the sizing worker does."""

    def __init__(self, ingester: Ingester) -> None:
        self.ingester = ingester
        self.trades: list[LeaderTrade] = []
        self.snapshots: list[ExposureSnapshot] = []
        self.gate = asyncio.Event()
        self.gate.set()

    @property
    def ids(self) -> list[str]:
        return [t.trade_id for t in self.trades]

    def has_all(self, ids: Iterable[str]) -> bool:
        return set(ids) <= set(self.ids)

    async def run(self) -> None:
        queue = self.ingester.queue
        while True:
            await self.gate.wait()
            item = await queue.get()
            if isinstance(item, ExposureSnapshot):
                self.snapshots.append(item)
            else:
                self.trades.append(item)
                self.ingester.mark_processed([item.trade_id])


def make_ingester(
    tmp_path: Path, sim: SimServer, leaders: Iterable[str], name: str = "ledger", **overrides: Any
) -> Ingester:
    page_limit = overrides.pop("page_limit", None)
    db = Database(tmp_path / f"{name}.sqlite3")
    return Ingester(db, settings(**overrides), endpoints(sim), leaders, page_limit=page_limit)


@asynccontextmanager
async def running(ingester: Ingester) -> AsyncIterator[Worker]:
    """Run the ingester and a worker; on exit stop both, re-raising any failure of theirs."""
    worker = Worker(ingester)
    tasks = [asyncio.create_task(ingester.run()), asyncio.create_task(worker.run())]
    try:
        await eventually(ingester.started.is_set)
        yield worker
        for task in tasks:
            if task.done():
                task.result()  # a crashed ingester fails the test
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        ingester.inbox.db.close()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result


async def subscribed(sim: SimServer, connections: int = 1) -> None:
    """Wait until the simulator has registered the RTDS subscriptions of `connections` clients
    (a client's subscribe frame is sent before the simulator has read it)."""
    await eventually(
        lambda: sum(1 for s in sim.rtds.subscribers if s.state.get("subscriptions")) >= connections
    )


async def after_second_boundary() -> None:
    """Wait until the wall clock enters a new whole second (venue timestamps are seconds)."""
    start = int(time.time())
    await eventually(lambda: int(time.time()) > start, timeout=2.0, interval=0.01)
