"""`polycopy demo`: the design's $200 example, offline, end to end.

1. The simulated Polymarket plays a seeded generator of three small leaders and a whale
   (accelerated), and the real daemon (`polycopy run`, paper mode, a fresh ledger) copies them
   for a short, bounded time with live progress; then its dashboard is printed.
2. The same kind of activity is replayed twice — every leader FIXED_RATE at 0.01, then Budgeted
   Dynamic with budgets 60/60/50/30 — so a newcomer sees the whale's share of the exposure fall
   to its budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from polycopy.config import LoadedConfig, parse_config
from polycopy.observability.dashboard import render
from polycopy.replay import LeaderSummary, ReplayResult, replay
from polycopy.report import pct, table, usd
from polycopy.synth import PRACTICAL_EXAMPLE, ActivityGenerator, to_json_row

DEMO_HOURS = 2.0
DEMO_SPEED = 60.0  # one second of demo = one minute of leader activity


def demo_config_data() -> dict[str, Any]:
    """The embedded demo configuration (also at config/demo.yaml)."""
    text = resources.files("polycopy").joinpath("defaults/demo.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def fixed_rate_baseline(data: dict[str, Any]) -> dict[str, Any]:
    """The same leaders and rails, every leader FIXED_RATE at 0.01: how today's bots copy."""
    baseline = dict(data)
    baseline["sizing"] = {
        **data.get("sizing", {}),
        "sizing_mode_default": "FIXED_RATE",
        "fixed_copy_rate_default": "0.01",
    }
    baseline["leaders"] = [{"address": x["address"], "name": x["name"]} for x in data["leaders"]]
    return baseline


def write_synthetic_tape(
    out_dir: Path, seed: int, hours: float = DEMO_HOURS
) -> tuple[Path, list[Path]]:
    """A seeded tape of the example's leaders plus one positions snapshot per leader."""
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = ActivityGenerator(seed)
    snapshots = []
    for profile in PRACTICAL_EXAMPLE:
        rows = [to_json_row(r) for r in generator.positions_snapshot(profile)]
        path = out_dir / f"positions-{profile.name}.json"
        path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        snapshots.append(path)
    trades = [to_json_row(r) for r in generator.take(hours * 3600)]
    tape = out_dir / "tape.json"
    tape.write_text(json.dumps(trades, indent=1) + "\n", encoding="utf-8")
    return tape, snapshots


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _say(text: str) -> None:
    print(text, flush=True)


async def run_daemon_demo(out_dir: Path, seconds: float, seed: int) -> dict[str, Any]:
    """Simulator + the real daemon as a subprocess; returns the daemon's final /status."""
    from polycopy.sim.server import SimServer
    from polycopy.sim.settings import SimConfig

    sim_config = SimConfig(
        seed=seed,
        generate_seed=seed,
        speed=DEMO_SPEED,
        firehose_per_s=20.0,
        rtds_lag_s=0.2,
        rtds_trades_extra_lag_s=0.05,
        data_api_lag_s=1.0,
    )
    async with SimServer(sim_config) as sim:
        data = demo_config_data()
        data["state_dir"] = str(out_dir / "state")
        data["endpoints"] = sim.endpoints()
        port = _free_port()
        data["status"] = {"listen": f"127.0.0.1:{port}"}
        data["ingest"] = {"poll_interval_s": 2, "exposure_refresh_s": 5}
        config_path = out_dir / "demo-daemon.yaml"
        await asyncio.to_thread(_write_config, config_path, data)
        log_path = out_dir / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLYCOPY_")}
        _say(
            f"simulated Polymarket on {sim.url} — three small leaders and a whale, "
            f"{DEMO_SPEED:g}x real time"
        )
        _say(f"starting `polycopy run` in paper mode for {seconds:g} s (log: {log_path})")
        with await asyncio.to_thread(log_path.open, "wb") as log_file:
            daemon = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "polycopy",
                "run",
                "--config",
                str(config_path),
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
            status: dict[str, Any] = {}
            url = f"http://127.0.0.1:{port}/status"
            began = time.monotonic()
            try:
                async with aiohttp.ClientSession() as http:
                    while time.monotonic() - began < seconds:
                        await asyncio.sleep(1.0)
                        if daemon.returncode is not None:
                            break
                        try:
                            async with http.get(url) as resp:
                                status = await resp.json()
                        except (aiohttp.ClientError, ValueError):
                            continue
                        _say(_progress(status, time.monotonic() - began))
            finally:
                if daemon.returncode is None:
                    daemon.send_signal(signal.SIGTERM)
                code = await daemon.wait()
        _say(f"daemon stopped (exit {code}) after draining its queue")
        if code != 0:
            raise RuntimeError(f"the daemon exited with {code}; see {log_path}")
        return status


def _write_config(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)  # the daemon refuses a config others can write


