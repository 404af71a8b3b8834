"""Acceptance: every trade the seeded generator emits is delivered exactly once, across a forced
websocket stall, SIGKILL, and crashes between fetch and commit and between commit and enqueue.

The ingester runs as a real subprocess (`ingest_runner.py`); the simulator runs here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from polycopy.sim import Silence, SimConfig, SimServer
from polycopy.synth import PRACTICAL_EXAMPLE

from .conftest import eventually, expected_ids

RUNNER = Path(__file__).with_name("ingest_runner.py")
LEADERS = [p.address for p in PRACTICAL_EXAMPLE]


class Runner:
    def __init__(self, sim: SimServer, tmp_path: Path) -> None:
        self.sim = sim
        self.db = tmp_path / "ledger.sqlite3"
        self.status_file = tmp_path / "status.json"
        self.log = tmp_path / "runner.log"

    async def start(self, crash_at: str | None = None) -> asyncio.subprocess.Process:
        self.status_file.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYCOPY_")}
        if crash_at:
            env["POLYCOPY_CRASH_AT"] = crash_at
        with self.log.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                str(RUNNER),
                "--db",
                str(self.db),
                "--status",
                str(self.status_file),
                "--data-api",
                self.sim.url,
                "--rtds",
                self.sim.rtds_url,
                "--leaders",
                ",".join(LEADERS),
                env=env,
                stdout=log,
                stderr=log,
            )

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.status_file.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def delivered(self) -> list[str]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(self.db, timeout=5)
        try:
            return [r[0] for r in conn.execute("SELECT trade_id FROM test_delivered ORDER BY seq")]
        except sqlite3.OperationalError:  # table not created yet
            return []
        finally:
            conn.close()

    def follow_since(self) -> int:
        conn = sqlite3.connect(self.db, timeout=5)
        try:
            values = {r[0] for r in conn.execute("SELECT follow_since FROM ingest_cursor")}
        finally:
            conn.close()
        assert len(values) == 1
        return values.pop()


def expected(sim: SimServer, since: int) -> list[str]:
    fills = sim.trades()
    ids = expected_ids(fills)  # numbered over everything the venue shows
    ordered = sorted(fills, key=lambda f: (f["timestamp"], f["seq"]))
    return [i for i, f in zip(ids, ordered, strict=True) if f["timestamp"] >= since]


@pytest.mark.slow
async def test_generator_trades_delivered_exactly_once_across_stall_kill_and_crashes(
    tmp_path: Path,
) -> None:
    config = SimConfig.instant(seed=42, generate_seed=7, speed=150, firehose_per_s=200)
    async with SimServer(config) as sim:
        await eventually(lambda: sim.status()["emitted"] >= 10)  # history before first start
        # timestamps are whole seconds: let that history fall strictly before the first start
        newest = max(f["timestamp"] for f in sim.trades())
        await eventually(lambda: time.time() >= newest + 1, timeout=3)
        runner = Runner(sim, tmp_path)

        # 1. first start: no history; live trades flow; the websocket is forced silent once
        first = await runner.start()
        await eventually(lambda: runner.status().get("ws_connected", False), timeout=15)
        await eventually(lambda: len(runner.status().get("backfills", {})) == len(LEADERS))
        since = runner.follow_since()
        await eventually(lambda: len(runner.delivered()) >= 20, timeout=15)
        silence = sim.faults.arm(Silence())
        await eventually(lambda: runner.status().get("ws_stalls_total", 0) >= 1, timeout=5)
        sim.faults.clear(silence)
        await eventually(lambda: runner.status().get("ws_reconnects_total", 0) >= 1)
        count = len(runner.delivered())
        await eventually(lambda: len(runner.delivered()) >= count + 10, timeout=10)
        first.send_signal(signal.SIGKILL)  # mid-stream
        assert await first.wait() == -signal.SIGKILL

        # 2. dies right after its first REST page is fetched, before committing it
        crashed = await runner.start(crash_at="after_fetch_before_commit")
        assert await asyncio.wait_for(crashed.wait(), 30) == 137

        # 3. dies after its first inbox commit of new trades, before queueing them: they wait
        # in the inbox as pending
        crashed = await runner.start(crash_at="after_commit_before_enqueue")
        assert await asyncio.wait_for(crashed.wait(), 30) == 137

        # 4. a normal start catches up with everything, then keeps up live
        last = await runner.start()
        await eventually(lambda: runner.status().get("started", False), timeout=15)
        await eventually(lambda: runner.status().get("ws_connected", False))
        cutoff = expected(sim, since)
        await eventually(lambda: set(cutoff) <= set(runner.delivered()), timeout=30)
        requeued = runner.status().get("pending_requeued_total", 0)
        last.send_signal(signal.SIGKILL)
        await last.wait()

        delivered = runner.delivered()
        everything = set(expected(sim, since))
        twice = [i for i, n in Counter(delivered).items() if n > 1]
        assert twice == [], f"{len(twice)} trades delivered more than once"
        assert set(delivered) <= everything  # nothing invented, no history
        assert set(cutoff) <= set(delivered)  # nothing missed
        assert len(cutoff) > 50
        assert requeued >= 1  # run 3's committed-but-unqueued trades came back as pending
        history = [f for f in sim.trades() if f["timestamp"] < since]
        assert history, "the generator had traded before the first start"
