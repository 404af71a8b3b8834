"""The RTDS and CLOB market websockets as a client sees them."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_utils.address import to_checksum_address
from simkit import assert_same_shape, eventually, next_json, recorded, rtds
from websockets.asyncio.client import connect

from conftest import LEADER
from polycopy.sim import SimConfig, SimServer
from polycopy.sim.state import Market

# the verbatim production frame of reference §2.1 (captured 2026-08-19)
REAL_FRAME = {
    "connection_id": "gXseIO-NQWeIKEhJwA==",
    "payload": {
        "asset": "72551024098258542594534683942523606143014690620243023298497729957846870197074",
        "bio": "",
        "conditionId": "0x1d8720896546460a48d4f7fd5b3f0705a8d427921222de498d1cd334d4890c52",
        "eventSlug": "highest-temperature-in-wellington-on-august-19-2026",
        "icon": "https://x.jpg",
        "name": "PPMT",
        "outcome": "No",
        "outcomeIndex": 1,
        "price": 0.26,
        "profileImage": "",
        "proxyWallet": "0x510F4963b66B1B18505faaB74b0bB943D1dDa43C",
        "pseudonym": "Rowdy-Tenement",
        "side": "BUY",
        "size": 2.7027,
        "slug": "highest-temperature-in-wellington-on-august-19-2026-10c",
        "timestamp": 1787102287,
        "title": "Will the highest temperature in Wellington be 10C on August 19?",
        "transactionHash": "0xb6acf6859bc84216f4b3e2567fb392a2eae19d275340ad96ea17218ccfec27b7",
    },
    "timestamp": 1787102287053,
    "topic": "activity",
    "type": "trades",
}


async def test_a_taker_fill_comes_on_both_types_in_the_real_envelope(
    sim: SimServer, market: Market
) -> None:
    ws = await rtds(sim.rtds_url)
    async with ws:
        await eventually(lambda: sim.rtds.subscribers)
        await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
        fill = sim.emit_trade(LEADER, market.tokens[0].token_id, "BUY", Decimal("0.5"), Decimal(8))
        frames = [await next_json(ws) for _ in range(3)]
    kinds = sorted(f["type"] for f in frames)
    assert kinds == ["orders_matched", "trades", "trades"]
    for frame in frames:
        assert_same_shape([frame], [REAL_FRAME])
        assert_same_shape([frame["payload"]], [REAL_FRAME["payload"]])
        assert frame["topic"] == "activity"
        assert abs(frame["timestamp"] - time.time() * 1000) < 5_000
    ours = [f["payload"] for f in frames if f["payload"]["transactionHash"] == fill.tx_hash]
    leader_rows = [p for p in ours if p["proxyWallet"].lower() == LEADER]
    assert len(leader_rows) == 2  # a client on both types must dedupe
    assert all(p["proxyWallet"] == to_checksum_address(LEADER) for p in leader_rows)
    assert leader_rows[0]["size"] == 8
    maker = [p for p in ours if p["proxyWallet"].lower() != LEADER]
    assert len(maker) == 1  # the counterparty's maker row rides on `trades`
    assert maker[0]["side"] == "SELL"


async def test_a_maker_fill_comes_on_trades_only(sim: SimServer, market: Market) -> None:
    ws = await rtds(sim.rtds_url, "orders_matched")
    async with ws:
        await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
        token = market.tokens[0].token_id
        sim.emit_trade(LEADER, token, "SELL", Decimal("0.5"), Decimal(3), role="maker")
        sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(4))
        frame = await next_json(ws)
    assert frame["type"] == "orders_matched"
    assert frame["payload"]["size"] == 4  # the maker fill never reached orders_matched


async def test_ping_is_answered_with_an_empty_frame(sim: SimServer) -> None:
    async with connect(sim.rtds_url, ping_interval=None) as ws:
        await ws.send("PING")
        assert await asyncio.wait_for(ws.recv(), 2) == ""
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 2) == ""


async def test_the_firehose_carries_other_wallets_with_the_leaders_among_them(
    session: aiohttp.ClientSession,
) -> None:
    async with SimServer(SimConfig.instant(firehose_per_s=400)) as sim:
        market = sim.add_market()
        ws = await rtds(sim.rtds_url, "trades")
        async with ws:
            others = [await next_json(ws) for _ in range(20)]
            fill = sim.emit_trade(
                LEADER, market.tokens[0].token_id, "BUY", Decimal("0.5"), Decimal(3)
            )
            frames: list[dict[str, Any]] = []
            while not any(f["payload"]["proxyWallet"].lower() == LEADER for f in frames):
                assert len(frames) < 2_000, "the leader's frame never came"
                frames.append(await next_json(ws))
        async with session.get(sim.url + "/trades", params={"limit": "10000"}) as resp:
            feed = {(r["proxyWallet"], r["transactionHash"]) for r in await resp.json()}
    for frame in others:
        assert_same_shape([frame], [REAL_FRAME])
        assert_same_shape([frame["payload"]], [REAL_FRAME["payload"]])
        assert (frame["topic"], frame["type"]) == ("activity", "trades")
        wallet = frame["payload"]["proxyWallet"]
        assert wallet.lower() != LEADER
        assert wallet == to_checksum_address(wallet)
        # the same trades the Data API's trade feed shows
        assert (wallet.lower(), frame["payload"]["transactionHash"]) in feed
    assert len({f["payload"]["proxyWallet"] for f in others}) > 1
    (leader,) = [f for f in frames if f["payload"]["proxyWallet"].lower() == LEADER]
    assert leader["payload"]["transactionHash"] == fill.tx_hash
    assert leader["connection_id"] == others[0]["connection_id"]


async def test_tape_gaps_shrink_by_the_speed_on_the_emitted_timestamps(tmp_path: Path) -> None:
    """A tape with gaps of 2 s and 4 s from its first trade, played at two speeds: the RTDS
    envelopes (ms) of its trades keep those gaps divided by the speed."""
    tape = tmp_path / "tape.json"
    row = recorded("activity/edulabrador__polymarket-smart-money__trades.json")[0]
    rows = [
        {**row, "timestamp": row["timestamp"] + gap, "transactionHash": f"0x{i + 1:064x}"}
        for i, gap in enumerate((0, 2, 4))
    ]
    tape.write_text(json.dumps(rows), encoding="utf-8")
    offsets: dict[float, list[int]] = {}
    for speed in (4.0, 8.0):
        async with SimServer(SimConfig.instant(tapes=(tape,), speed=speed, paused=True)) as sim:
            ws = await rtds(sim.rtds_url, "orders_matched")
            async with ws:
                await eventually(
                    lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers)
                )
                sim.start_playback()
                stamps = [(await next_json(ws, 5))["timestamp"] for _ in rows]
        offsets[speed] = [stamp - stamps[0] for stamp in stamps]
    for speed, expected in ((4.0, (0, 500, 1_000)), (8.0, (0, 250, 500))):
        for got, want in zip(offsets[speed], expected, strict=True):
            # never early; late by at most what a loaded event loop adds
            assert want - 15 <= got <= want + 300, (speed, offsets[speed])


async def test_unsubscribe_and_slug_filters(sim: SimServer, market: Market) -> None:
    other = sim.add_market()
    filters = json.dumps({"event_slug": other.event_slug}, separators=(",", ":"))
    async with connect(sim.rtds_url, ping_interval=None) as ws:
        sub = {"topic": "activity", "type": "orders_matched", "filters": filters}
        await ws.send(json.dumps({"action": "subscribe", "subscriptions": [sub]}))
        await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
        sim.emit_trade(LEADER, market.tokens[0].token_id, "BUY", Decimal("0.5"), Decimal(1))
        sim.emit_trade(LEADER, other.tokens[0].token_id, "BUY", Decimal("0.5"), Decimal(2))
        frame = await next_json(ws)
        assert frame["payload"]["eventSlug"] == other.event_slug
        unsub = {"action": "unsubscribe", "subscriptions": [{"topic": "activity", "type": "*"}]}
        await ws.send(json.dumps({**unsub, "subscriptions": [sub]}))
        await eventually(lambda: not any(s.state["subscriptions"] for s in sim.rtds.subscribers))
        sim.emit_trade(LEADER, other.tokens[0].token_id, "BUY", Decimal("0.5"), Decimal(3))
        await ws.send("PING")
        assert await asyncio.wait_for(ws.recv(), 2) == ""  # nothing came before the pong


async def test_rtds_frames_come_after_their_lag() -> None:
    config = SimConfig.instant(rtds_lag_s=0.3, rtds_trades_extra_lag_s=0.2)
    async with SimServer(config) as sim:
        token = sim.add_market().tokens[0].token_id
        ws = await rtds(sim.rtds_url)
        async with ws:
            await eventually(lambda: any(s.state["subscriptions"] for s in sim.rtds.subscribers))
            started = time.monotonic()
            sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(1))
            first = await next_json(ws)
            first_at = time.monotonic() - started
            second = await next_json(ws)
            second_at = time.monotonic() - started
    assert first["type"] == "orders_matched"
    assert first_at >= 0.29
    assert second["type"] == "trades"
    assert second_at >= 0.49


async def test_market_channel_dumps_books_and_follows_trades(
    sim: SimServer, market: Market
) -> None:
    token = market.tokens[0].token_id
    async with connect(sim.clob_ws_url + "/market", ping_interval=None) as ws:
        await ws.send(json.dumps({"assets_ids": [token], "type": "market", "initial_dump": True}))
        dump = await next_json(ws)
        assert isinstance(dump, list)
        assert dump[0]["event_type"] == "book"
        assert dump[0]["asset_id"] == token
        sim.emit_trade(LEADER, token, "BUY", Decimal("0.55"), Decimal(5))
        events = [await next_json(ws) for _ in range(2)]
        kinds = {e["event_type"] for e in events}
        assert kinds == {"book", "last_trade_price"}
        book = next(e for e in events if e["event_type"] == "book")
        assert min(Decimal(a["price"]) for a in book["asks"]) == Decimal("0.55")
        await ws.send("PING")
        assert await asyncio.wait_for(ws.recv(), 2) == "PONG"


@pytest.mark.parametrize("channel", ["market", "user"])
async def test_clob_channels_answer_ping_with_pong(sim: SimServer, channel: str) -> None:
    async with connect(f"{sim.clob_ws_url}/{channel}", ping_interval=None) as ws:
        await ws.send("PING")
        assert await asyncio.wait_for(ws.recv(), 2) == "PONG"
