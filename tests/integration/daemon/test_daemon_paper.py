"""The paper daemon as a real subprocess under seeded generated load, against the simulator.

One process life after another: SIGHUP with a valid file, a broken file and a paper→live
switch; a feed stall (`/healthz` 503, no WATCHDOG=1 while it lasts); SIGTERM in the middle of a
burst (drained, exit 0); kill -9 in the middle of another; restarts. Throughout: sd_notify
order (R38), paper isolation (R23), and the exactly-once rule — every leader trade emitted
after the first follow time has exactly one decision, none is decided twice (R2, R9, R10, R22,
R37, R40).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from polycopy.config import load_config
from polycopy.sim import ErrorStatus, Silence, SimConfig, SimServer
from polycopy.synth import PRACTICAL_EXAMPLE

from .harness import DaemonProcess, NotifySocket, eventually, metric, trade_ids

LEADERS = [p.address for p in PRACTICAL_EXAMPLE]
D = Decimal
WATCHDOG_USEC = 200_000  # WATCHDOG=1 every 0.1 s while healthy


def burst(sim: SimServer, token: str, n: int) -> None:
    """`n` leader BUYs now, spread over the followed wallets (RTDS and Data API at once)."""
    for i in range(n):
        sim.emit_trade(LEADERS[i % len(LEADERS)], token, "BUY", D("0.50"), D(10 + i % 7))


def in_order(kinds: list[str], *wanted: str) -> bool:
    """`wanted` appear in `kinds` in this order (other messages may come between)."""
    at = 0
    for kind in kinds:
        if at < len(wanted) and kind == wanted[at]:
            at += 1
    return at == len(wanted)


def logged_ids(daemon: DaemonProcess, run: int) -> set[str]:
    return {e["decision_id"] for e in daemon.events(run, "copy_decided")}


async def test_reload_stall_sigterm_and_kill_decide_every_trade_once(tmp_path: Path) -> None:
    sim_config = SimConfig.instant(seed=5, generate_seed=11, speed=100)
    async with SimServer(sim_config) as sim:
        market = sim.add_market(price=D("0.50"))
        token = market.tokens[0].token_id
        sim.set_book(token, [(D("0.49"), D("1000000"))], [(D("0.50"), D("1000000"))])
        # history before the first start: none of it may be copied
        await eventually(lambda: sim.status()["emitted"] >= 20)
        newest = max(f["timestamp"] for f in sim.trades())
        await eventually(lambda: time.time() >= newest + 1, timeout=3)

        notify = NotifySocket()
        daemon = DaemonProcess(
            tmp_path,
            sim,
            LEADERS,
            ingest={"ws_stall_s": 2},
            daemon={"ingest_stale_s": 2, "shutdown_timeout_s": 20},
        )
        env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        try:
            # --- run 1: start, reloads, stall, SIGTERM mid-burst --------------------------
            await daemon.start(**env)
            await daemon.started()
            assert notify.kinds()[0] == "READY=1"  # nothing before: READY follows reconcile
            events = [e["event"] for e in daemon.events()]
            assert events.index("reconciled") < events.index("daemon_ready")
            first = await daemon.status()
            assert first["reconciled"] is True
            assert first["mode"] == "paper"
            follow_since = daemon.follow_since()
            await eventually(lambda: notify.count("WATCHDOG=1") >= 3)
            await eventually(lambda: len(daemon.decisions()) >= 20)

            v1 = first["config_version"]
            daemon.config["sizing"] = {**daemon.config["sizing"], "fixed_copy_rate_default": 0.04}
            daemon.write_config()
            v2 = load_config(daemon.config_path, daemon.env).version
            assert v2 != v1
            mark = len(notify.messages)
            await daemon.signal(signal.SIGHUP)
            [reloaded] = await eventually(lambda: daemon.events(name="config_reloaded"))
            assert (reloaded["config_version"], reloaded["previous"]) == (v2, v1)
            assert (await daemon.status())["config_version"] == v2
            await eventually(lambda: in_order(notify.kinds(mark), "RELOADING=1", "READY=1"))

            # a broken file, a mode switch, a valid change others could have written: all
            # refused, v2 stays in force
            good = daemon.config_path.read_text()
            other_rate = {**daemon.config["sizing"], "fixed_copy_rate_default": 0.03}
            for spoiled, mode, why in [
                ("rails: [unclosed\n", 0o600, r"polycopy\.yaml: .*line"),
                (yaml.safe_dump({**daemon.config, "mode": "live"}), 0o600, r"mode: cannot change"),
                (
                    yaml.safe_dump({**daemon.config, "sizing": other_rate}),
                    0o666,
                    r"polycopy\.yaml: writable by group or others",
                ),
            ]:
                daemon.write_config(text=spoiled)
                daemon.config_path.chmod(mode)
                before = len(daemon.events(name="config_reload_rejected"))
                mark = len(notify.messages)
                await daemon.signal(signal.SIGHUP)
                rejected = await eventually(
                    lambda n=before: daemon.events(name="config_reload_rejected")[n:]
                )
                assert re.search(why, rejected[0]["reason"]), rejected[0]
                assert rejected[0]["level"] == "error"
                status = await daemon.status()
                assert status["config_version"] == v2
                assert re.search(why, status["last_reload_error"])
                await eventually(lambda m=mark: in_order(notify.kinds(m), "RELOADING=1", "READY=1"))
            daemon.write_config(text=good)
            _, metrics = await daemon.request("GET", "/metrics")
            assert 'polycopy_config_reloads_total{result="rejected"} 3.0' in metrics
            assert 'polycopy_config_reloads_total{result="applied"} 1.0' in metrics
            assert f'polycopy_config_version_info{{version="{v2}"}} 1.0' in metrics
            # a storm of SIGHUPs with the good file: coalesced, no crash, still v2
            mark = len(notify.messages)
            for _ in range(30):
                await daemon.signal(signal.SIGHUP)

            def storm_settled() -> bool:
                """Every reload so far wrapped in RELOADING=1 … READY=1, nothing pending."""
                kinds = [k for k in notify.kinds(mark) if k in ("RELOADING=1", "READY=1")]
                reloads = len(daemon.events(name="config_reloaded")) - 1
                return reloads > 0 and kinds == ["RELOADING=1", "READY=1"] * reloads

            await eventually(storm_settled, timeout=5)
            assert (await daemon.status())["config_version"] == v2
            daemon.assert_running()
            # decisions keep coming under v2 after the refused reloads
            made = len(daemon.decisions())
            await eventually(lambda: len(daemon.decisions()) >= made + 10)

            # the feed stalls: the websocket goes quiet and the Data API fails
            silence = sim.faults.arm(Silence())
            broken = sim.faults.arm(ErrorStatus(path="/activity", status=503, times=None))
            code, health = await eventually(_unhealthy(daemon), timeout=15)
            assert code == 503
            assert any("ingest stale" in r for r in health["reasons"]), health
            quiet_from = len(notify.messages)
            began = time.monotonic()
            await eventually(_unhealthy(daemon, after=began + 1.0), timeout=10)
            assert notify.count("WATCHDOG=1", quiet_from) == 0  # no ping while unhealthy
            sim.faults.clear(silence)
            sim.faults.clear(broken)
            await eventually(_healthy(daemon), timeout=15)
            resumed = len(notify.messages)
            await eventually(lambda: notify.count("WATCHDOG=1", resumed) >= 2)
            _, metrics = await daemon.request("GET", "/metrics")
            assert metric(metrics, "polycopy_ws_reconnects_total") >= 1  # the stall
            assert metric(metrics, "polycopy_queue_wait_seconds_count") > 0
            assert metric(metrics, 'polycopy_decisions_total{outcome="SKIPPED"}') > 0
            assert metric(metrics, 'polycopy_leader_exposure_age_seconds{leader="leader-3"}') >= 0

            # a burst the websocket withholds: one REST page hands it all to the queue
            silence = sim.faults.arm(Silence())
            burst(sim, token, 250)
            await eventually(queued(daemon, 20))  # mid-burst: much of it still waiting
            mark = len(notify.messages)
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait(timeout=30) == 0
            assert "STOPPING=1" in notify.kinds(mark)
            assert not daemon.events(name="drain_timed_out")
            [stopping] = daemon.events(name="daemon_stopping")
            assert daemon.events(name="daemon_stopped")
            assert stopping["queued"] > 0  # it was mid-burst …
            assert unprocessed(daemon) == 0  # … and drained: every trade taken in is decided
            sim.faults.clear(silence)

            # --- run 2: restart, then kill -9 mid-burst ----------------------------------
            await daemon.start(**env)
            await daemon.started()
            assert not logged_ids(daemon, 1) & logged_ids(daemon, 2)
            made = len(daemon.decisions())
            burst(sim, token, 250)
            await eventually(lambda: len(daemon.decisions()) >= made + 20)
            await daemon.kill()
            committed = set(daemon.decisions())

            # --- run 3: catches up; nothing committed is decided again --------------------
            await daemon.start(**env)
            await daemon.started()
            wanted = _expected(sim, follow_since)
            await eventually(lambda: wanted <= set(daemon.decisions()), timeout=60)
            assert not logged_ids(daemon, 3) & committed
            assert not logged_ids(daemon, 1) & logged_ids(daemon, 3)
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait(timeout=30) == 0
            assert unprocessed(daemon) == 0
        finally:
            await daemon.kill()
            notify.close()

        decided = daemon.decisions()
        everything = _expected(sim, follow_since)
        assert set(decided) <= everything  # no history, nothing invented, no netting here
        assert wanted <= set(decided)
        assert len(wanted) > 400
        assert [f for f in sim.trades() if f["timestamp"] < follow_since], "no history?"
        # each decision was made under the config in force: v1 at 5 %, v2 at 4 %
        rates = {
            (r["config_version"], r["rate"])
            for (text,) in daemon.query("SELECT record FROM ledger_decisions")
            for r in [json.loads(text)]
            if r["rate"] is not None
        }
        assert rates == {(v1, "0.05"), (v2, "0.04")}, rates
        # paper: nothing ever reached the order endpoint, no authenticated request at all
        assert sim.requests(path="/order") == []
        assert sim.orders() == []
        assert not [
            r for r in sim.requests() if any(h.upper().startswith("POLY_") for h in r["headers"])
        ]
        for run in (1, 2, 3):
            assert daemon.stderr(run) == "", daemon.stderr(run)
            assert {e.get("exec_mode") for e in daemon.events(run)} == {"paper"}  # R23
            assert not daemon.events(run, "daemon_failed")


def queued(daemon: DaemonProcess, at_least: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return int((await daemon.status())["queue"]["depth"]) >= at_least

    return check


def unprocessed(daemon: DaemonProcess) -> int:
    rows = daemon.query("SELECT COUNT(*) FROM ingest_inbox WHERE processed_at IS NULL")
    return int(rows[0][0])


def _expected(sim: SimServer, since: int) -> set[str]:
    return {i for i, f in trade_ids(sim.trades()).items() if f["timestamp"] >= since}


def _unhealthy(
    daemon: DaemonProcess, after: float = 0.0
) -> Callable[[], Awaitable[tuple[int, Any] | None]]:
    async def check() -> tuple[int, Any] | None:
        if time.monotonic() < after:
            return None
        code, body = await daemon.request("GET", "/healthz")
        return (code, body) if code == 503 else None

    return check


def _healthy(daemon: DaemonProcess) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        code, _ = await daemon.request("GET", "/healthz")
        return code == 200

    return check


async def test_sighup_starts_and_stops_following_leaders(tmp_path: Path) -> None:
    """Leaders added or removed by a reload take effect without a restart: a removed leader's
    new trades are not copied, an added one's are, from the moment of the reload on (no
    history of the new leader is copied)."""
    stay, leave, join = (f"0x{n:040x}" for n in (0xA1, 0xB2, 0xC3))
    async with SimServer(SimConfig.instant()) as sim:
        token = sim.add_market(price=D("0.50")).tokens[0].token_id
        sim.set_book(token, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        daemon = DaemonProcess(tmp_path, sim, [stay, leave])

        async def decided_for(wallet: str) -> str:
            before = set(daemon.decisions())
            sim.emit_trade(wallet, token, "BUY", D("0.50"), D("100"))
            [new] = await eventually(lambda: set(daemon.decisions()) - before)
            return new

        try:
            sim.emit_trade(join, token, "BUY", D("0.50"), D("100"))  # history of the newcomer
            await daemon.start()
            await daemon.started()
            await decided_for(stay)
            await decided_for(leave)

            daemon.config["leaders"] = [
                {"address": stay, "name": "stay"},
                {"address": join, "name": "join"},
            ]
            daemon.write_config()
            await daemon.signal(signal.SIGHUP)
            [reloaded] = await eventually(lambda: daemon.events(name="config_reloaded"))
            assert reloaded["leaders"] == 2
            names = [leader["name"] for leader in (await daemon.status())["leaders"]]
            assert names == ["join", "stay"]

            before = set(daemon.decisions())
            sim.emit_trade(leave, token, "BUY", D("0.50"), D("100"))  # no longer followed
            joined = await decided_for(join)
            await decided_for(stay)
            new = set(daemon.decisions()) - before
            assert joined in new
            assert len(new) == 2  # the removed leader's trade was not copied
            records = {
                i: json.loads(r)
                for i, r in daemon.query("SELECT decision_id, record FROM ledger_decisions")
            }
            assert [r["leader_name"] for r in records.values()].count("join") == 1  # no history
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()


async def test_a_resolved_market_settles_the_copies_and_frees_the_budget(tmp_path: Path) -> None:
    """Once a held token's market resolves (no book, /midpoint 404), its copies leave the
    attributed book at the payout — 1 a share for the winner, 0 for the loser — their PnL
    realised, the budget free again; PnL stays computable, so a loss limit does not halt."""
    winner_leader, loser_leader = (f"0x{n:040x}" for n in (0xD1, 0xD2))
    async with SimServer(SimConfig.instant()) as sim:
        market = sim.add_market(price=D("0.50"))
        win, lose = (t.token_id for t in market.tokens)
        for token in (win, lose):
            sim.set_book(token, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        daemon = DaemonProcess(
            tmp_path,
            sim,
            [winner_leader, loser_leader],
            risk={"max_daily_loss_usdc": 100},
            daemon={"mark_refresh_s": 0.2, "mark_stale_s": 1},
        )

        def held() -> dict[str, Decimal]:
            rows = daemon.query("SELECT leader, shares FROM ledger_positions")
            return {leader: Decimal(shares) for leader, shares in rows}

        try:
            await daemon.start()
            await daemon.started()
            sim.emit_trade(winner_leader, win, "BUY", D("0.50"), D("100"))  # $2.50 at 5 %
            sim.emit_trade(loser_leader, lose, "BUY", D("0.50"), D("100"))
            await eventually(lambda: len(held()) == 2)
            assert held() == {winner_leader: D("5"), loser_leader: D("5")}

            sim.resolve_market(win)
            settled = await eventually(
                lambda: (
                    len(daemon.events(name="position_settled")) == 2
                    and daemon.events(name="position_settled")
                )
            )
            assert {e["leader"]: (e["payout"], e["realized_pnl"]) for e in settled} == {
                winner_leader: ("1", "2.5"),  # 5 shares bought for $2.50, paid $5
                loser_leader: ("0", "-2.5"),
            }
            assert held() == {}
            assert daemon.query("SELECT COUNT(*) FROM ledger_settlements") == [(2,)]
            status = await daemon.status()
            by_name = {leader["leader"]: leader for leader in status["leaders"]}
            assert by_name[winner_leader]["attributed"] == "0"
            assert by_name[winner_leader]["realized_pnl"] == "2.5"
            assert by_name[loser_leader]["realized_pnl"] == "-2.5"
            await asyncio.sleep(1.5)  # longer than mark_stale_s: the marks keep being fresh
            assert (await daemon.status())["trading_state"] == "ACTIVE"

            # a restart finds them settled: nothing held, nothing settled twice
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
            await daemon.start()
            await daemon.started()
            await asyncio.sleep(0.5)
            assert held() == {}
            assert not daemon.events(name="position_settled")
            assert daemon.query("SELECT COUNT(*) FROM ledger_settlements") == [(2,)]
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()
