"""Leader activity: tapes re-timed to the simulator's clock, the seeded generator, paused
playback, bulk emission — and `polycopy sim serve` as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

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
        trades = sim.trades()
    assert later != start
    assert {t["side"] for t in trades} == {"BUY", "SELL"}
    traders: dict[str, set[str]] = {}
    for t in trades:
        traders.setdefault(t["conditionId"], set()).add(t["proxyWallet"])
    assert max(len(wallets) for wallets in traders.values()) >= 2  # leaders meet in a market


def notional(trade: dict[str, Any]) -> Decimal:
    return Decimal(trade["price"]) * Decimal(trade["size"])


def top_share(values: list[Decimal], top: float) -> Decimal:
    """The share of the total carried by the largest `top` fraction of the values."""
    ranked = sorted(values, reverse=True)
    return sum(ranked[: max(1, int(len(ranked) * top))], Decimal(0)) / sum(ranked, Decimal(0))


async def test_the_generator_sizes_are_heavy_tailed_and_the_whale_dwarfs_the_others() -> None:
    async with SimServer(SimConfig.instant(generate_seed=11, speed=1e6)) as sim:
        await eventually(lambda: len(sim.trades()) >= 1_500, within=20)
        trades = sim.trades()
    buys: dict[str, list[Decimal]] = {}
    for t in trades:
        if t["side"] == "BUY":  # sells are shares of a position, not drawn sizes
            buys.setdefault(t["proxyWallet"], []).append(notional(t))
    assert len(buys[WHALE]) >= 50
    # a few trades carry most of the money: far from the 5 % an even spread would give
    assert top_share([notional(t) for t in trades], 0.05) > Decimal("0.5")
    for wallet, sizes in buys.items():  # and each leader's own sizes have a long tail
        assert top_share(sizes, 0.05) > Decimal("0.15"), wallet
    medians = {wallet: statistics.median(sizes) for wallet, sizes in buys.items()}
    small = max(m for wallet, m in medians.items() if wallet != WHALE)
    assert medians[WHALE] > 50 * small  # orders of magnitude above the small leaders


async def test_emit_many_records_and_streams_every_row(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    token = sim.add_market().tokens[0].token_id
    rows = [
        {
            "proxyWallet": WHALE,
            "asset": token,
            "side": "BUY",
            "price": Decimal("0.5"),
            "size": Decimal(i + 1),
        }
        for i in range(2_000)
    ]
    ws = await rtds(sim.rtds_url, "orders_matched")
    async with ws:
        await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
        fills = sim.emit_many(rows)  # its speed is measured by bench/, never here
        streamed = [await next_json(ws) for _ in fills]
    hashes = [f.tx_hash for f in fills]
    assert len(set(hashes)) == 2_000  # each row got its own made-up tx hash
    assert [f["payload"]["transactionHash"] for f in streamed] == hashes
    assert [t["transactionHash"] for t in sim.trades()] == hashes
    async with session.get(sim.url + "/activity", params={"user": WHALE, "limit": 500}) as resp:
        assert len(await resp.json()) == 500


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
