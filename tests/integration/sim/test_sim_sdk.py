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
from simkit import Trader

from polycopy.execution.sdk_env import environment_for
from polycopy.sim import SimServer
from polycopy.sim.state import Market


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
