"""Leader activity: tapes re-timed to the simulator's clock, the seeded generator, paused
playback, bulk emission — and `polycopy sim serve` as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from decimal import Decimal

import aiohttp
import yaml
from simkit import SHARED_DATA, eventually, next_json, rtds

from conftest import WHALE
from polycopy.sim import SimConfig, SimServer
from polycopy.synth import PRACTICAL_EXAMPLE

KCH = "0x6a72f61820b26b1fe4d956e17b6dc2a1ea3033ee"  # the leader of jm709's tape


async def test_a_tape_replays_at_speed_with_current_timestamps(
    session: aiohttp.ClientSession,
) -> None:
    tape = SHARED_DATA / "activity" / "jm709__pscanner__activity.json"
    config = SimConfig.instant(tapes=(tape,), speed=1_000_000, paused=True)
    async with SimServer(config) as sim:
        assert sim.trades() == []  # paused: nothing before POST /_sim/start
        ws = await rtds(sim.rtds_url, "orders_matched")
        async with ws:
            await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
            async with session.post(sim.url + "/_sim/start") as resp:
                assert resp.status == 200
            frame = await next_json(ws)
            await eventually(lambda: sim.status()["finished"])
        async with session.get(sim.url + "/_sim/trades") as resp:
            trades = await resp.json()
        async with session.get(sim.url + "/activity", params={"user": KCH}) as resp:
            activity = await resp.json()
    assert len(trades) == 10
    assert {t["proxyWallet"] for t in trades} == {KCH}
    now = time.time()
    assert all(abs(t["timestamp"] - now) < 30 for t in trades)  # re-timed to now
    assert frame["payload"]["proxyWallet"].lower() == KCH
    assert frame["payload"]["title"]  # the tape's enrichment is kept
    assert len(activity) == 10
    assert {a["transactionHash"] for a in activity} == {t["transactionHash"] for t in trades}


async def test_tape_gaps_are_divided_by_the_speed() -> None:
    tape = SHARED_DATA / "activity" / "edulabrador__polymarket-smart-money__trades.json"
    async with SimServer(SimConfig.instant(tapes=(tape,), speed=1e9)) as sim:
        await eventually(lambda: sim.status()["finished"])
        assert len(sim.trades()) == 5
    # the same tape at a speed that stretches its first gap beyond the test's patience
    async with SimServer(SimConfig.instant(tapes=(tape,), speed=1e-3)) as sim:
        await eventually(lambda: sim.trades())
        assert len(sim.trades()) == 1


async def test_the_generator_plays_several_leaders_and_a_whale_whose_exposure_moves(
    session: aiohttp.ClientSession,
) -> None:
    config = SimConfig.instant(generate_seed=7, speed=3_000, paused=True)
    async with SimServer(config) as sim:
        async with session.get(sim.url + "/value", params={"user": WHALE}) as resp:
            start = (await resp.json())[0]["value"]
        assert start > 100_000  # the whale's opening positions
        sim.start_playback()
        leaders = {p.address for p in PRACTICAL_EXAMPLE}
        await eventually(lambda: {t["proxyWallet"] for t in sim.trades()} == leaders, within=10)
        await eventually(lambda: any(t["proxyWallet"] == WHALE for t in sim.trades()[1:]))
        async with session.get(sim.url + "/value", params={"user": WHALE}) as resp:
            later = (await resp.json())[0]["value"]
        sides = {t["side"] for t in sim.trades()}
        shared = {t["conditionId"] for t in sim.trades()}
    assert later != start
    assert sides == {"BUY", "SELL"}
    assert len(shared) < len(sim.trades())  # leaders meet in the same markets


async def test_emit_many_is_fast_enough_for_benchmarks(sim: SimServer) -> None:
    token = sim.add_market().tokens[0].token_id
    rows = [
        {
            "proxyWallet": WHALE,
            "asset": token,
            "side": "BUY",
            "price": Decimal("0.5"),
            "size": Decimal(i + 1),
        }
        for i in range(5_000)
    ]
    ws = await rtds(sim.rtds_url)
    async with ws:
        await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
        started = time.perf_counter()
        fills = sim.emit_many(rows)
        elapsed = time.perf_counter() - started
        await eventually(lambda: all(s.queue.empty() for s in sim.rtds.subscribers))
    assert len(fills) == 5_000
    assert len({f.tx_hash for f in fills}) == 5_000
    assert elapsed < 5.0  # far below in practice; a loose bound for slow CI machines


async def test_sim_serve_prints_its_endpoints_and_stops_cleanly_on_sigterm(
    session: aiohttp.ClientSession,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "polycopy",
        "sim",
        "serve",
        "--generate",
        "3",
        "--port",
        "0",
        "--paused",
        "--speed",
        "100",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        lines = [(await asyncio.wait_for(process.stdout.readline(), 30)).decode()]
        while not lines[-1].startswith("#"):
            lines.append((await asyncio.wait_for(process.stdout.readline(), 10)).decode())
        endpoints = yaml.safe_load("".join(lines[1:]))["endpoints"]
        base = endpoints["clob_url"]
        assert base.startswith("http://127.0.0.1:")
        assert endpoints["data_api_url"] == base
        assert endpoints["rtds_url"] == base.replace("http", "ws") + "/rtds"
        assert endpoints["clob_ws_url"] == base.replace("http", "ws") + "/ws"
        async with session.post(base + "/_sim/start") as resp:
            assert resp.status == 200

        async def playing() -> bool:
            async with session.get(base + "/_sim/status") as resp:
                return bool((await resp.json())["leader_trades"])

        await eventually(playing, within=10)
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
    assert code == 0
