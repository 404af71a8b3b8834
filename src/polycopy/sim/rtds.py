"""The RTDS websocket (`/rtds`): the `activity` topic's `trades` and `orders_matched` frames.

As in production (reference §2.1): a client sends `{"action": "subscribe", "subscriptions":
[{"topic": "activity", "type": "trades"}, …]}` (type "*" for all, optional `filters` as a JSON
string matched on event_slug / market_slug); frames come in the envelope `{"connection_id",
"payload", "timestamp" (ms), "topic", "type"}` with a camelCase payload whose `proxyWallet` is
checksum-cased. `orders_matched` carries taker fills only; `trades` carries takers and makers,
so a client on both sees each taker fill twice. There is no per-wallet filter: the firehose
also carries other wallets' trades (`crowd.py`), among them the maker side of every leader
taker fill. Text `PING` is answered with an empty frame."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from eth_utils.address import to_checksum_address

from polycopy.sim.faults import Faults
from polycopy.sim.settings import SimConfig
from polycopy.sim.state import (
    ActivityFill,
    Market,
    SimState,
    StateListener,
)
from polycopy.sim.streams import StreamHub, Subscriber
from polycopy.sim.wire import number

TOPIC = "activity"
KINDS = ("trades", "orders_matched")


class RtdsHub(StreamHub, StateListener):
    channel = "rtds"

    def __init__(self, state: SimState, faults: Faults, config: SimConfig) -> None:
        super().__init__(faults, config)
        self.pong = config.rtds_pong
        self.state = state
        self._rng = random.Random(f"rtds-{config.seed}")
        self._checksummed: dict[str, str] = {}

    def opened(self, sub: Subscriber) -> None:
        cid = f"{self._rng.getrandbits(96):024x}"
        sub.prefix = '{"connection_id":"' + cid + '",'
        sub.state["subscriptions"] = {}

    def on_text(self, sub: Subscriber, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("subscriptions"), list):
            return
        subscriptions: dict[tuple[str, str], str | None] = sub.state["subscriptions"]
        for item in message["subscriptions"]:
            if not isinstance(item, dict):
                continue
            key = (str(item.get("topic")), str(item.get("type", "*")))
            if message.get("action") == "subscribe":
                filters = item.get("filters")
                subscriptions[key] = filters if isinstance(filters, str) and filters else None
            elif message.get("action") == "unsubscribe":
                subscriptions.pop(key, None)

    # --- leader fills ----------------------------------------------------------------------
    def fill_recorded(self, fill: ActivityFill) -> None:
        lag = self.config.rtds_lag_s
        if not self.subscribers and lag <= 0:
            return  # nobody can see it: RTDS has no replay
        trades_lag = lag + self.config.rtds_trades_extra_lag_s
        payload = _dumps(self.payload(fill))  # once for both frame types
        if fill.role == "taker":
            self._later(lag, self._publish_fill, fill, payload, "orders_matched")
        self._later(trades_lag, self._publish_fill, fill, payload, "trades")

    def _later(self, delay: float, call: Any, *args: Any) -> None:
        if delay <= 0:
            call(*args)
        else:
            asyncio.get_running_loop().call_later(delay, call, *args)

    def _publish_fill(self, fill: ActivityFill, payload: str, kind: str) -> None:
        self.publish(kind, payload, fill.market)

    def payload(self, fill: ActivityFill) -> dict[str, Any]:
        market, token, profile = fill.market, fill.token, fill.profile
        return {
            "asset": token.token_id,
            "bio": profile.bio,
            "conditionId": market.condition_id,
            "eventSlug": market.event_slug,
            "icon": market.icon,
            "name": profile.name,
            "outcome": token.outcome,
            "outcomeIndex": token.outcome_index,
            "price": number(fill.price),
            "profileImage": profile.profile_image,
            "proxyWallet": self._checksum(fill.wallet),
            "pseudonym": profile.pseudonym,
            "side": fill.side,
            "size": number(fill.size),
            "slug": market.slug,
            "timestamp": fill.timestamp,
            "title": market.title,
            "transactionHash": fill.tx_hash,
        }

    def publish(self, kind: str, payload: str, market: Market) -> None:
        """One `activity` frame of `kind` carrying `payload` (JSON text) to its subscribers."""
        targets = [s for s in self.subscribers if _wants(s, kind, market)]
        if not targets:
            return
        body = (
            '"payload":'
            + payload
            + ',"timestamp":'
            + str(self.state.now_ms())
            + ',"topic":"activity","type":"'
            + kind
            + '"}'
        )
        self.deliver(targets, lambda sub: sub.prefix + body)

    def _checksum(self, wallet: str) -> str:
        known = self._checksummed.get(wallet)
        if known is None:
            known = self._checksummed[wallet] = to_checksum_address(wallet)
        return known


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _wants(sub: Subscriber, kind: str, market: Market) -> bool:
    subscriptions: dict[tuple[str, str], str | None] = sub.state["subscriptions"]
    for key in ((TOPIC, kind), (TOPIC, "*")):
        if key in subscriptions:
            filters = subscriptions[key]
            return filters is None or _matches(filters, market)
    return False


def _matches(filters: str, market: Market) -> bool:
    """RTDS filters: a JSON string naming an event_slug or a market_slug."""
    try:
        wanted = json.loads(filters)
    except ValueError:
        return False
    if not isinstance(wanted, dict):
        return False
    if "event_slug" in wanted and wanted["event_slug"] != market.event_slug:
        return False
    return not ("market_slug" in wanted and wanted["market_slug"] != market.slug)
