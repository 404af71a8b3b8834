"""The daemon against the simulator (SPEC §10).

throughput  paper mode, durable ledger: N leader trades arrive while the daemon is down; on
            restart it backfills them from the Data API and decides, executes and records every
            one. Rate = trades / (last decision − first decision), from the ledger's own times.
latency     at a steady 200 leader trades/s, from the RTDS frame received (by a websocket
            client of the bench, subscribed next to the daemon's) to the copy's POST /order
            received by the simulator — live mode, a throwaway key, signing included; in paper
            mode (no POST exists) the daemon's own frame-received → fill-recorded histogram.

The simulator runs in this process, the daemon in its own: one core each.

    .venv/bin/python bench/daemon_bench.py [--trades 20000] [--rate 200] [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import websockets
import yaml
from eth_account import Account

from polycopy.sim.server import SimServer
from polycopy.sim.settings import SimConfig

LEADERS = [f"0x{i:040x}" for i in range(0xB0001, 0xB0001 + 10)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, sim: SimServer, state_dir: Path, port: int, mode: str) -> None:
    data = {
        "mode": mode,
        "bankroll_usdc": 1_000_000,
        "state_dir": str(state_dir),
        "sizing": {"sizing_mode_default": "FIXED_RATE", "fixed_copy_rate_default": 0.01},
        "rails": {
            "min_exec_notional_usdc": 1,
            "max_exec_notional_usdc": 50,
            "max_trade_pct_bankroll": 0.5,
        },
        "endpoints": sim.endpoints(),
        "status": {"listen": f"127.0.0.1:{port}"},
        "ingest": {"poll_interval_s": 2, "queue_maxsize": 20_000, "max_event_age_s": 600},
        "leaders": [{"address": a, "name": f"leader-{i}"} for i, a in enumerate(LEADERS)],
    }
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)


@asynccontextmanager
async def daemon(config: Path, log: Path, env: dict[str, str]) -> Any:
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "polycopy",
            "run",
            "--config",
            str(config),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)


async def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/status") as resp:
                    status = await resp.json()
                    if status.get("reconciled") and status["ingest"]["ws_connected"]:
                        return
            except (aiohttp.ClientError, ValueError, KeyError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the daemon did not become ready")


def decisions(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT decision_id, ts FROM ledger_decisions").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def trade_rows(
    sim: SimServer, tokens: list[str], count: int, rng: random.Random
) -> Iterator[tuple[str, str, Decimal, Decimal]]:
    for _ in range(count):
        price = Decimal(rng.randint(20, 80)) / 100
        notional = Decimal(rng.choice([40, 80, 150, 300, 600]))
        yield (
            rng.choice(LEADERS),
            rng.choice(tokens),
            price,
            (notional / price).quantize(Decimal("0.01")),
        )


async def throughput(trades: int, workdir: Path) -> float:
    rng = random.Random(5)
    async with SimServer(SimConfig.instant(seed=5, firehose_per_s=0)) as sim:
        tokens = [sim.add_market(Decimal("0.5")).tokens[0].token_id for _ in range(50)]
        port = free_port()
        config, state = workdir / "tp.yaml", workdir / "tp-state"
        write_config(config, sim, state, port, "paper")
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYCOPY_")}
        log = workdir / "tp.log"
        async with daemon(config, log, env):  # first start: follow from now
            await wait_ready(port)
        for leader, token, price, size in trade_rows(sim, tokens, trades, rng):
            sim.emit_trade(leader, token, "BUY", price, size)
        async with daemon(config, log, env) as proc:
            if os.environ.get("BENCH_PYSPY"):
                await asyncio.create_subprocess_exec(
                    os.environ["BENCH_PYSPY"],
                    "record",
                    "--pid",
                    str(proc.pid),
                    "-f",
                    "raw",
                    "-o",
                    "/tmp/prof.txt",
                    "-r",
                    "250",
                    "--duration",
                    "12",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            db = state / "polycopy-paper.sqlite3"
            deadline = time.monotonic() + 600
            while len(decisions(db)) < trades and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            rows = decisions(db)
    if len(rows) < trades:
        raise RuntimeError(f"only {len(rows)} of {trades} decisions; see {log}")
    times = sorted(time_of(ts) for _, ts in rows)
    return (len(times) - 1) / (times[-1] - times[0])


def time_of(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def latency(mode: str, rate: float, seconds: float, workdir: Path) -> list[float]:
    """Frame received → POST /order received (live), in seconds, one value per copy."""
    rng = random.Random(9)
    async with SimServer(SimConfig.instant(seed=9, firehose_per_s=50)) as sim:
        count = int(rate * seconds)
        tokens = [sim.add_market(Decimal("0.5")).tokens[0].token_id for _ in range(count)]
        port = free_port()
        config, state = workdir / f"lat-{mode}.yaml", workdir / f"lat-{mode}-state"
        write_config(config, sim, state, port, mode)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYCOPY_")}
        if mode == "live":
            env["POLYCOPY_PRIVATE_KEY"] = Account.create().key.hex()
        received: dict[str, float] = {}  # token → frame received by the bench's client
        posted: dict[str, float] = {}  # token → POST /order received by the simulator

        def on_order(_hash: str, body: Any) -> None:
            token = str(body.get("order", {}).get("tokenId", ""))
            posted.setdefault(token, time.monotonic())

        sim.on_order_arrival(on_order)
        async with daemon(config, workdir / f"lat-{mode}.log", env):
            await wait_ready(port, 60)
            async with websockets.connect(sim.rtds_url) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "action": "subscribe",
                            "subscriptions": [{"topic": "activity", "type": "orders_matched"}],
                        }
                    )
                )

                async def listen() -> None:
                    async for raw in ws:
                        now = time.monotonic()
                        if isinstance(raw, str) and raw.startswith("{"):
                            payload = json.loads(raw).get("payload", {})
                            received.setdefault(str(payload.get("asset")), now)

                listener = asyncio.create_task(listen())
                await asyncio.sleep(0.5)
                gap = 1.0 / rate
                began = time.monotonic()
                for i, (leader, _t, price, size) in enumerate(trade_rows(sim, tokens, count, rng)):
                    await asyncio.sleep(max(0.0, began + i * gap - time.monotonic()))
                    sim.emit_trade(leader, tokens[i], "BUY", price, size)
                await asyncio.sleep(2.0)
                listener.cancel()
            metrics = await fetch_metrics(port)
    if mode == "paper":
        return metrics
    return sorted(posted[t] - received[t] for t in posted if t in received)


async def fetch_metrics(port: int) -> list[float]:
    """The paper daemon's frame-received → fill-recorded histogram, as one value per bucket
    observation (bucket upper bounds: an upper estimate)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        text = await resp.text()
    values: list[float] = []
    last = 0.0
    for line in text.splitlines():
        if line.startswith("polycopy_detection_to_order_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            count = float(line.rsplit(" ", 1)[1])
            if bound != "+Inf":
                values += [float(bound)] * int(count - last)
                last = count
    return values


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["throughput", "latency"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="polycopy-bench-") as tmp:
        workdir = Path(os.environ.get("BENCH_KEEP_DIR") or tmp)  # keep logs to look at
        workdir.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "throughput"):
            rates = []
            for run in range(args.runs):
                run_dir = workdir / f"tp{run}"
                run_dir.mkdir()
                rates.append(asyncio.run(throughput(args.trades, run_dir)))
            print(
                f"daemon paper throughput, durable ledger: median {statistics.median(rates):,.0f}"
                f" leader trades/s over {args.runs} runs of {args.trades:,} "
                f"(range {min(rates):,.0f}–{max(rates):,.0f})"
            )
        if args.only in (None, "latency"):
            for mode in ("live", "paper"):
                p50s, p99s = [], []
                for run in range(args.runs):
                    run_dir = workdir / f"lat-{mode}{run}"
                    run_dir.mkdir()
                    values = asyncio.run(latency(mode, args.rate, args.seconds, run_dir))
                    p50s.append(pct(values, 0.50) * 1000)
                    p99s.append(pct(values, 0.99) * 1000)
                target = "POST /order received" if mode == "live" else "fill recorded"
                print(
                    f"latency {mode}, frame received → {target} at {args.rate:g} trades/s: "
                    f"p50 {statistics.median(p50s):.2f} ms, p99 {statistics.median(p99s):.2f} ms"
                    f" (median of {args.runs} runs)"
                )


if __name__ == "__main__":
    main()
