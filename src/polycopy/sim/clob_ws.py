"""The CLOB websockets: `/ws/market` (books, trades, tick changes per asset) and `/ws/user`
(your own orders and trades), with the event shapes of reference §2.2–2.3.

Market: subscribe with `{"assets_ids": [...], "type": "market", "initial_dump": true}` or
`{"operation": "subscribe"|"unsubscribe", "assets_ids": [...]}`; the initial dump is one frame
holding a JSON array of `book` events; a trade that moves a book sends a fresh `book` event, a
fill a `last_trade_price`, a tick change `tick_size_change`. User: `{"auth": {"apiKey",
"secret", "passphrase"}, "type": "user", "markets": [...]}` then `order` and `trade` events.
Both answer text `PING` with `PONG`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from polycopy.sim.auth import KeyStore
from polycopy.sim.book import Book
from polycopy.sim.faults import Faults
from polycopy.sim.settings import SimConfig
from polycopy.sim.state import ActivityFill, ClobTrade, Market, SimOrder, SimState, StateListener
from polycopy.sim.streams import StreamHub, Subscriber
from polycopy.sim.wire import compact, text

_AUTH_FAILED = 4001


class MarketHub(StreamHub, StateListener):
    channel = "market"

    def __init__(self, state: SimState, faults: Faults, config: SimConfig) -> None:
        super().__init__(faults, config)
        self.state = state

    def opened(self, sub: Subscriber) -> None:
        sub.state["assets"] = set()

    def on_text(self, sub: Subscriber, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("assets_ids"), list):
            return
        assets = [str(a) for a in message["assets_ids"]]
        subscribed: set[str] = sub.state["assets"]
        if message.get("operation") == "unsubscribe":
            subscribed.difference_update(assets)
            return
        fresh = [a for a in assets if a not in subscribed]
        subscribed.update(assets)
        if message.get("initial_dump", True) and fresh:
            dump = [self._book_event(a) for a in fresh if a in self.state.books]
            if dump:
                frame = compact(dump)
                self.deliver([sub], lambda _: frame)  # a data frame like any other: faults apply

    def _targets(self, asset_id: str) -> list[Subscriber]:
        return [s for s in self.subscribers if asset_id in s.state["assets"]]

    def _book_event(self, asset_id: str) -> dict[str, Any]:
        market = self.state.market_of(asset_id)
        assert market is not None
        wire = self.state.books[asset_id].wire(
            min_order_size=market.min_order_size, neg_risk=market.neg_risk
        )
        return {
            "event_type": "book",
            "asset_id": asset_id,
            "market": market.condition_id,
            "bids": wire["bids"],
            "asks": wire["asks"],
            "timestamp": wire["timestamp"],
            "hash": wire["hash"],
        }

    # --- state changes -------------------------------------------------------------------------
    def book_changed(self, market: Market, book: Book) -> None:
        targets = self._targets(book.token_id)
        if targets:
            frame = compact(self._book_event(book.token_id))
            self.deliver(targets, lambda _: frame)

    def fill_recorded(self, fill: ActivityFill) -> None:
        if fill.origin == "counterparty":
            return  # the other side of a trade already announced
        asset = fill.token.token_id
        targets = self._targets(asset)
        if not targets:
            return
        taker_side = (
            fill.side if fill.role == "taker" else ("SELL" if fill.side == "BUY" else "BUY")
        )
        frame = compact(
            {
                "event_type": "last_trade_price",
                "asset_id": asset,
                "market": fill.market.condition_id,
                "price": text(fill.price),
                "size": text(fill.size),
                "fee_rate_bps": "0",
                "side": taker_side,
                "timestamp": str(self.state.now_ms()),
                "transaction_hash": fill.tx_hash,
            }
        )
        self.deliver(targets, lambda _: frame)

    def tick_changed(self, market: Market, old: Decimal, new: Decimal) -> None:
        for token in market.tokens:
            targets = self._targets(token.token_id)
            if targets:
                frame = compact(
                    {
                        "event_type": "tick_size_change",
                        "asset_id": token.token_id,
                        "market": market.condition_id,
                        "old_tick_size": text(old),
                        "new_tick_size": text(new),
                        "timestamp": str(self.state.now_ms()),
                    }
                )
                self.deliver(targets, _constant(frame))


class UserHub(StreamHub, StateListener):
    channel = "user"

    def __init__(self, state: SimState, keys: KeyStore, faults: Faults, config: SimConfig) -> None:
        super().__init__(faults, config)
        self.state = state
        self.keys = keys
        self._closing: set[asyncio.Task[Any]] = set()

    def on_text(self, sub: Subscriber, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        auth = message.get("auth")
        if isinstance(auth, dict):
            creds = self.keys.get(str(auth.get("apiKey", "")))
            if (
                creds is None
                or not hmac.compare_digest(creds.secret, str(auth.get("secret", "")))
                or not hmac.compare_digest(creds.passphrase, str(auth.get("passphrase", "")))
            ):
                task = asyncio.ensure_future(sub.ws.close(code=_AUTH_FAILED, message=b"auth"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                return
            sub.state["owner"] = creds.key
            sub.state["markets"] = set(message.get("markets") or [])
        elif message.get("operation") in ("subscribe", "unsubscribe") and "owner" in sub.state:
            markets: set[str] = sub.state["markets"]
            changed = set(message.get("markets") or [])
            if message["operation"] == "subscribe":
                markets.update(changed)
            else:
                markets.difference_update(changed)

    def _targets(self, owner: str, condition_id: str) -> list[Subscriber]:
        return [
            s
            for s in self.subscribers
            if s.state.get("owner") == owner
            and (not s.state["markets"] or condition_id in s.state["markets"])
        ]

    def order_changed(self, order: SimOrder, kind: str) -> None:
        market = self.state.market_of(order.token_id)
        if market is None:
            return
        targets = self._targets(order.owner, market.condition_id)
        if not targets:
            return
        now = str(int(self.state.clock()))
        frame = compact(
            {
                "event_type": "order",
                "id": order.order_hash,
                "owner": order.owner,
                "market": market.condition_id,
                "asset_id": order.token_id,
                "side": order.side,
                "order_owner": order.owner,
                "original_size": text(order.original_size),
                "size_matched": text(order.size_matched),
                "price": text(order.price),
                "associate_trades": order.trade_ids or None,
                "outcome": market.token(order.token_id).outcome,
                "type": kind,
                "created_at": str(int(order.created_at)),
                "expiration": str(order.expiration),
                "order_type": order.order_type,
                "status": "LIVE" if order.status == "live" else order.status.upper(),
                "maker_address": order.maker,
                "timestamp": now,
            }
        )
        self.deliver(targets, lambda _: frame)

    def clob_traded(self, trade: ClobTrade, order: SimOrder) -> None:
        targets = self._targets(trade.owner, trade.market.condition_id)
        if not targets:
            return
        for status in ("MATCHED", "CONFIRMED"):
            event = {"event_type": "trade", **trade_json(trade, status=status, event=True)}
            frame = compact(event)
            self.deliver(targets, _constant(frame))


def _constant(frame: str) -> Callable[[Subscriber], str]:
    return lambda _: frame


def trade_json(trade: ClobTrade, *, status: str, event: bool = False) -> dict[str, Any]:
    """A trade as `GET /data/trades` (`TRADE_STATUS_…`) or the user channel (`event`) shows it."""
    seconds = str(int(trade.match_time))
    body: dict[str, Any] = {
        "id": trade.trade_id,
        "taker_order_id": trade.taker_order_id,
        "market": trade.market.condition_id,
        "asset_id": trade.token.token_id,
        "side": trade.side,
        "size": text(trade.size),
        "fee_rate_bps": "0",
        "price": text(trade.price),
        "status": status,
        "match_time": seconds,
        "match_time_nano": str(int(trade.match_time * 1_000_000_000)),
        "last_update": seconds,
        "outcome": trade.token.outcome,
        "bucket_index": 0,
        "owner": trade.owner,
        "maker_address": trade.maker_address,
        "transaction_hash": trade.tx_hash,
        "trader_side": "TAKER",
        "err_msg": None,
        "maker_orders": [
            {
                "order_id": m.order_id,
                "owner": "",
                "maker_address": m.maker_address,
                "matched_amount": text(m.shares),
                "price": text(m.price),
                "fee_rate_bps": "0",
                "asset_id": trade.token.token_id,
                "outcome": trade.token.outcome,
                "side": "SELL" if trade.side == "BUY" else "BUY",
            }
            for m in trade.makers
        ],
    }
    if event:
        body.update({"type": "TRADE", "trade_owner": trade.owner, "timestamp": seconds})
        del body["match_time_nano"], body["bucket_index"], body["err_msg"]
    return body
