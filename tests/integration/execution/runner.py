"""A live-mode copier process for crash tests: open the ledger, reconcile with the venue, then
copy a deterministic list of leader trades through the real Copier, ExecutionService and
LiveExecutor (real SDK) against the simulator.

    python runner.py --zygote      # read JSON commands on stdin; fork one real child process
                                   # per command and report its pid and exit status

The zygote imports everything once, so that each kill point costs a fork instead of a 2-second
interpreter start. (The test also points `SSL_CERT_FILE` at a one-certificate bundle: the SDK
builds eleven httpx clients, each loading the whole CA bundle, for plain-http loopback.)
Each child is a real process: `POLYCOPY_CRASH_AT=<point>:<n>` makes it die with
`os._exit(137)` at the n-th visit of that point, exactly like `kill -9` (no cleanup, no flush);
the test may also SIGKILL it. Commands (one JSON object per line):

    {"state_dir": ..., "clob_url": ..., "crash_at": "after_fill_record:3" | null,
     "trades": [...], "log_path": ..., "result_path": ..., "order_type": "FAK"}
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import traceback
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from polycopy import crashpoints
from polycopy.config import parse_config
from polycopy.domain.copier import Copier
from polycopy.domain.events import LeaderTrade, Side
from polycopy.domain.sizing import OrderPlan
from polycopy.execution.live import LiveExecutor
from polycopy.execution.service import ExecutionService
from polycopy.execution.settings import ExecutionSettings
from polycopy.observability.logging import configure_logging as setup_logging
from polycopy.secrets import load_credentials
from polycopy.store.ledger import Ledger

LEADER = "0x00000000000000000000000000000000000c0de1"


def configure_logging(path: str) -> None:
    """The daemon's own logging setup (JSON lines, redaction), into the run's log file."""
    handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    setup_logging(level="INFO", fmt="json", stream=handle)


def leader_trade(spec: dict[str, Any]) -> LeaderTrade:
    return LeaderTrade(
        leader=LEADER,
        asset=spec["asset"],
        condition_id=spec["condition_id"],
        side=Side(spec["side"]),
        price=Decimal(spec["price"]),
        size=Decimal(spec["size"]),
        timestamp=datetime.fromtimestamp(spec["ts"], UTC),
        tx_hash=spec["tx"],
    )


async def run_once(command: dict[str, Any]) -> dict[str, Any]:
    overrides = command.get("execution", {})
    config = parse_config(
        {
            "mode": "live",
            "bankroll_usdc": 1000,
            "state_dir": command["state_dir"],
            "sizing": {"fixed_copy_rate_default": command.get("rate", "1")},
            "rails": {"max_exec_notional_usdc": 25, "max_trade_pct_bankroll": 0.1},
            "endpoints": {
                "clob_url": command["clob_url"],
                "data_api_url": command["clob_url"],
            },
            "execution": {
                "order_type": command.get("order_type", "FAK"),
                "unknown_close_after_s": 0,
                "order_timeout_s": command.get("order_timeout_s", 5),
                "fill_wait_s": 2,
                **overrides,
            },
            "leaders": [{"address": LEADER, "name": "crash"}],
        },
        environ={},
    )
    settings = ExecutionSettings.from_config(config.settings.execution)
    ledger = Ledger.open(command["state_dir"], "live")
    executor = await LiveExecutor.create(load_credentials(), config.settings.endpoints, settings)
    copier = Copier(config.leaders, markets=executor.catalog.rules)
    ledger.load_into(copier.book)
    service = ExecutionService(executor, ledger, copier.complete, order_type=settings.order_type)
    report = await service.reconcile()
    executed = 0
    try:
        for spec in command["trades"]:
            trade = leader_trade(spec)
            if ledger.decision(trade.trade_id) is not None:
                continue  # decided before a crash: one decision per leader trade (R2)
            for step in copier.handle(trade, trade.timestamp):
                if isinstance(step, OrderPlan):
                    await service.execute(step)
                    executed += 1
                else:
                    ledger.record_decision(step)
        ledger.flush()
        # what the daemon's periodic `resolve_open` does: ask again about open intents (an
        # order the venue never received closes after `unknown_close_lookups` empty look-ups)
        for _ in range(settings.unknown_close_lookups):
            if not ledger.open_intents():
                break
            await service.resolve_open()
    finally:
        await executor.close()
        ledger.close()
    return {"reconciled": report.checked, "resolved": len(report.resolved), "executed": executed}


def child(command: dict[str, Any]) -> None:
    os.environ.pop("POLYCOPY_CRASH_AT", None)
    if command.get("crash_at"):
        os.environ["POLYCOPY_CRASH_AT"] = command["crash_at"]
    importlib.reload(crashpoints)  # re-read the crash point (functions share the module dict)
    configure_logging(command["log_path"])
    try:
        result = asyncio.run(run_once(command))
    except BaseException:
        with open(command["log_path"], "a", encoding="utf-8") as log:
            log.write(
                json.dumps({"event": "runner_failed", "error": traceback.format_exc()}) + "\n"
            )
        os._exit(1)
    Path(command["result_path"]).write_text(json.dumps(result))
    os._exit(0)


# imported lazily by httpx/httpcore on a client's first request: import them once, before forking
WARM_UP = (
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "anyio.to_thread",
    "certifi",
    "h11",
    "h2.connection",
    "httpcore",
    "httpcore._async.http11",
    "httpcore._async.http2",
    "httpcore._backends.anyio",
)


def zygote() -> None:
    for name in WARM_UP:
        importlib.import_module(name)
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(command)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"exit": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        configure_logging(os.devnull)
        print(json.dumps(asyncio.run(run_once(json.loads(sys.argv[1])))))
