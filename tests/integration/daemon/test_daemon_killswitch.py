"""The kill switch and the status server of a real paper daemon (R25, R36): `POST /halt` needs
the token once one is configured; while HALTED every leader trade — and a netting flush that
falls due — gets a `KILL_SWITCH` decision and nothing is filled; while REDUCING buys are
refused and exits mirrored; the halt survives kill -9;
`POST /resume` without the token is refused and changes nothing, with it trading resumes.
Bound off loopback, every route wants the token. `polycopy status --url` renders the dashboard
of the running daemon. SIGTERM flushes a netting buffer instead of losing it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from polycopy.sim import ErrorStatus, SimConfig, SimServer

from .harness import TOKEN, DaemonProcess, eventually

LEADER = "0x00000000000000000000000000000000000a11ce"
NETTER = "0x00000000000000000000000000000000000b0b00"
D = Decimal


async def test_halt_persists_across_kill_9_and_only_the_token_resumes(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant()) as sim:
        token_id = sim.add_market(price=D("0.50"), min_order_size=D(1)).tokens[0].token_id
        sim.set_book(token_id, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        daemon = DaemonProcess(tmp_path, sim, [LEADER], env={"POLYCOPY_STATUS_TOKEN": TOKEN})
        daemon.config["leaders"].append(
            {
                "address": NETTER,
                "name": "netter",
                "rails": {"min_exec_notional_usdc": 3},  # a $2.50 copy waits for company
                "netting": {"small_trade_netting_mode": "ON", "netting_window_s": 2},
            }
        )
        daemon.write_config()

        def records() -> dict[str, dict[str, Any]]:
            rows = daemon.query("SELECT decision_id, record FROM ledger_decisions")
            return {i: json.loads(r) for i, r in rows}

        async def decided(side: str = "BUY", wallet: str = LEADER, size: str = "100") -> Any:
            """A leader trade (100 shares at 0.50: a $2.50 copy at 5 %); its decision."""
            before = set(daemon.decisions())
            sim.emit_trade(wallet, token_id, side, D("0.50"), D(size))
            [new] = await eventually(lambda: set(daemon.decisions()) - before)
            return records()[new]

        def flush_of(decision_id: str) -> Any:
            return next((r for r in records().values() if decision_id in r["netted_ids"]), None)

        def fills() -> int:
            return int(daemon.query("SELECT COUNT(*) FROM ledger_fills")[0][0])

        try:
            await daemon.start()
            await daemon.started()
            assert (await decided())["outcome"] == "EXECUTED"
            assert fills() == 1

            # a small trade waits in the netting buffer when the halt comes
            deferred = await decided(wallet=NETTER)
            assert deferred["reasons"] == ["NETTING_DEFERRED"]

            # loopback: reads are open, commands need the token
            code, body = await daemon.request("POST", "/halt", body={"reason": "x"})
            assert code == 401
            assert (await daemon.status())["trading_state"] == "ACTIVE"
            code, body = await daemon.request(
                "POST", "/halt", token=TOKEN, body={"reason": "operator drill"}
            )
            assert (code, body["trading_state"]) == (200, "HALTED")
            flush = await eventually(lambda: flush_of(deferred["decision_id"]), timeout=5)
            assert flush["reasons"][-1] == "KILL_SWITCH"
            assert flush["outcome"] == "SKIPPED"
            for side in ("BUY", "BUY", "SELL"):
                halted = await decided(side)
                assert (halted["outcome"], halted["reasons"]) == ("SKIPPED", ["KILL_SWITCH"])
            assert fills() == 1
            assert daemon.query("SELECT COUNT(*) FROM ledger_intents") == [(1,)]

            # kill -9; come back bound "off loopback": `127.1` is not a loopback literal, so
            # the daemon treats it as exposed, yet the socket it names is 127.0.0.1
            await daemon.kill()
            daemon.config["status"] = {"listen": f"127.1:{daemon.port}"}
            daemon.write_config()
            await daemon.start()
            await daemon.started()
            for path in ("/status", "/healthz", "/metrics"):
                code, _ = await daemon.request("GET", path)
                assert code == 401, path
                code, _ = await daemon.request("GET", path, token="wrong" * 8)
                assert code == 401, path
            status = await daemon.status()  # with the token
            assert (status["trading_state"], status["trading_reason"]) == (
                "HALTED",
                "operator drill",
            )
            code, metrics = await daemon.request("GET", "/metrics", token=TOKEN)
            assert 'polycopy_trading_state{state="HALTED"} 1.0' in metrics
            assert (await decided())["reasons"] == ["KILL_SWITCH"]

            code, _ = await daemon.request("POST", "/resume")
            assert code == 401
            code, _ = await daemon.request("POST", "/resume", token="t" * 40)
            assert code == 401
            assert (await daemon.status())["trading_state"] == "HALTED"
            assert fills() == 1

            dashboard = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "polycopy",
                "status",
                "--url",
                daemon.base_url,
                env=daemon.env,  # POLYCOPY_STATUS_TOKEN: the dashboard sends it
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(dashboard.communicate(), 30)
            text = out.decode()
            assert dashboard.returncode == 0, err.decode()
            assert "polycopy paper — trading HALTED (operator drill)" in text
            assert "leader-0" in text
            assert "KILL_SWITCH" in text
            assert status["config_version"] in text

            code, body = await daemon.request("POST", "/resume", token=TOKEN)
            assert (code, body["trading_state"]) == (200, "ACTIVE")
            assert (await decided())["outcome"] == "EXECUTED"
            assert fills() == 2

            # REDUCING: nothing new is bought, the leader's exits are still mirrored
            code, body = await daemon.request(
                "POST", "/halt", token=TOKEN, body={"state": "REDUCING", "reason": "wind down"}
            )
            assert (code, body["trading_state"]) == (200, "REDUCING")
            reducing = await decided("BUY")
            assert (reducing["outcome"], reducing["reasons"]) == ("SKIPPED", ["KILL_SWITCH"])
            exit_ = await decided("SELL", size="100000")  # the leader's whole position
            assert exit_["outcome"] == "EXECUTED", exit_["reasons"]
            assert Decimal(exit_["exec_shares"]) > 0
            assert fills() == 3
            code, body = await daemon.request("POST", "/resume", token=TOKEN)
            assert (code, body["trading_state"]) == (200, "ACTIVE")

            # SIGTERM while a small trade waits for its netting window: flushed, not lost
            deferred = await decided(wallet=NETTER)
            assert deferred["reasons"] == ["NETTING_DEFERRED"]
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
            flush = flush_of(deferred["decision_id"])
            assert flush is not None
            assert flush["reasons"][0] == "NETTING_FLUSH"
            assert "KILL_SWITCH" not in flush["reasons"]
        finally:
            await daemon.kill()
        assert sim.requests(path="/order") == []
        halted_records = [r for r in records().values() if "KILL_SWITCH" in r["reasons"]]
        # the flush, three trades, one after the restart, one BUY while REDUCING
        assert len(halted_records) == 6


async def test_stale_marks_and_the_daily_loss_limit_halt(tmp_path: Path) -> None:
    """R25: PnL that cannot be computed (marks failing) halts, fail-closed; so does a loss
    beyond `risk.max_daily_loss_usdc` once the held token is re-marked lower."""
    async with SimServer(SimConfig.instant()) as sim:
        token_id = sim.add_market(price=D("0.50")).tokens[0].token_id
        sim.set_book(token_id, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        daemon = DaemonProcess(
            tmp_path,
            sim,
            [LEADER],
            env={"POLYCOPY_STATUS_TOKEN": TOKEN},
            risk={"max_daily_loss_usdc": 1},
            daemon={"mark_refresh_s": 0.2, "mark_stale_s": 1},
        )

        async def state() -> tuple[str, str]:
            status = await daemon.status()
            return status["trading_state"], status["trading_reason"]

        def marked_since(moment: float) -> bool:
            return bool(daemon.query("SELECT 1 FROM ledger_marks WHERE ts > ?", (moment,)))

        try:
            await daemon.start()
            await daemon.started()
            before = set(daemon.decisions())
            sim.emit_trade(LEADER, token_id, "BUY", D("0.50"), D("100"))  # 5 shares held
            [bought] = await eventually(lambda: set(daemon.decisions()) - before)
            assert daemon.decisions()[bought][1] == "EXECUTED"

            failing = sim.faults.arm(ErrorStatus(path="/midpoint", status=500, times=None))
            await eventually(lambda: _halted_for("cannot be computed", state), timeout=10)
            sim.faults.clear(failing)
            cleared = time.time()
            await eventually(lambda: marked_since(cleared), timeout=5)
            code, body = await daemon.request("POST", "/resume", token=TOKEN)
            assert (code, body["trading_state"]) == (200, "ACTIVE")

            # the held token is re-marked at 0.10: 5 × (0.10 − 0.50) = −2 < −1
            sim.set_book(token_id, [(D("0.09"), D("100000"))], [(D("0.11"), D("100000"))])
            await eventually(lambda: _halted_for("daily loss limit: PnL today -", state), 10)
            _, reason = await state()
            loss = Decimal(reason.split()[5])  # "daily loss limit: PnL today -1.975 below -1"
            assert loss <= D("-1.9"), reason  # measured from before the stale spell
            before = set(daemon.decisions())
            sim.emit_trade(LEADER, token_id, "BUY", D("0.11"), D("100"))
            [halted] = await eventually(lambda: set(daemon.decisions()) - before)
            assert daemon.decisions()[halted][1:] == ("SKIPPED", "KILL_SWITCH")
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()
        assert daemon.query("SELECT COUNT(*) FROM ledger_fills") == [(1,)]


async def _halted_for(why: str, state: Any) -> bool:
    trading, reason = await state()
    return bool(trading == "HALTED" and why in reason)
