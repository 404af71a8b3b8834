"""CLOB REST as a client sees it: market data, POST /order matching and the venue's refusals,
look-ups, cancels, balances, the user channel."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from simkit import Trader, eventually, next_json
from websockets.asyncio.client import connect

from conftest import LEADER
from polycopy.sim import SimConfig, SimServer
from polycopy.sim.state import Market

FAK_NOTHING = (
    "no orders found to match with FAK order. "
    "FAK orders are partially filled or killed if no match is found."
)
FOK_UNFILLED = "order couldn't be fully filled. FOK orders are fully filled or killed."
D = Decimal


def units(amount: str) -> int:
    return int(D(amount) * 1_000_000)


def pinned(sim: SimServer, market: Market) -> str:
    token = market.tokens[0].token_id
    sim.set_book(
        token,
        bids=[(D("0.49"), D(10)), (D("0.48"), D(20))],
        asks=[(D("0.50"), D(10)), (D("0.51"), D(10)), (D("0.53"), D(100))],
    )
    return token


async def get(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_market_metadata_routes(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    token = market.tokens[0].token_id
    assert await get(session, sim.url + "/tick-size", token_id=token) == {"minimum_tick_size": 0.01}
    assert await get(session, sim.url + "/neg-risk", token_id=token) == {"neg_risk": False}
    info = await get(session, f"{sim.url}/clob-markets/{market.condition_id}")
    assert info["t"] == [{"t": t.token_id, "o": t.outcome} for t in market.tokens]
    assert info["mos"] == 5
    assert info["mts"] == 0.01
    assert "nr" not in info
    by_token = await get(session, f"{sim.url}/markets-by-token/{token}")
    assert by_token["condition_id"] == market.condition_id
    assert abs(await get(session, sim.url + "/time") - time.time()) < 5
    neg = sim.add_market(neg_risk=True, tick_size=D("0.001"))
    info = await get(session, f"{sim.url}/clob-markets/{neg.condition_id}")
    assert info["nr"] is True
    assert info["mts"] == 0.001


async def test_a_resolved_market_has_no_book_and_pays_its_winner(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    winner, loser = (t.token_id for t in market.tokens)
    sim.emit_trade(LEADER, winner, "BUY", D("0.60"), D("100"))
    sim.emit_trade(LEADER, loser, "BUY", D("0.40"), D("50"))
    sim.resolve_market(winner)
    for path in ("/book", "/midpoint"):
        async with session.get(sim.url + path, params={"token_id": winner}) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == "No orderbook exists for the requested token id"
    info = await get(session, f"{sim.url}/markets/{market.condition_id}")
    assert (info["closed"], info["active"], info["accepting_orders"]) == (True, False, False)
    assert {t["token_id"]: (t["winner"], t["price"]) for t in info["tokens"]} == {
        winner: (True, 1),
        loser: (False, 0),
    }
    rows = await get(session, sim.url + "/positions", user=LEADER, sizeThreshold="0")
    assert {r["asset"]: (r["curPrice"], r["redeemable"]) for r in rows} == {
        winner: (1, True),
        loser: (0, True),
    }
    redeemable = await get(session, sim.url + "/positions", user=LEADER, redeemable="true")
    assert len(redeemable) == 2


async def test_api_keys_are_created_once_then_derived(
    sim: SimServer, trader: Trader, session: aiohttp.ClientSession
) -> None:
    async with session.post(sim.url + "/auth/api-key", headers=trader.l1_headers()) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": "Could not create api key"})
    async with session.get(sim.url + "/auth/derive-api-key", headers=trader.l1_headers()) as resp:
        assert await resp.json() == trader.creds
    headers = {**trader.l1_headers(), "POLY_ADDRESS": Account.create().address}
    async with session.get(sim.url + "/auth/derive-api-key", headers=headers) as resp:
        assert (resp.status, await resp.json()) == (401, {"error": "Invalid L1 Request headers"})
    assert await trader.request("GET", "/auth/api-keys") == (
        200,
        {"apiKeys": [trader.creds["apiKey"]]},
    )


async def test_fak_buy_walks_the_book_within_its_limit_and_kills_the_rest(
    sim: SimServer, trader: Trader, session: aiohttp.ClientSession, market: Market
) -> None:
    token = pinned(sim, market)
    # $20 at most 0.52 a share: takes 10 @ 0.50 and 10 @ 0.51, never the 0.53 level
    status, body = await trader.post_order(
        trader.order(token, "BUY", units("20"), units("38.4615"))
    )
    assert status == 200
    assert body["success"] is True
    assert body["status"] == "matched"
    assert body["errorMsg"] == ""
    assert (body["makingAmount"], body["takingAmount"]) == ("10.1", "20")
    assert len(body["tradeIDs"]) == 1
    assert len(body["transactionsHashes"]) == 1
    book = await get(session, sim.url + "/book", token_id=token)
    assert [a["price"] for a in book["asks"]] == ["0.53"]
    account = sim.state.account(trader.address)
    assert account.collateral == D(10_000) - D("10.1")
    assert account.tokens[token] == D(20)

    _, trades = await trader.request("GET", "/data/trades", params={"id": body["tradeIDs"][0]})
    (trade,) = trades["data"]
    assert trade["taker_order_id"] == body["orderID"]
    assert (trade["size"], trade["price"], trade["status"]) == (
        "20",
        "0.505",
        "TRADE_STATUS_CONFIRMED",
    )
    assert [(m["price"], m["matched_amount"]) for m in trade["maker_orders"]] == [
        ("0.5", "10"),
        ("0.51", "10"),
    ]
    assert trades["next_cursor"] == "LTE="
    _, order = await trader.request("GET", f"/data/order/{body['orderID']}")
    assert order["status"] == "ORDER_STATUS_MATCHED"
    assert order["size_matched"] == "20"
    positions = await get(session, sim.url + "/positions", user=trader.address.lower())
    assert positions[0]["size"] == 20  # the follower's own fills reach the Data API too


async def test_fok_fills_completely_or_not_at_all(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)
    status, body = await trader.post_order(
        trader.order(token, "BUY", units("20"), units("38.4615"), order_type="FOK")
    )
    assert (status, body["errorMsg"], body["orderID"]) == (200, FOK_UNFILLED, "")
    assert sim.state.books[token].best_ask() == D("0.50")  # untouched
    status, body = await trader.post_order(
        trader.order(token, "BUY", units("10.1"), units("19.4230"), order_type="FOK")
    )
    assert (status, body["status"], body["takingAmount"]) == (200, "matched", "20")


async def test_fak_with_nothing_in_reach_answers_inside_a_200(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)
    status, body = await trader.post_order(trader.order(token, "BUY", units("5"), units("12.5")))
    assert status == 200
    assert body == {
        "errorMsg": FAK_NOTHING,
        "orderID": "",
        "takingAmount": "",
        "makingAmount": "",
        "status": "",
        "success": True,
    }


async def test_fak_sell_hits_bids_down_to_its_floor(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)
    sim.set_balance(trader.address, token_id=token, shares=D(50))
    status, body = await trader.post_order(trader.order(token, "SELL", units("15"), units("7.2")))
    assert status == 200
    assert (body["makingAmount"], body["takingAmount"]) == ("15", "7.3")  # 10@.49 + 5@.48
    assert sim.state.account(trader.address).tokens[token] == D(35)


async def test_the_venue_refuses_with_its_own_words(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)

    async def refusal(order: dict[str, Any]) -> tuple[int, str]:
        status, body = await trader.post_order(order)
        return status, body.get("error", body.get("errorMsg"))

    status, error = await refusal(
        trader.order(token, "BUY", 5_050_000, 10_000_000, order_type="GTC")
    )
    assert status == 400
    assert error.endswith("is invalid. Price (0.505) breaks minimum tick size rule: 0.01")
    status, error = await refusal(
        trader.order(token, "BUY", 9_950_000, 10_000_000, order_type="GTC")
    )
    assert error.endswith("Price (0.995) breaks minimum tick size rule: 0.01")
    status, error = await refusal(trader.order(token, "BUY", 9_990_000, 10_000_000))
    assert error.endswith("Price (0.999) breaks minimum tick size rule: 0.01")  # FAK alike
    status, error = await refusal(trader.order(token, "BUY", 10_000_000, 10_000_000))
    assert error.endswith("Price (1) breaks minimum tick size rule: 0.01")
    status, error = await refusal(trader.order(token, "BUY", 5_001_000, 9_805_800))  # 0.51
    assert error == (
        "invalid amounts, the market buy orders maker amount supports a max accuracy of 2 "
        "decimals, taker amount a max of 4 decimals"
    )
    status, error = await refusal(trader.order(token, "BUY", 5_000_000, 9_803_901))
    assert error.startswith("invalid amounts, the market buy orders")
    status, error = await refusal(trader.order(token, "BUY", 500_000, 1_000_000))
    assert error == "invalid amount for a marketable BUY order ($0.5), min size: $1"
    status, error = await refusal(
        trader.order(token, "BUY", 2_000_000, 4_000_000, order_type="GTC")
    )
    assert error.endswith("is invalid. Size (4) lower than the minimum: 5")
    status, error = await refusal(trader.order(token, "SELL", 5_000_000, 2_000_000))
    assert (status, error) == (400, "not enough balance / allowance")  # no shares to sell
    sim.set_balance(trader.address, collateral=D(3))
    status, error = await refusal(trader.order(token, "BUY", 5_000_000, 10_000_000))
    assert (status, error) == (400, "not enough balance / allowance")
    statuses = {o["status"] for o in sim.orders()}
    assert statuses == {"rejected"}
    assert len(sim.orders()) == 10


async def test_a_marketable_order_is_held_to_the_tick_grid_like_a_limit_order(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)
    sim.set_balance(trader.address, token_id=token, shares=D(50))
    for order_type in ("FAK", "FOK", "GTC"):  # $5.55 for 10 shares: 0.555 on a 0.01 grid
        order = trader.order(token, "BUY", units("5.55"), units("10"), order_type=order_type)
        status, body = await trader.post_order(order)
        assert status == 400
        assert body["error"].endswith("Price (0.555) breaks minimum tick size rule: 0.01")
    status, body = await trader.post_order(trader.order(token, "SELL", units("10"), units("4.85")))
    assert status == 400
    assert body["error"].endswith("Price (0.485) breaks minimum tick size rule: 0.01")
    # a FAK's received side is rounded to 4 decimals: $5.55 at 0.56 asks for 9.9107 shares
    # (5.55 / 9.9107 = 0.560001…), which the venue reads back as 0.56
    status, body = await trader.post_order(
        trader.order(token, "BUY", units("5.55"), units("9.9107"))
    )
    assert (status, body["status"]) == (200, "matched")
    assert sim.orders()[-1]["price"] == "0.56"
    assert {o["status"] for o in sim.orders()[:-1]} == {"rejected"}


async def test_after_a_tick_change_a_fak_on_the_old_grid_is_refused(
    sim: SimServer, trader: Trader
) -> None:
    token = sim.add_market(D("0.50"), tick_size=D("0.001")).tokens[0].token_id
    sim.set_book(token, bids=[(D("0.49"), D(100))], asks=[(D("0.555"), D(100))])
    status, body = await trader.post_order(trader.order(token, "BUY", units("5.55"), units("10")))
    assert (status, body["status"], body["takingAmount"]) == (200, "matched", "10")
    sim.change_tick(token, D("0.01"))  # the resting asks move up onto the new grid: 0.56
    status, body = await trader.post_order(trader.order(token, "BUY", units("5.55"), units("10")))
    refused = sim.orders()[-1]
    assert (status, body) == (
        400,
        {
            "error": f"order {refused['order_hash']} is invalid. Price (0.555) breaks minimum "
            "tick size rule: 0.01"
        },
    )
    assert refused["status"] == "rejected"
    status, body = await trader.post_order(trader.order(token, "BUY", units("5.6"), units("10")))
    assert (status, body["status"], body["takingAmount"]) == (200, "matched", "10")
    assert sim.orders()[-1]["price"] == "0.56"


async def test_the_marketable_minimum_is_a_dollar_for_buys_and_a_choice_for_sells(
    session: aiohttp.ClientSession,
) -> None:
    # BUY: $1 of pUSD offered, not the 5-share limit-order minimum (reference §3.4)
    async with SimServer(SimConfig.instant()) as sim:
        trader = await Trader(session, sim.url).login()
        token = pinned(sim, sim.add_market())
        status, body = await trader.post_order(
            trader.order(token, "BUY", units("0.99"), units("1.98"))
        )
        assert (status, body) == (
            400,
            {"error": "invalid amount for a marketable BUY order ($0.99), min size: $1"},
        )
        status, body = await trader.post_order(trader.order(token, "BUY", units("1"), units("2")))
        assert (status, body["status"], body["takingAmount"]) == (200, "matched", "2")
        # SELL: the venue documents no minimum; by default there is none
        sim.set_balance(trader.address, token_id=token, shares=D(10))
        status, body = await trader.post_order(
            trader.order(token, "SELL", units("1"), units("0.4"))
        )
        assert (status, body["status"], body["takingAmount"]) == (200, "matched", "0.49")
    expected = {
        "notional": "invalid amount for a marketable SELL order ($0.4), min size: $1",
        "shares": "is invalid. Size (1) lower than the minimum: 5",
    }
    for rule, error in expected.items():
        async with SimServer(SimConfig.instant(marketable_sell_minimum=rule)) as sim:
            trader = await Trader(session, sim.url).login()
            token = pinned(sim, sim.add_market())
            sim.set_balance(trader.address, token_id=token, shares=D(10))
            order = trader.order(token, "SELL", units("1"), units("0.4"))
            status, body = await trader.post_order(order)
            assert status == 400
            assert body["error"].endswith(error)
            status, body = await trader.post_order(
                trader.order(token, "SELL", units("5"), units("2.4"))  # $2.4, 5 shares: passes
            )
            assert (status, body["status"]) == (200, "matched")
    with pytest.raises(ValueError, match="marketable_sell_minimum"):
        SimConfig(marketable_sell_minimum="dollar")


async def test_signatures_signers_owners_and_auth_are_checked(
    sim: SimServer, trader: Trader, session: aiohttp.ClientSession, market: Market
) -> None:
    token = pinned(sim, market)
    tampered = trader.order(token, "BUY", units("5"), units("9.8039"), makerAmount=str(units("6")))
    assert await trader.post_order(tampered) == (400, {"error": "invalid signature"})

    stranger = Account.create()
    forged = trader.order(token, "BUY", units("5"), units("9.8039"), signer_key=stranger)
    assert await trader.post_order(forged) == (400, {"error": "invalid signature"})

    other = await Trader(session, sim.url).login()
    theirs = other.order(token, "BUY", units("5"), units("9.8039"))
    theirs["owner"] = trader.creds["apiKey"]
    assert await trader.post_order(theirs) == (
        400,
        {"error": "the order signer address has to be the address of the API KEY"},
    )
    mine = trader.order(token, "BUY", units("5"), units("9.8039"))
    mine["owner"] = other.creds["apiKey"]
    assert await trader.post_order(mine) == (
        400,
        {"error": "the order owner has to be the owner of the API KEY"},
    )

    trader.clock_offset = 45  # beyond the ±30 s the venue allows
    status, body = await trader.post_order(trader.order(token, "BUY", units("5"), units("9.8039")))
    assert (status, body) == (401, {"error": "Unauthorized/Invalid api key"})
    trader.clock_offset = 0
    headers = trader.l2_headers("POST", "/order", "{}")
    headers["POLY_SIGNATURE"] = headers["POLY_SIGNATURE"][::-1]
    async with session.post(sim.url + "/order", data="{}", headers=headers) as resp:
        assert resp.status == 401
    async with session.get(sim.url + "/data/trades") as resp:
        assert resp.status == 401
    forged_order = next(o for o in sim.orders() if o["order_signer"] == trader.address)
    assert forged_order["signer"] != trader.address  # the key that really signed
    assert {o["signer"] for o in sim.orders()} >= {stranger.address, other.address}


async def balance(trader: Trader, signature_type: int, token_id: str | None = None) -> str:
    params = {"asset_type": "CONDITIONAL" if token_id else "COLLATERAL"}
    params["signature_type"] = str(signature_type)
    if token_id:
        params["token_id"] = token_id
    status, body = await trader.request("GET", "/balance-allowance", params=params)
    assert status == 200, body
    return str(body["balance"])


async def test_proxy_and_safe_orders_move_the_wallet_balance_allowance_reports(
    sim: SimServer, trader: Trader, session: aiohttp.ClientSession, market: Market
) -> None:
    token = pinned(sim, market)
    safe, proxy = Account.create().address, Account.create().address
    sim.link_wallet(trader.address, safe, 2)
    sim.set_balance(safe, collateral=D(20))
    sim.set_balance(trader.address, collateral=D(7))
    assert (await balance(trader, 2), await balance(trader, 0)) == ("20000000", "7000000")
    order = trader.order(token, "BUY", units("5"), units("10"), maker=safe, signature_type=2)
    status, body = await trader.post_order(order)  # 0.50: takes 10 shares for $5
    assert (status, body["status"], body["makingAmount"]) == (200, "matched", "5")
    assert await balance(trader, 2) == "15000000"  # the Safe paid
    assert await balance(trader, 2, token) == "10000000"  # and holds the shares
    assert (await balance(trader, 0), await balance(trader, 0, token)) == ("7000000", "0")
    assert sim.orders()[-1]["signature_type"] == 2

    # a proxy nobody linked: the signer's first proxy order names it, later ones must too
    assert await balance(trader, 1) == "10000000000"  # what a fresh wallet holds
    order = trader.order(token, "BUY", units("5.1"), units("10"), maker=proxy, signature_type=1)
    assert (await trader.post_order(order))[0] == 200
    assert await balance(trader, 1) == str(10_000_000_000 - 5_100_000)
    elsewhere = Account.create().address
    order = trader.order(token, "BUY", units("5.1"), units("10"), maker=elsewhere, signature_type=1)
    assert await trader.post_order(order) == (400, {"error": "invalid signature"})
    async with session.post(
        sim.url + "/_sim/wallet", json={"signer": trader.address, "wallet": "0x1"}
    ) as resp:
        assert resp.status == 400


async def test_a_tampered_or_forged_safe_order_is_refused(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)
    safe = Account.create().address
    sim.link_wallet(trader.address, safe, 2)

    def safe_order(**options: Any) -> dict[str, Any]:
        return trader.order(
            token, "BUY", units("5"), units("10"), maker=safe, signature_type=2, **options
        )

    # its maker is not the signer, so only recovering the signer from the signature tells
    tampered = safe_order(makerAmount=str(units("6")), takerAmount=str(units("12")))
    assert await trader.post_order(tampered) == (400, {"error": "invalid signature"})
    stranger = Account.create()
    forged = safe_order(signer_key=stranger)
    assert await trader.post_order(forged) == (400, {"error": "invalid signature"})
    assert sim.orders()[-1]["signer"] == stranger.address
    assert {o["status"] for o in sim.orders()} == {"rejected"}
    assert sim.state.account(safe).collateral == D(10_000)  # nothing moved
    status, body = await trader.post_order(safe_order())
    assert (status, body["status"]) == (200, "matched")


async def test_a_hash_posted_twice_is_refused_as_duplicated_and_visible(
    sim: SimServer, trader: Trader, session: aiohttp.ClientSession, market: Market
) -> None:
    token = pinned(sim, market)
    arrivals: list[str] = []
    sim.on_order_arrival(lambda order_hash, _: arrivals.append(order_hash))
    body = json.dumps(trader.order(token, "BUY", units("5"), units("9.6153")))
    first = await trader.post_order(body)
    second = await trader.post_order(body)
    order_hash = first[1]["orderID"]
    assert first[0] == 200
    assert second == (400, {"error": f"order {order_hash} is invalid. Duplicated."})
    (order,) = await get(session, sim.url + "/_sim/orders", hash=order_hash)
    assert (order["received"], order["accepted"], order["status"]) == (2, 1, "matched")
    assert arrivals == [order_hash, order_hash]
    assert order["signer"] == trader.address
    posts = await get(session, sim.url + "/_sim/requests", path="/order")
    assert [p["order_hash"] for p in posts] == [order_hash, order_hash]
    assert all(p["headers"]["POLY_PASSPHRASE"] == "<redacted>" for p in posts)
    assert posts[0]["headers"]["POLY_API_KEY"] == trader.creds["apiKey"]


async def test_limit_orders_rest_and_cancel(sim: SimServer, trader: Trader, market: Market) -> None:
    token = pinned(sim, market)
    status, body = await trader.post_order(
        trader.order(token, "BUY", units("4"), units("10"), order_type="GTC")
    )
    assert (status, body["status"]) == (200, "live")
    _, open_orders = await trader.request("GET", "/data/orders")
    assert [o["id"] for o in open_orders["data"]] == [body["orderID"]]
    assert open_orders["data"][0]["status"] == "ORDER_STATUS_LIVE"
    payload = json.dumps({"orderID": body["orderID"]})
    _, canceled = await trader.request("DELETE", "/order", body=payload)
    assert canceled == {"canceled": [body["orderID"]], "not_canceled": {}}
    _, again = await trader.request("DELETE", "/order", body=payload)
    assert again["canceled"] == []
    _, open_orders = await trader.request("GET", "/data/orders")
    assert open_orders["data"] == []


async def test_neg_risk_orders_are_signed_for_the_neg_risk_exchange(
    sim: SimServer, trader: Trader
) -> None:
    token = sim.add_market(neg_risk=True).tokens[0].token_id
    wrong = trader.order(token, "BUY", units("5"), units("9.8039"), neg_risk=False)
    assert await trader.post_order(wrong) == (400, {"error": "invalid signature"})
    status, body = await trader.post_order(
        trader.order(token, "BUY", units("5"), units("9.8039"), neg_risk=True)
    )
    assert (status, body["status"]) == (200, "matched")


async def test_balances_heartbeats_and_the_dead_man_switch(session: aiohttp.ClientSession) -> None:
    async with SimServer(SimConfig.instant(heartbeat_timeout_s=0.1)) as sim:
        trader = await Trader(session, sim.url).login()
        token = sim.add_market().tokens[0].token_id
        sim.set_balance(trader.address, collateral=D("12.5"), token_id=token, shares=D(3))
        _, cash = await trader.request(
            "GET", "/balance-allowance", params={"asset_type": "COLLATERAL", "signature_type": "0"}
        )
        assert cash["balance"] == "12500000"
        assert set(cash["allowances"]) == {
            "0xE111180000d2663C0091e4f400237545B87B996B",
            "0xe2222d279d744050d28e00520010520000310F59",
        }
        _, held = await trader.request(
            "GET", "/balance-allowance", params={"asset_type": "CONDITIONAL", "token_id": token}
        )
        assert held["balance"] == "3000000"
        status, body = await trader.post_order(
            trader.order(token, "BUY", units("4"), units("10"), order_type="GTC")
        )
        assert body["status"] == "live"
        status, beat = await trader.request("POST", "/v1/heartbeats", body="{}")
        assert status == 200
        assert beat["heartbeat_id"]
        await eventually(lambda: sim.order(body["orderID"]).status == "canceled", within=5)


async def test_user_channel_reports_orders_and_trades(
    sim: SimServer, trader: Trader, market: Market
) -> None:
    token = pinned(sim, market)
    async with connect(sim.clob_ws_url + "/user", ping_interval=None) as ws:
        await ws.send(json.dumps({"auth": trader.creds, "type": "user", "markets": []}))
        await eventually(lambda: any("owner" in s.state for s in sim.user_ws.subscribers))
        _, body = await trader.post_order(trader.order(token, "BUY", units("5"), units("9.6153")))
        events = [await next_json(ws) for _ in range(3)]
    assert events[0]["event_type"] == "order"
    assert events[0]["id"] == body["orderID"]
    assert [e["status"] for e in events[1:]] == ["MATCHED", "CONFIRMED"]
    assert all(e["taker_order_id"] == body["orderID"] for e in events[1:])
    async with connect(sim.clob_ws_url + "/user", ping_interval=None) as ws:
        await ws.send(json.dumps({"auth": {**trader.creds, "secret": "x"}, "type": "user"}))
        await asyncio.wait_for(ws.wait_closed(), 2)
        assert ws.close_code == 4001


async def test_order_amounts_can_be_answered_in_base_units(
    session: aiohttp.ClientSession,
) -> None:
    async with SimServer(SimConfig.instant(order_amounts_in_base_units=True)) as sim:
        trader = await Trader(session, sim.url).login()
        token = pinned(sim, sim.add_market())
        _, body = await trader.post_order(trader.order(token, "BUY", units("5"), units("9.6153")))
    assert (body["makingAmount"], body["takingAmount"]) == ("5000000", "10000000")
