"""The kill switch and the status server of a real paper daemon (R25, R36): `POST /halt` needs
the token once one is configured; while HALTED every leader trade gets a `KILL_SWITCH`
decision and nothing is filled; the halt survives kill -9; `POST /resume` without the token is
refused and changes nothing, with it trading resumes. Bound off loopback, every route wants the
token. `polycopy status --url` renders the dashboard of the running daemon."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from decimal import Decimal
from pathlib import Path

from polycopy.sim import SimConfig, SimServer

from .harness import TOKEN, DaemonProcess, eventually

LEADER = "0x00000000000000000000000000000000000a11ce"
D = Decimal


async def test_halt_persists_across_kill_9_and_only_the_token_resumes(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant()) as sim:
        token_id = sim.add_market(price=D("0.50")).tokens[0].token_id
        sim.set_book(token_id, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        daemon = DaemonProcess(tmp_path, sim, [LEADER], env={"POLYCOPY_STATUS_TOKEN": TOKEN})

        async def decided(side: str = "BUY") -> tuple[str, str]:
            """One leader trade worth $50 (a $2.50 copy at 5 %): its (outcome, reasons)."""
            before = set(daemon.decisions())
            sim.emit_trade(LEADER, token_id, side, D("0.50"), D("100"))
            new = await eventually(lambda: set(daemon.decisions()) - before)
            [decision_id] = new
            _, outcome, reasons = daemon.decisions()[decision_id]
            return outcome, reasons

        def fills() -> int:
            return int(daemon.query("SELECT COUNT(*) FROM ledger_fills")[0][0])

        try:
            await daemon.start()
            await daemon.started()
            assert await decided() == ("EXECUTED", "")
            assert fills() == 1

            # loopback: reads are open, commands need the token
            code, body = await daemon.request("POST", "/halt", body={"reason": "x"})
            assert code == 401
            assert (await daemon.status())["trading_state"] == "ACTIVE"
            code, body = await daemon.request(
                "POST", "/halt", token=TOKEN, body={"reason": "operator drill"}
            )
            assert (code, body["trading_state"]) == (200, "HALTED")
            for side in ("BUY", "BUY", "SELL"):
                assert await decided(side) == ("SKIPPED", "KILL_SWITCH")
            assert fills() == 1
            intents = daemon.query("SELECT COUNT(*) FROM ledger_intents")[0][0]
            assert intents == 1

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
            assert await decided() == ("SKIPPED", "KILL_SWITCH")

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
                env=daemon.env,
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
            assert await decided() == ("EXECUTED", "")
            assert fills() == 2
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()
        assert sim.requests(path="/order") == []
        halted = [json.loads(r[0]) for r in daemon.query("SELECT record FROM ledger_decisions")]
        assert sum(r["reasons"] == ["KILL_SWITCH"] for r in halted) == 4
