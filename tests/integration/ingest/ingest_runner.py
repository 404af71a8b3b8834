"""A real ingest process for crash tests: the ingester against the simulator, plus a stand-in
sizing worker that stores each delivered trade and marks it processed in one transaction —
exactly the contract the daemon's worker follows.

    python ingest_runner.py --db PATH --status PATH --data-api URL --rtds URL --leaders A,B,...

Delivered trades go to the `test_delivered` table of the same SQLite file (no uniqueness, so
a duplicate would show). `--status` is a JSON file rewritten every 50 ms with a few counters.
Crash points come from `POLYCOPY_CRASH_AT` as everywhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from decimal import Decimal
from pathlib import Path

import structlog

from polycopy.config import EndpointsSection, IngestSection
from polycopy.ingest.exposure import ExposureSnapshot
from polycopy.ingest.ingester import Ingester
from polycopy.store.db import Database


async def worker(ingester: Ingester, db: Database) -> None:
    while True:
        item = await ingester.queue.get()
        if isinstance(item, ExposureSnapshot):
            continue
        with db.transaction() as conn:  # the decision and the mark commit together
            conn.execute(
                "INSERT INTO test_delivered (trade_id, leader, source, pid) VALUES (?, ?, ?, ?)",
                (item.trade_id, item.leader, item.source, os.getpid()),
            )
            ingester.mark_processed([item.trade_id])


async def report(ingester: Ingester, path: Path) -> None:
    temp = path.with_suffix(".tmp")
    while True:
        c = ingester.counters
        status = {
            "pid": os.getpid(),
            "started": ingester.started.is_set(),
            "ws_connected": c.ws_connected,
            "ws_stalls_total": c.ws_stalls_total,
            "ws_reconnects_total": c.ws_reconnects_total,
            "backfills": ingester.backfills.succeeded,
            "pending_requeued_total": c.pending_requeued_total,
            "history_skipped_total": c.history_skipped_total,
            "received": dict(c.trades_received_total),
        }
        temp.write_text(json.dumps(status))
        os.replace(temp, path)
        await asyncio.sleep(0.05)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--data-api", required=True)
    parser.add_argument("--rtds", required=True)
    parser.add_argument("--leaders", required=True)
    parser.add_argument("--stall", default="0.5")
    args = parser.parse_args()

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    db = Database(args.db)
    db.conn.execute(
        "CREATE TABLE IF NOT EXISTS test_delivered (seq INTEGER PRIMARY KEY,"
        " trade_id TEXT NOT NULL, leader TEXT NOT NULL, source TEXT NOT NULL, pid INTEGER)"
    )
    settings = IngestSection(
        poll_interval_s=Decimal("1"),
        ws_stall_s=Decimal(args.stall),
        ws_ping_interval_s=Decimal("0.2"),
        ws_backoff_initial_s=Decimal("0.05"),
        ws_backoff_max_s=Decimal("0.3"),
        exposure_refresh_s=Decimal("5"),
        rest_rate_limit_per_10s=100_000,
        positions_rate_limit_per_10s=100_000,
    )
    endpoints = EndpointsSection(data_api_url=args.data_api, rtds_url=args.rtds)
    ingester = Ingester(db, settings, endpoints, args.leaders.split(","))
    async with asyncio.TaskGroup() as group:
        group.create_task(ingester.run())
        group.create_task(worker(ingester, db))
        group.create_task(report(ingester, args.status))


if __name__ == "__main__":
    asyncio.run(main())
