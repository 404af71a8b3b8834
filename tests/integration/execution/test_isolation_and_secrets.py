"""R1: the signed order is on disk before the POST leaves. R23: paper mode is structurally
isolated from the order endpoint. R31/R32: a canary key made here never appears in logs, the
database or error messages."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import structlog
from sim_rig import build_rig, new_key

from polycopy.config import EndpointsSection
from polycopy.domain.reasons import Outcome, Reason
from polycopy.execution.errors import VenueError
from polycopy.execution.live import LiveExecutor
from polycopy.observability.logging import configure_logging
from polycopy.secrets import SecretsError, load_credentials
from polycopy.sim import AcceptThenHang, ErrorStatus, RejectOrder, SimServer

D = __import__("decimal").Decimal


def market(sim: SimServer) -> str:
    token = sim.add_market(price=D("0.50")).tokens[0].token_id
    sim.set_book(token, [(D("0.49"), D("100"))], [(D("0.50"), D("100"))])
    return token


async def test_signed_order_is_committed_before_the_post(sim: SimServer, tmp_path: Path) -> None:
    """R1: inside the venue's own POST /order handling — as each order arrives, before the
    venue looks at it — a separate read-only connection already sees the intent row with
    that order hash and the exact signed order being posted."""
    db_path = tmp_path / "polycopy-live.sqlite3"
    seen: list[tuple[str, tuple[str, str] | None, dict[str, object]]] = []

    def on_arrival(order_hash: str, body: object) -> None:
        reader = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = reader.execute(
                "SELECT status, signed_order FROM ledger_intents WHERE order_hash = ?",
                (order_hash,),
            ).fetchone()
        finally:
            reader.close()
        seen.append((order_hash, row, body["order"] if isinstance(body, dict) else {}))

    sim.on_order_arrival(on_arrival)
    rig = await build_rig("live", sim, tmp_path, order_timeout_s=2)
    try:
        token = market(sim)
        first = await rig.copy(token, "BUY", "0.50", "10")
        sim.faults.arm(AcceptThenHang())  # and while the venue holds its answer
        second = await rig.copy(token, "BUY", "0.50", "10")
        assert first.outcome is Outcome.EXECUTED
        assert second.outcome is Outcome.EXECUTED  # resolved by look-up
    finally:
        await rig.close()
    assert len(seen) == 2 == len(sim.orders())
    for order_hash, row, posted in seen:
        assert row is not None, f"{order_hash} arrived before its intent was committed"
        status, signed_order = row
        assert status == "SIGNED"
        stored = json.loads(signed_order)
        assert stored["signature"] == posted["signature"]
        assert str(stored["salt"]) == str(posted["salt"])
        assert stored["makerAmount"] == str(posted["makerAmount"])


async def test_paper_never_reaches_the_order_endpoint(sim: SimServer, tmp_path: Path) -> None:
    rig = await build_rig("paper", sim, tmp_path)
    try:
        token = market(sim)
        await rig.copy(token, "BUY", "0.50", "10")
        await rig.copy(token, "SELL", "0.50", "10")
        await rig.copy(token, "BUY", "0.80", "10")  # out of the bound
        assert rig.ledger.path.name == "polycopy-paper.sqlite3"
    finally:
        await rig.close()
    assert sim.requests(path="/order") == []
    assert sim.requests(path="/orders") == []
    assert sim.orders() == []
    signed = [r for r in sim.requests() if any(h.upper().startswith("POLY_") for h in r["headers"])]
    assert signed == []  # no L1/L2 authenticated request at all
    assert {r["path"] for r in sim.requests()} <= {
        "/book",
        "/clob-markets/" + rig.condition_of(token),
    }


def test_paper_code_path_loads_no_sdk_and_no_key() -> None:
    probe = (
        "import sys, polycopy.execution.paper, polycopy.execution.service, polycopy.store.ledger;"
        "print(sorted(m for m in ('polymarket', 'eth_account', 'polycopy.secrets',"
        " 'polycopy.execution.live') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


async def test_live_ledger_is_not_usable_in_paper_mode(sim: SimServer, tmp_path: Path) -> None:
    live = await build_rig("live", sim, tmp_path)
    await live.close()
    (tmp_path / "polycopy-paper.sqlite3").symlink_to(tmp_path / "polycopy-live.sqlite3")
    from polycopy.store.db import StoreError

    with pytest.raises(StoreError, match="live ledger"):
        await build_rig("paper", sim, tmp_path)


def database_bytes(directory: Path) -> dict[Path, bytes]:
    files = {path: path.read_bytes() for path in directory.glob("polycopy-live.sqlite3*")}
    assert files
    return files


async def test_canary_key_never_leaks(sim: SimServer, tmp_path: Path) -> None:
    canary = new_key()
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    messages: list[str] = []
    try:
        rig = await build_rig("live", sim, tmp_path, key=canary, order_timeout_s=1)
        token = market(sim)
        await rig.copy(token, "BUY", "0.50", "10")  # filled
        sim.faults.arm(RejectOrder(error="not enough balance / allowance"))
        rejected = await rig.copy(token, "BUY", "0.50", "10")
        assert rejected.reasons == (Reason.EXEC_REJECTED,)
        sim.faults.arm(ErrorStatus(path="/order", method="POST", status=500))
        unknown = await rig.copy(token, "BUY", "0.50", "10")
        assert unknown.reasons == (Reason.EXEC_UNKNOWN,)
        await rig.service.resolve_open()
        await rig.copy(token, "SELL", "0.49", "10")
        logging.getLogger("polymarket").error("an SDK error line")
        await rig.close()
        # error paths: a refused CLOB client, malformed and unsafe key files
        sim.faults.arm(ErrorStatus(path="/auth/*", status=401, times=None))
        with pytest.raises(VenueError) as refused:
            await LiveExecutor.create(
                load_credentials({"POLYCOPY_PRIVATE_KEY": canary}),
                EndpointsSection(**sim.endpoints()),
            )
        messages.append("".join(traceback.format_exception(refused.value)))
        key_file = tmp_path / "key"
        key_file.write_text(canary)
        key_file.chmod(0o644)
        with pytest.raises(SecretsError) as unsafe:
            load_credentials({"POLYCOPY_PRIVATE_KEY_FILE": str(key_file)})
        messages.append(str(unsafe.value))
        with pytest.raises(SecretsError) as malformed:
            load_credentials({"POLYCOPY_PRIVATE_KEY": canary + "00"})
        messages.append(str(malformed.value))
        structlog.get_logger("test").error("oops", detail=f"key={canary}")
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    logs = stream.getvalue()
    assert "order_submitted" in logs
    assert "order_rejected" in logs
    needles = {canary.lower(), canary[2:].lower()}
    for name, text in [("logs", logs), *((f"message {i}", m) for i, m in enumerate(messages))]:
        assert not any(n in text.lower() for n in needles), name
    for path, data in database_bytes(tmp_path).items():
        assert not any(n.encode() in data.lower() for n in needles), path
    for request in sim.requests():  # not even the simulator saw it
        assert not any(n in json.dumps(request).lower() for n in needles)
