"""Polymarket's official SDK (`polymarket-client`), pointed at the simulator with a throwaway
key: it authenticates, reads a book, posts a signed order and sees the fill; the simulator
recovers the right signer and refuses a bad signature."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlparse

import aiohttp
import pytest
from eth_account import Account
from polymarket import AsyncSecureClient
from polymarket._internal.environment import get_environment_config
from polymarket.models.clob.order_response import AcceptedOrder
from polymarket.models.clob.requests import PriceRequest
from simkit import Trader

from polycopy.execution.sdk_env import environment_for
from polycopy.sim import SimServer
from polycopy.sim.state import Market

D = Decimal
LEADER = "0x6031b6eed1c97e853c6e0f03ad3ce3529351f96d"


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[tuple[AsyncSecureClient, str]]:
    account = Account.create()  # a throwaway key, never stored
    environment = environment_for(
        sim.url, sim.url, rtds_url=sim.rtds_url, clob_ws_url=sim.clob_ws_url
    )
    sdk = await AsyncSecureClient.create(
        private_key=account.key.hex(), wallet=account.address, environment=environment
    )
    try:
        yield sdk, account.address
    finally:
        await sdk.close()


def test_every_sdk_url_stays_on_this_machine() -> None:
    environment = environment_for("http://127.0.0.1:1", "http://127.0.0.1:1")
    config = get_environment_config(environment)
    urls = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    urls = {name: url for name, url in urls.items() if name.endswith("_url")}
    assert len(urls) >= 10
    assert all(urlparse(url).hostname == "127.0.0.1" for url in urls.values()), urls
    assert config.chain_id == 137


async def test_the_sdk_places_an_order_and_the_simulator_recovers_its_signer(
    sim: SimServer, market: Market, client: tuple[AsyncSecureClient, str]
) -> None:
    sdk, address = client
    token = market.tokens[0].token_id
    book = await sdk.get_order_book(token_id=token)
    assert book.asks[-1].price == Decimal("0.51")  # best ask, last as on the wire

    placed = await sdk.place_market_order(
        token_id=token, side="BUY", amount=Decimal("5"), max_price=Decimal("0.56"), order_type="FAK"
    )
    assert isinstance(placed, AcceptedOrder)
    assert placed.status == "matched"
    assert placed.making_amount == Decimal("5")

    (order,) = sim.orders(order_hash=placed.order_id)
    assert order["signer"] == address  # recovered from the EIP-712 signature
    assert (order["status"], order["accepted"]) == ("matched", 1)

    seen = await sdk.get_order(order_id=placed.order_id)
    assert seen.size_matched == placed.taking_amount
    async for page in sdk.list_account_trades():
        assert [t.taker_order_id for t in page.items] == [placed.order_id]
        break
    paths = [r["path"] for r in sim.requests()]
    assert paths[:2] == ["/auth/api-key", "/book"]
    assert "/order" in paths


async def test_a_bad_signature_from_the_sdk_is_refused(
    sim: SimServer,
    market: Market,
    client: tuple[AsyncSecureClient, str],
    session: aiohttp.ClientSession,
) -> None:
    sdk, address = client
    token = market.tokens[0].token_id
    signed = await sdk.create_market_order(
        token_id=token, side="BUY", amount=Decimal("5"), max_price=Decimal("0.56")
    )
    # the SDK's own wire body, with one signed field changed after signing
    creds = sdk._ctx.credentials  # reading the SDK's credentials to post by hand
    trader = Trader(session, sim.url)
    trader.address = address
    trader.creds = {"apiKey": creds.key, "secret": creds.secret, "passphrase": creds.passphrase}
    body = {
        "order": {
            "salt": signed.salt,
            "maker": signed.maker,
            "signer": signed.signer,
            "tokenId": signed.token_id,
            "makerAmount": str(signed.maker_amount + 10_000),
            "takerAmount": str(signed.taker_amount),
            "side": signed.side,
            "expiration": "0",
            "signatureType": signed.signature_type,
            "timestamp": str(signed.timestamp),
            "metadata": signed.metadata,
            "builder": signed.builder,
            "signature": signed.signature,
        },
        "owner": creds.key,
        "orderType": "FAK",
        "deferExec": False,
    }
    assert await trader.post_order(json.dumps(body)) == (400, {"error": "invalid signature"})
    body["order"]["makerAmount"] = str(signed.maker_amount)
    status, accepted = await trader.post_order(json.dumps(body))
    assert (status, accepted["status"]) == (200, "matched")


async def test_the_sdk_reads_batch_prices_and_cancels_a_market_s_orders(
    sim: SimServer, market: Market, client: tuple[AsyncSecureClient, str]
) -> None:
    sdk, _ = client
    yes, no = (t.token_id for t in market.tokens)
    sim.set_book(yes, bids=[(D("0.48"), D(10))], asks=[(D("0.52"), D(10))])
    sim.emit_trade(LEADER, no, "SELL", D("0.47"), D(3))
    # the unpinned book follows the SELL: bids from 0.47, asks from 0.48
    assert await sdk.get_midpoints(token_ids=[yes, no]) == {yes: D("0.5"), no: D("0.475")}
    prices = await sdk.get_prices(
        requests=[PriceRequest(token_id=yes, side="BUY"), PriceRequest(token_id=yes, side="SELL")]
    )
    assert prices == {yes: {"BUY": D("0.48"), "SELL": D("0.52")}}  # BUY: the best bid
    assert (await sdk.get_spreads(token_ids=[yes]))[yes] == D("0.04")
    (last,) = await sdk.get_last_trade_prices(token_ids=[no])
    assert (last.asset_id, last.price, last.side) == (no, D("0.47"), "SELL")
    for token in (yes, no):
        resting = await sdk.place_limit_order(
            token_id=token, side="BUY", price=D("0.3"), size=D("10")
        )
        assert resting.status == "live"
    canceled = await sdk.cancel_market_orders(token_id=yes)
    assert len(canceled.canceled) == 1
    assert {o["token_id"]: o["status"] for o in sim.orders()} == {yes: "canceled", no: "live"}
    canceled = await sdk.cancel_market_orders(market=market.condition_id)
    assert len(canceled.canceled) == 1
