"""The live daemon with a throwaway key places real orders on the simulator through the SDK.
An order in flight when the daemon is killed -9 is reconciled before anything else: while the
venue cannot be asked, no READY=1, `/healthz` 503 and not one new order (R5, R38); once it
can, the order is resolved by look-up, never resent. The canary key — and the API credentials
derived from it — never appear in stdout, stderr, the ledger files, `/status` or `/metrics`
(R31–R33)."""

from __future__ import annotations

import json
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account

from polycopy.sim import AcceptThenHang, ErrorStatus, SimConfig, SimServer

from .harness import DaemonProcess, NotifySocket, eventually, one_certificate

LEADER = "0x00000000000000000000000000000000000a11ce"
D = Decimal


@pytest.fixture
def canary() -> str:
    return "0x" + bytes(Account.create().key).hex()


async def test_live_orders_reconcile_gate_and_no_secret_anywhere(
    tmp_path: Path, canary: str
) -> None:
    async with SimServer(SimConfig.instant()) as sim:
        token_id = sim.add_market(price=D("0.50")).tokens[0].token_id
        sim.set_book(token_id, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        notify = NotifySocket()
        daemon = DaemonProcess(
            tmp_path,
            sim,
            [LEADER],
            mode="live",
            env={
                "POLYCOPY_PRIVATE_KEY": canary,
                "SSL_CERT_FILE": str(one_certificate(tmp_path)),  # loopback http only
                "NOTIFY_SOCKET": notify.path,
                "POLYCOPY_LOG_LEVEL": "DEBUG",
            },
            execution={
                "order_timeout_s": 20,  # the hanging POST is still in flight when killed
                "venue_get_retries": 0,
                "venue_backoff_max_s": 0.1,
                "venue_retry_deadline_s": 2,
            },
            daemon={"shutdown_timeout_s": 2},
        )
        signer = Account.from_key(canary).address

        def posts() -> int:
            return len(sim.requests(path="/order", method="POST"))

        async def copied() -> str:
            before = set(daemon.decisions())
            sim.emit_trade(LEADER, token_id, "BUY", D("0.50"), D("100"))  # $2.50 at 5 %
            [decision_id] = await eventually(lambda: set(daemon.decisions()) - before)
            return str(decision_id)

        outputs: list[str] = []
        try:
            await daemon.start()
            await daemon.started(timeout=40)
            first = await copied()
            assert daemon.decisions()[first][1] == "EXECUTED"
            [order] = sim.orders()
            assert order["signer"] == signer
            assert (order["received"], order["accepted"]) == (1, 1)
            assert order["fills"]

            # an order is in flight, unanswered, when the daemon dies
            sim.faults.arm(AcceptThenHang())
            sim.emit_trade(LEADER, token_id, "BUY", D("0.50"), D("100"))
            await eventually(lambda: posts() == 2)
            await daemon.kill()
            assert daemon.query(
                "SELECT COUNT(*) FROM ledger_intents WHERE status IN ('SIGNED', 'SUBMITTED')"
            ) == [(1,)]

            # the venue cannot be asked: reconciliation fails, so nothing starts
            sim.faults.clear()
            refused = sim.faults.arm(ErrorStatus(path="/data/*", status=500, times=None))
            mark = len(notify.messages)
            await daemon.start()
            await eventually(lambda: len(daemon.events(name="reconcile_failed")) >= 2, 30)
            code, health = await daemon.request("GET", "/healthz")
            assert code == 503
            assert "start-up reconciliation not done" in health["reasons"]
            assert (await daemon.status())["reconciled"] is False
            sim.emit_trade(LEADER, token_id, "BUY", D("0.50"), D("100"))  # waits its turn
            assert "READY=1" not in notify.kinds(mark)
            assert any(k.startswith("STATUS=reconciling failed") for k in notify.kinds(mark))
            assert posts() == 2
            sim.faults.clear(refused)
            await daemon.started(timeout=30)
            assert notify.kinds(mark).count("READY=1") == 1
            await eventually(lambda: len(daemon.decisions()) == 3 and posts() == 3, 20)
            assert {d[1] for d in daemon.decisions().values()} == {"EXECUTED"}
            assert [o["received"] for o in sim.orders()] == [1, 1, 1]  # none sent twice
            assert all(o["signer"] == signer for o in sim.orders())
            assert daemon.events(name="order_resolved")

            for path in ("/status", "/metrics", "/healthz"):
                _, body = await daemon.request("GET", path)
                outputs.append(body if isinstance(body, str) else json.dumps(body))

            # SIGTERM while an order hangs: the drain is bounded, the exit clean (R40) …
            sim.faults.arm(AcceptThenHang())
            sim.emit_trade(LEADER, token_id, "BUY", D("0.50"), D("100"))
            await eventually(lambda: posts() == 4)
            stopped_at = time.monotonic()
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
            assert time.monotonic() - stopped_at < 10  # shutdown_timeout_s (2) + a margin
            assert daemon.events(name="drain_timed_out")
            # … and the next start settles it by look-up before anything else
            await daemon.start()
            await daemon.started(timeout=30)
            await eventually(lambda: len(daemon.decisions()) == 4)
            assert {d[1] for d in daemon.decisions().values()} == {"EXECUTED"}
            assert daemon.query(
                "SELECT COUNT(*) FROM ledger_intents WHERE status IN ('SIGNED', 'SUBMITTED')"
            ) == [(0,)]
            assert posts() == 4
            assert [o["received"] for o in sim.orders()] == [1, 1, 1, 1]
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()
            notify.close()

        # the canary key, and the API credentials the venue derived from it
        [api_key] = sim.keys.keys_of(signer)
        creds = sim.keys.get(api_key)
        assert creds is not None
        needles = {canary.lower(), canary[2:].lower(), creds.secret.lower()}
        needles |= {creds.passphrase.lower()}
        for run in (1, 2, 3):
            outputs += [daemon.stdout(run), daemon.stderr(run)]
        assert "order_submitted" in daemon.stdout(1)  # DEBUG level: everything was logged
        for text in outputs:
            assert not any(n in text.lower() for n in needles)
        assert daemon.state_dir.stat().st_mode & 0o777 == 0o700  # created by the daemon
        files = list(daemon.state_dir.glob("polycopy-live.sqlite3*"))
        assert {f.name for f in files} >= {"polycopy-live.sqlite3"}
        for path in files:
            data = path.read_bytes().lower()
            assert not any(n.encode() in data for n in needles), path
            assert path.stat().st_mode & 0o777 == 0o600, path  # R34


async def test_live_start_failure_exits_1_without_the_key(tmp_path: Path, canary: str) -> None:
    """The venue refuses the key (401 on /auth/*): the daemon exits 1 with a traceback logged
    without local variables — the frame holding the key shows nothing of it (R32)."""
    async with SimServer(SimConfig.instant()) as sim:
        sim.faults.arm(ErrorStatus(path="/auth/*", status=401, times=None))
        daemon = DaemonProcess(
            tmp_path,
            sim,
            [LEADER],
            mode="live",
            env={
                "POLYCOPY_PRIVATE_KEY": canary[2:],  # without 0x: accepted too
                "SSL_CERT_FILE": str(one_certificate(tmp_path)),
                "POLYCOPY_LOG_LEVEL": "DEBUG",
            },
        )
        await daemon.start()
        assert await daemon.wait(timeout=60) == 1
        [failed] = daemon.events(name="daemon_failed")
        assert failed["exception"], failed
        assert failed["exec_mode"] == "live"  # the mode is on every line, this one too
        assert not daemon.events(name="daemon_ready")
        assert sim.requests(path="/order") == []
        text = (daemon.stdout() + daemon.stderr()).lower()
        assert canary[2:].lower() not in text


async def test_an_order_of_unknown_outcome_is_revised_once(tmp_path: Path, canary: str) -> None:
    """The venue takes the order but the answer never comes, and look-ups fail for a while:
    the decision says EXEC_UNKNOWN
    and keeps the reservation; the periodic look-up finds the fill and revises it — logged as
    `copy_revised`, counted once in /status and /metrics, the order never sent again."""
    async with SimServer(SimConfig.instant()) as sim:
        token_id = sim.add_market(price=D("0.50")).tokens[0].token_id
        sim.set_book(token_id, [(D("0.49"), D("100000"))], [(D("0.50"), D("100000"))])
        daemon = DaemonProcess(
            tmp_path,
            sim,
            [LEADER],
            mode="live",
            env={
                "POLYCOPY_PRIVATE_KEY": canary,
                "SSL_CERT_FILE": str(one_certificate(tmp_path)),
            },
            execution={"order_timeout_s": 1, "fill_wait_s": 1},
        )
        try:
            await daemon.start()
            await daemon.started(timeout=40)
            sim.faults.arm(AcceptThenHang())
            blind = sim.faults.arm(ErrorStatus(path="/data/*", status=500, times=None))
            sim.emit_trade(LEADER, token_id, "BUY", D("0.50"), D("100"))
            [unknown] = await eventually(lambda: daemon.events(name="copy_decided"), 20)
            assert unknown["outcome"] == "FAILED"
            assert unknown["reasons"][-1] == "EXEC_UNKNOWN"
            sim.faults.clear(blind)  # the venue can be asked again
            [revised] = await eventually(lambda: daemon.events(name="copy_revised"), 20)
            assert revised["decision_id"] == unknown["decision_id"]
            assert revised["outcome"] == "EXECUTED"
            assert len(daemon.events(name="copy_decided")) == 1
            status = await daemon.status()
            [leader] = status["leaders"]
            assert leader["outcomes"] == {"EXECUTED": 1}
            assert "EXEC_UNKNOWN" not in leader["reasons"]
            _, metrics = await daemon.request("GET", "/metrics")
            assert 'polycopy_decisions_total{outcome="FAILED"} 1.0' in metrics
            assert (
                'polycopy_decision_revisions_total{earlier="FAILED",outcome="EXECUTED"} 1.0'
                in metrics
            )
            assert [o["received"] for o in sim.orders()] == [1]
            await daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()