def _progress(status: dict[str, Any], elapsed: float) -> str:
    ingest = status.get("ingest", {})
    counts: dict[str, int] = {}
    for leader in status.get("leaders", []):
        for outcome, n in leader.get("outcomes", {}).items():
            counts[outcome] = counts.get(outcome, 0) + n
    held = sum((Decimal(x["attributed"]) for x in status.get("leaders", [])), Decimal(0))
    whale: dict[str, Any] = next(
        (x for x in status.get("leaders", []) if x.get("name") == "whale"), {}
    )
    return (
        f"  {elapsed:4.0f}s  trades {ingest.get('trades_received', 0):>4}  "
        f"copied {counts.get('EXECUTED', 0) + counts.get('CAPPED', 0):>4}  "
        f"skipped {counts.get('SKIPPED', 0):>4}  held {usd(held):>8}  "
        f"whale {usd(Decimal(whale.get('attributed', '0')))}/{usd(_d(whale.get('budget')))}"
    )


def _d(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def run_demo(out_dir: Path, seconds: float = 40.0, seed: int = 7) -> str:
    """The whole demo: the replay comparison first, then the daemon live against the
    simulator; returns the closing dashboard (progress is printed as it goes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _say("== 1. what Budgeted Dynamic changes: the same leaders replayed with and without budgets")
    _say(run_replay_demo(out_dir, seed))
    _say("")
    _say("== 2. the real daemon, live against the simulated Polymarket")
    shutil.rmtree(out_dir / "state", ignore_errors=True)  # every demo starts from nothing
    status = asyncio.run(run_daemon_demo(out_dir, seconds, seed))
    return "\n".join(
        [
            "",
            f"ledger: {out_dir / 'state' / 'polycopy-paper.sqlite3'}",
            f"log:    {out_dir / 'daemon.log'} (JSON lines; one `copy_decided` per trade)",
            "",
            "the daemon's dashboard at the end (`polycopy status` draws it for a running daemon):",
            "",
            render(status),
        ]
    )


def run_replay_demo(out_dir: Path, seed: int = 7) -> str:
    tape, snapshots = write_synthetic_tape(out_dir, seed)
    data = demo_config_data()
    runs: dict[str, tuple[LoadedConfig, ReplayResult]] = {}
    for label, cfg_data in (("fixed", fixed_rate_baseline(data)), ("budgeted", data)):
        config = parse_config(cfg_data, environ={})
        with (out_dir / f"decisions-{label}.jsonl").open("w", encoding="utf-8") as out:
            runs[label] = (config, replay(config, [tape], out, positions=snapshots))
    return side_by_side(runs["fixed"][1], runs["budgeted"][1], tape, out_dir)


def side_by_side(fixed: ReplayResult, budgeted: ReplayResult, tape: Path, out_dir: Path) -> str:
    total_fixed = sum((s.attributed_exposure for s in fixed.leaders), Decimal(0))
    total_budget = sum((s.attributed_exposure for s in budgeted.leaders), Decimal(0))
    by_leader = {s.leader: s for s in budgeted.leaders}
    rows = []
    for f in fixed.leaders:
        b = by_leader[f.leader]
        rows.append(
            [
                f.name,
                str(f.trades),
                _copied(f),
                usd(f.attributed_exposure),
                pct(_share(f, total_fixed)),
                "|",
                _copied(b),
                usd(b.attributed_exposure),
                pct(_share(b, total_budget)),
                usd(b.budget),
                pct(b.utilization),
            ]
        )
    rows.append(
        [
            "total",
            str(sum(s.trades for s in fixed.leaders)),
            "",
            usd(total_fixed),
            "",
            "|",
            "",
            usd(total_budget),
            "",
            usd(sum((s.budget or Decimal(0) for s in budgeted.leaders), Decimal(0))),
            "",
        ]
    )
    body = table(
        [
            "leader",
            "trades",
            "copied",
            "exposure",
            "share",
            "|",
            "copied",
            "exposure",
            "share",
            "budget",
            "util",
        ],
        rows,
        right={1, 2, 3, 4, 6, 7, 8, 9, 10},
    )
    whale_fixed = next((s for s in fixed.leaders if s.name == "whale"), None)
    whale_budget = by_leader.get(whale_fixed.leader) if whale_fixed else None
    lines = [
        "polycopy demo — the design's $200 example, replayed offline",
        f"synthetic tape: {tape} ({fixed.stats.trades} leader trades over {DEMO_HOURS:g} h)",
        "",
        "left: every leader FIXED_RATE 0.01    right: BUDGETED_DYNAMIC, HARD budgets 60/60/50/30",
        body,
    ]
    if whale_fixed and whale_budget:
        lines += [
            "",
            "The whale's share of copied exposure: "
            f"{pct(_share(whale_fixed, total_fixed))} at a fixed rate, "
            f"{pct(_share(whale_budget, total_budget))} with its {usd(whale_budget.budget)} "
            f"budget ({pct(whale_budget.utilization)} used).",
        ]
    lines += [
        "Decisions, one JSON line per leader trade with its reason codes: "
        f"{out_dir}/decisions-fixed.jsonl, {out_dir}/decisions-budgeted.jsonl",
    ]
    return "\n".join(lines)


def _copied(summary: LeaderSummary) -> str:
    data = summary.to_json()
    return str(data["executed"] + data["capped"])


def _share(summary: LeaderSummary, total: Decimal) -> Decimal | None:
    return summary.attributed_exposure / total if total else None
