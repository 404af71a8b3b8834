"""Every fault the simulator injects, triggered (from Python or over `POST /_sim/faults`) and
observed from a client over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import websockets
from simkit import Trader, eventually, next_json, rtds
from websockets.asyncio.client import connect

from conftest import LEADER
from polycopy.sim import (
    AcceptThenHang,
    Disconnect,
    Drop,
    Duplicated,
    ErrorStatus,
    Malformed,
    PartialFill,
    RateLimit,
    RejectOrder,
    Reordered,
    Silence,
    SimServer,
    Slow,
    Truncated,
)
from polycopy.sim.state import Market

D = Decimal


async def arm(session: aiohttp.ClientSession, sim: SimServer, body: Any) -> Any:
    async with session.post(sim.url + "/_sim/faults", json=body) as resp:
        return resp.status, await resp.json()


async def status_of(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as resp:
        return resp.status, resp.headers


async def subscribed(sim: SimServer) -> None:
    await eventually(lambda: any(s.state.get("subscriptions") for s in sim.rtds.subscribers))


# --- HTTP ------------------------------------------------------------------------------------
async def test_429_with_retry_after_armed_over_the_control_route(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    fault = {"fault": "rate_limit", "path": "/activity", "retry_after_s": 2, "times": 2}
    assert await arm(session, sim, fault) == (200, {"armed": [1]})
    url = f"{sim.url}/activity?user={LEADER}"
    for _ in range(2):
        status, headers = await status_of(session, url)
        assert (status, headers["Retry-After"]) == (429, "2")
    assert (await status_of(session, url))[0] == 200
    async with session.get(sim.url + "/_sim/faults") as resp:
        listing = await resp.json()
    assert listing["armed"] == []
    assert [f["fault"] for f in listing["fired"]] == ["rate_limit", "rate_limit"]


async def test_5xx_425_and_html_403(
    sim: SimServer, session: aiohttp.ClientSession, trader: Trader, market: Market
) -> None:
    sim.faults.arm(ErrorStatus(path="/book", status=503, retry_after_s=1))
    status, headers = await status_of(session, f"{sim.url}/book?token_id=1")
    assert (status, headers["Retry-After"]) == (503, "1")
    sim.faults.arm(ErrorStatus(path="/order", method="POST", status=425))
    token = market.tokens[0].token_id
    status, _ = await trader.post_order(trader.order(token, "BUY", 5_000_000, 9_803_900))
    assert status == 425
    assert sim.orders() == []  # refused before the venue looked at it
    html = "<html><body>Attention Required! | Cloudflare</body></html>"
    sim.faults.arm(ErrorStatus(path="/v2/*", status=403, body=html, content_type="text/html"))
    async with session.get(f"{sim.url}/v2/activity?user={LEADER}") as resp:
        assert resp.status == 403
        assert resp.content_type == "text/html"
        assert "Cloudflare" in await resp.text()


async def test_slow_responses(sim: SimServer, session: aiohttp.ClientSession) -> None:
    sim.faults.arm(Slow(path="/value", delay_s=0.3))
    started = time.monotonic()
    status, _ = await status_of(session, f"{sim.url}/value?user={LEADER}")
    assert status == 200
    assert time.monotonic() - started >= 0.3


async def test_dropped_connections(sim: SimServer, session: aiohttp.ClientSession) -> None:
    # aiohttp retries an idempotent request once after a dropped connection: drop both
    sim.faults.arm(Drop(path="/trades", times=2))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await status_of(session, f"{sim.url}/trades")
    assert (await status_of(session, f"{sim.url}/trades"))[0] == 200
    seen = [(r["fault"], r["status"]) for r in sim.requests(path="/trades")[:2]]
    assert seen == [("drop", None), ("drop", None)]


async def test_accept_then_hang_matches_the_order_but_never_answers(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    sim.faults.arm(AcceptThenHang())
    body = json.dumps(trader.order(market.tokens[0].token_id, "BUY", 5_000_000, 9_803_900))
    with pytest.raises(asyncio.TimeoutError):
        await trader.post_order(body, wait_s=0.5)
    (order,) = sim.orders()
    assert (order["status"], order["accepted"]) == ("matched", 1)  # it did happen
    status, answer = await trader.post_order(body)  # an identical resend
    assert (status, answer["error"]) == (
        400,
        f"order {order['order_hash']} is invalid. Duplicated.",
    )
    assert sim.orders()[0]["received"] == 2
    assert [r["status"] for r in sim.requests(path="/order")] == [None, 400]


async def test_accept_then_close(sim: SimServer, trader: Trader, market: Market) -> None:
    sim.faults.arm(AcceptThenHang(close=True))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await trader.post_order(
            trader.order(market.tokens[0].token_id, "BUY", 5_000_000, 9_803_900)
        )
    assert sim.orders()[0]["status"] == "matched"


async def test_probability_is_seeded_and_faults_clear(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    sim.faults.arm(RateLimit(path="/time", probability=0.5, times=None))
    statuses = [(await status_of(session, sim.url + "/time"))[0] for _ in range(40)]
    assert 5 < statuses.count(429) < 35
    assert await arm(session, sim, {"clear": True}) == (200, {"cleared": 1})
    assert (await status_of(session, sim.url + "/time"))[0] == 200
    status, error = await arm(session, sim, {"fault": "rate_limit", "colour": "red"})
    assert status == 400
    assert "colour" in error["error"]
    assert (await arm(session, sim, {"fault": "nope"}))[0] == 400


async def test_the_control_routes_refuse_what_they_cannot_do_and_arm_all_or_nothing(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    token = market.tokens[0].token_id
    status, body = await arm(session, sim, {"clear": "x"})
    assert status == 400
    assert body["error"].startswith("clear: expected true or a fault id")
    good = {"fault": "rate_limit", "path": "/time"}
    refused = [
        ([good, {"fault": "silence", "channel": "nowhere"}], "[1] silence: channel"),
        ([good, {"fault": "tick_size_change", "token_id": "1", "tick_size": "0.1"}], "unknown"),
        ({"fault": "tick_size_change", "token_id": token, "tick_size": "0"}, "tick_size"),
        ({"fault": "slow", "delay_s": "abc"}, "slow.delay_s: expected float"),
        ({"fault": "partial_fill", "fraction": "2"}, "fraction"),
        ({"fault": "rate_limit", "times": 0}, "times"),
        ([], "non-empty list"),
    ]
    for fault, reason in refused:
        status, body = await arm(session, sim, fault)
        assert status == 400, fault
        assert reason in body["error"], body
    assert sim.faults.listing() == []  # the good entries before a bad one were not armed
    assert market.tick_size == D("0.01")
    for route in ("/_sim/requests", "/_sim/trades"):
        async with session.get(sim.url + route, params={"since": "abc"}) as resp:
            assert resp.status == 400
            assert "since" in (await resp.json())["error"]
    async with session.post(sim.url + "/_sim/emit", json=["not a row"]) as resp:
        assert resp.status == 400
    status, body = await arm(session, sim, [good, {"fault": "silence", "channel": "rtds"}])
    assert status == 200
    first, second = body["armed"]
    assert [f["id"] for f in sim.faults.listing()] == [first, second]
    assert await arm(session, sim, {"clear": first}) == (200, {"cleared": 1})
    assert [f["id"] for f in sim.faults.listing()] == [second]


# --- streams ---------------------------------------------------------------------------------
async def test_a_silent_stream_still_answers_ping(sim: SimServer, market: Market) -> None:
    token = market.tokens[0].token_id
    ws = await rtds(sim.rtds_url, "orders_matched")
    async with ws:
        await subscribed(sim)
        sim.faults.arm(Silence())
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(1))
        await ws.send("PING")
        assert await asyncio.wait_for(ws.recv(), 2) == ""  # the pong, and no trade before it
        sim.faults.clear()
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(2))
        assert (await next_json(ws))["payload"]["size"] == 2


async def test_the_market_channel_initial_dump_goes_through_stream_faults(
    sim: SimServer, market: Market
) -> None:
    yes, no = (t.token_id for t in market.tokens)
    async with connect(sim.clob_ws_url + "/market", ping_interval=None) as ws:
        sim.faults.arm(Silence(channel="market", times=1))
        await ws.send(json.dumps({"assets_ids": [yes], "type": "market"}))
        await ws.send("PING")
        assert await asyncio.wait_for(ws.recv(), 2) == "PONG"  # no dump came before it
        sim.faults.arm(Duplicated(channel="market"))
        await ws.send(json.dumps({"operation": "subscribe", "assets_ids": [no]}))
        first, second = await next_json(ws), await next_json(ws)
    assert first == second
    assert [e["asset_id"] for e in first] == [no]
    assert [f["fault"] for f in sim.faults.fired] == ["silence", "duplicate"]


@pytest.mark.parametrize("style", ["bad_values", "garbage"])
async def test_malformed_frames(sim: SimServer, market: Market, style: str) -> None:
    ws = await rtds(sim.rtds_url, "orders_matched")
    async with ws:
        await subscribed(sim)
        sim.faults.arm(Malformed(style=style))
        sim.emit_trade(LEADER, market.tokens[0].token_id, "BUY", D("0.5"), D(1))
        broken = await asyncio.wait_for(ws.recv(), 2)
        real = json.loads(await asyncio.wait_for(ws.recv(), 2))
    if style == "garbage":
        with pytest.raises(json.JSONDecodeError):  # not JSON at all
            json.loads(broken)
    else:
        payload = json.loads(broken)["payload"]
        assert (payload["price"], payload["size"], payload["side"]) == ("1.5", -3, "HOLD")
        assert payload["proxyWallet"] == real["payload"]["proxyWallet"]  # passes wallet filters
    assert real["payload"]["size"] == 1


async def test_truncated_frames(sim: SimServer, market: Market) -> None:
    token = market.tokens[0].token_id
    ws = await rtds(sim.rtds_url, "orders_matched")
    async with ws:
        await subscribed(sim)
        sim.faults.arm(Truncated())
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(1))
        cut = await asyncio.wait_for(ws.recv(), 2)
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(2))
        whole = json.loads(await asyncio.wait_for(ws.recv(), 2))
    assert isinstance(cut, str)
    assert cut.startswith('{"connection_id"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    assert whole["payload"]["size"] == 2


async def test_duplicated_and_reordered_frames(sim: SimServer, market: Market) -> None:
    token = market.tokens[0].token_id
    ws = await rtds(sim.rtds_url, "orders_matched")
    async with ws:
        await subscribed(sim)
        sim.faults.arm(Duplicated())
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(1))
        twins = [await asyncio.wait_for(ws.recv(), 2) for _ in range(2)]
        assert twins[0] == twins[1]
        sim.faults.arm(Reordered())
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(2))
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(3))
        sizes = [(await next_json(ws))["payload"]["size"] for _ in range(2)]
    assert sizes == [3, 2]


async def test_disconnect_without_close_frame_then_refusal(sim: SimServer) -> None:
    ws = await rtds(sim.rtds_url)
    async with ws:
        await subscribed(sim)
        sim.faults.arm(Disconnect(refuse_s=0.5))
        with pytest.raises(websockets.ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 2)
        assert ws.close_code == 1006
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(sim.rtds_url)
    assert refused.value.response.status_code == 503

    async def reconnects() -> bool:
        try:
            async with connect(sim.rtds_url):
                return True
        except websockets.InvalidStatus:
            return False

    await eventually(reconnects, within=3)
    sim.faults.arm(ErrorStatus(path="/rtds", status=403))  # a refused upgrade
    with pytest.raises(websockets.InvalidStatus) as forbidden:
        await connect(sim.rtds_url)
    assert forbidden.value.response.status_code == 403


async def test_market_channel_faults_and_tick_size_changes(
    sim: SimServer, session: aiohttp.ClientSession, market: Market, trader: Trader
) -> None:
    token = market.tokens[0].token_id
    async with connect(sim.clob_ws_url + "/market", ping_interval=None) as ws:
        await ws.send(json.dumps({"assets_ids": [token], "type": "market"}))
        await next_json(ws)  # the initial dump
        body = {"fault": "tick_size_change", "token_id": token, "tick_size": "0.001"}
        assert (await arm(session, sim, body))[0] == 200
        event = await next_json(ws)
        assert event["event_type"] == "tick_size_change"
        assert (event["old_tick_size"], event["new_tick_size"]) == ("0.01", "0.001")
        regridded = await next_json(ws)
        assert regridded["event_type"] == "book"
        sim.faults.arm(Duplicated(channel="market"))
        sim.emit_trade(LEADER, token, "BUY", D("0.5"), D(1))
        first, second = await ws.recv(), await ws.recv()
        assert first == second
    async with session.get(sim.url + "/tick-size", params={"token_id": token}) as resp:
        assert await resp.json() == {"minimum_tick_size": 0.001}
    # a 0.505 limit is on the new grid
    status, placed = await trader.post_order(
        trader.order(token, "BUY", 5_050_000, 10_000_000, order_type="GTC")
    )
    assert (status, placed["errorMsg"]) == (200, "")


# --- orders ----------------------------------------------------------------------------------
async def test_forced_partial_fills_and_rejections(
    sim: SimServer, session: aiohttp.ClientSession, trader: Trader, market: Market
) -> None:
    token = market.tokens[0].token_id
    sim.faults.arm(PartialFill(max_shares=D("3.2")))
    status, body = await trader.post_order(trader.order(token, "BUY", 6_000_000, 10_000_000))
    assert (status, body["status"], body["takingAmount"]) == (200, "matched", "3.2")
    fault = {"fault": "reject_order", "error": "not enough balance / allowance"}
    assert (await arm(session, sim, fault))[0] == 200
    status, body = await trader.post_order(trader.order(token, "BUY", 6_000_000, 10_000_000))
    assert (status, body) == (400, {"error": "not enough balance / allowance"})
    sim.faults.arm(
        RejectOrder(error="the market is not yet ready to process new orders", status=200)
    )
    status, body = await trader.post_order(trader.order(token, "BUY", 6_000_000, 10_000_000))
    assert status == 200
    assert body["errorMsg"] == "the market is not yet ready to process new orders"
    assert body["orderID"] == ""
