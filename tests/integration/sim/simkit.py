"""Test clients for the simulator, written independently of it: EIP-712 signing through
eth_account, L2 HMAC by hand, plain aiohttp and websockets over loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from websockets.asyncio.client import ClientConnection, connect

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
ZERO32 = "0x" + "00" * 32
EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE = "0xe2222d279d744050d28e00520010520000310F59"


async def eventually(condition: Callable[[], Any], within: float = 5.0) -> Any:
    """Poll `condition` (sync or async) until it is truthy; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


def recorded(relative: str) -> Any:
    return json.loads((SHARED_DATA / relative).read_text(encoding="utf-8"))


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def schema(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Field name → the JSON types it takes across rows."""
    found: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.items():
            found.setdefault(key, set()).add(json_type(value))
    return found


def assert_same_shape(ours: list[dict[str, Any]], real: list[dict[str, Any]]) -> None:
    assert ours, "nothing to compare"
    mine, theirs = schema(ours), schema(real)
    assert set(mine) == set(theirs), set(mine) ^ set(theirs)
    for key, types in mine.items():
        assert types <= theirs[key], f"{key}: {types} vs recorded {theirs[key]}"


class Trader:
    """A CLOB client with a throwaway key: L1 to get API credentials, L2 for the rest."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.account = Account.create()
        self.address: str = self.account.address
        self.creds: dict[str, str] = {}
        self.clock_offset = 0.0

    async def login(self) -> Trader:
        async with self.session.post(
            self.base_url + "/auth/api-key", headers=self.l1_headers()
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.creds = await resp.json()
        return self

    def l1_headers(self) -> dict[str, str]:
        timestamp = str(int(time.time()))
        typed = {
            "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 137},
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                ],
                "ClobAuth": [
                    {"name": "address", "type": "address"},
                    {"name": "timestamp", "type": "string"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "message", "type": "string"},
                ],
            },
            "primaryType": "ClobAuth",
            "message": {
                "address": self.address,
                "timestamp": timestamp,
                "nonce": 0,
                "message": "This message attests that I control the given wallet",
            },
        }
        signature = self.account.sign_typed_data(full_message=typed).signature.hex()
        return {
            "POLY_ADDRESS": self.address,
            "POLY_SIGNATURE": "0x" + signature.removeprefix("0x"),
            "POLY_TIMESTAMP": timestamp,
            "POLY_NONCE": "0",
        }

    def l2_headers(self, method: str, path: str, body: str = "") -> dict[str, str]:
        timestamp = str(int(time.time() + self.clock_offset))
        secret = base64.urlsafe_b64decode(self.creds["secret"])
        digest = hmac.new(
            secret, f"{timestamp}{method}{path}{body}".encode(), hashlib.sha256
        ).digest()
        return {
            "POLY_ADDRESS": self.address,
            "POLY_API_KEY": self.creds["apiKey"],
            "POLY_PASSPHRASE": self.creds["passphrase"],
            "POLY_SIGNATURE": base64.urlsafe_b64encode(digest).decode(),
            "POLY_TIMESTAMP": timestamp,
        }

    def order(
        self,
        token_id: str,
        side: str,
        maker_amount: int,
        taker_amount: int,
        *,
        order_type: str = "FAK",
        neg_risk: bool = False,
        expiration: int = 0,
        signer_key: Any = None,
        maker: str | None = None,
        signature_type: int = 0,
        **wire: Any,
    ) -> dict[str, Any]:
        """A signed POST /order body. `wire` overrides fields after signing (to tamper).
        `maker` and `signature_type` make it a proxy (1) or Safe (2) wallet's order."""
        funder = maker or self.address
        message = {
            "salt": secrets.randbits(64),
            "maker": funder,
            "signer": self.address,
            "tokenId": int(token_id),
            "makerAmount": maker_amount,
            "takerAmount": taker_amount,
            "side": 0 if side == "BUY" else 1,
            "signatureType": signature_type,
            "timestamp": int(time.time() * 1000),
            "metadata": ZERO32,
            "builder": ZERO32,
        }
        typed = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Order": [
                    {"name": "salt", "type": "uint256"},
                    {"name": "maker", "type": "address"},
                    {"name": "signer", "type": "address"},
                    {"name": "tokenId", "type": "uint256"},
                    {"name": "makerAmount", "type": "uint256"},
                    {"name": "takerAmount", "type": "uint256"},
                    {"name": "side", "type": "uint8"},
                    {"name": "signatureType", "type": "uint8"},
                    {"name": "timestamp", "type": "uint256"},
                    {"name": "metadata", "type": "bytes32"},
                    {"name": "builder", "type": "bytes32"},
                ],
            },
            "primaryType": "Order",
            "domain": {
                "name": "Polymarket CTF Exchange",
                "version": "2",
                "chainId": 137,
                "verifyingContract": NEG_RISK_EXCHANGE if neg_risk else EXCHANGE,
            },
            "message": message,
        }
        signer = signer_key or self.account
        signed = signer.sign_typed_data(full_message=typed)
        order = {
            "salt": message["salt"],
            "maker": funder,
            "signer": self.address,
            "tokenId": token_id,
            "makerAmount": str(maker_amount),
            "takerAmount": str(taker_amount),
            "side": side,
            "expiration": str(expiration),
            "signatureType": signature_type,
            "timestamp": str(message["timestamp"]),
            "metadata": ZERO32,
            "builder": ZERO32,
            "signature": "0x" + signed.signature.hex().removeprefix("0x"),
        }
        order.update(wire)
        return {
            "order": order,
            "owner": self.creds["apiKey"],
            "orderType": order_type,
            "deferExec": False,
        }

    async def post_order(
        self, payload: dict[str, Any] | str, wait_s: float | None = None
    ) -> tuple[int, Any]:
        body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        return await self.request("POST", "/order", body=body, wait_s=wait_s)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: str = "",
        params: dict[str, str] | None = None,
        wait_s: float | None = None,
    ) -> tuple[int, Any]:
        headers = self.l2_headers(method, path, body)
        if body:
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method,
            self.base_url + path,
            data=body or None,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=wait_s),
        ) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


async def rtds(url: str, *types: str) -> ClientConnection:
    """An RTDS connection subscribed to the activity types given (default both)."""
    ws = await connect(url, ping_interval=None, max_queue=None)
    subscriptions = [
        {"topic": "activity", "type": t} for t in (types or ("trades", "orders_matched"))
    ]
    await ws.send(json.dumps({"action": "subscribe", "subscriptions": subscriptions}))
    return ws


async def next_json(ws: ClientConnection, wait_s: float = 2.0) -> Any:
    """The next frame that is JSON (empty frames and PONGs are skipped)."""
    while True:
        frame = await asyncio.wait_for(ws.recv(), wait_s)
        if isinstance(frame, str) and frame.startswith(("{", "[")):
            return json.loads(frame)


async def frames(ws: ClientConnection, count: int, wait_s: float = 2.0) -> list[str]:
    return [str(await asyncio.wait_for(ws.recv(), wait_s)) for _ in range(count)]
