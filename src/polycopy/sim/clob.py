"""CLOB REST: market data, L1/L2 authentication, `POST /order` with matching, order and trade
look-ups, cancels, balances and heartbeats — the routes Polymarket's SDK and polycopy call.

An order is checked in the venue's order (payload, owner, signature and signer, duplicate,
market state, tick grid, amount precision, minimum size, balance) and each refusal carries the
venue's own error string (reference §4.7–4.8).

An order's price is what its signed amounts imply (pUSD / shares, reference §4.7). A limit
order's amounts spell it exactly (shares at 2 decimals, pUSD at the tick's amount decimals). A
marketable (FAK/FOK) order gives at most 2 decimals and receives at most 4 (§3.4), so its ratio
is a hair off the price it was built from: the venue reads it at 4 decimals, the finest tick
(§4.10). That one price is checked against the market's current tick grid and is the limit the
order matches at, for every order type alike.

FAK fills what it can within that price and kills the rest; FOK fills completely or not at
all; both answer "nothing to match" inside a 200. GTC/GTD orders match what crosses and rest
the remainder as `live` (visible, cancellable, not added to the book).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from polycopy.domain.money import ONE, ZERO, fmt
from polycopy.sim.auth import L2_ERROR, ApiCredentials, AuthError, KeyStore, verify_l1, verify_l2
from polycopy.sim.book import Walk
from polycopy.sim.clob_ws import trade_json
from polycopy.sim.faults import RECORD, Faults, PartialFill, RejectOrder
from polycopy.sim.settings import SimConfig
from polycopy.sim.signing import (
    NEG_RISK_EXCHANGE,
    STANDARD_EXCHANGE,
    OrderStruct,
    SignatureError,
    bytes32_from_hex,
    order_digest,
    recover_signer,
)
from polycopy.sim.state import (
    BUY,
    SELL,
    WALLET_SIGNATURE_TYPES,
    ClobTrade,
    MakerFill,
    Market,
    SimOrder,
    SimState,
)
from polycopy.sim.wire import BASE_UNIT, from_base_units, number, text, to_base_units

FAK_NOTHING = (
    "no orders found to match with FAK order. "
    "FAK orders are partially filled or killed if no match is found."
)
FOK_UNFILLED = "order couldn't be fully filled. FOK orders are fully filled or killed."
NO_BALANCE = "not enough balance / allowance"
INVALID_SIGNATURE = "invalid signature"
OWNER_MISMATCH = "the order owner has to be the owner of the API KEY"
SIGNER_MISMATCH = "the order signer address has to be the address of the API KEY"
MARKET_NOT_READY = "the market is not yet ready to process new orders"
MARKETABLE = ("FAK", "FOK")
# the precision at which the venue reads a marketable order's price: the finest tick, and the
# 4 decimals of the side such an order receives (reference §3.4, §4.10)
MARKETABLE_PRICE_STEP = Decimal("0.0001")
ORDER_TYPES = ("FAK", "FOK", "GTC", "GTD")
_AMOUNT_DECIMALS = {  # the tick's "amount" precision for limit orders (reference §3.4)
    Decimal("0.1"): 3,
    Decimal("0.01"): 4,
    Decimal("0.005"): 5,
    Decimal("0.0025"): 6,
    Decimal("0.001"): 5,
    Decimal("0.0001"): 6,
}
_MAX_UINT256 = str((1 << 256) - 1)
END_CURSOR = "LTE="
_TRADES_PAGE = 100


class Refused(Exception):
    """An order the venue refuses: as `{"error"}` with a 4xx, or inside a 200 `errorMsg`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        if self.status == 200:
            return {
                "errorMsg": self.message,
                "orderID": "",
                "takingAmount": "",
                "makingAmount": "",
                "status": "",
                "success": True,
            }
        return {"error": self.message}


@dataclass(frozen=True, slots=True)
class Posted:
    """A `POST /order` body, decoded."""

    struct: OrderStruct
    token_id: str
    side: str
    signature: str
    owner: str
    order_type: str
    expiration: int


class ClobApi:
    def __init__(
        self,
        state: SimState,
        keys: KeyStore,
        faults: Faults,
        config: SimConfig,
        clock: Callable[[], float],
    ) -> None:
        self.state = state
        self.keys = keys
        self.faults = faults
        self.config = config
        self.clock = clock
        self._heartbeats: dict[str, float] = {}  # api key → monotonic time of its last beat
        # called with (order hash, body) as each POST /order arrives, before the venue looks
        # at it: lets a test check what the client had made durable before sending
        self.arrival_hooks: list[Callable[[str, Any], None]] = []

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.ok),
            web.get("/ok", self.ok),
            web.get("/time", self.server_time),
            web.get("/version", self.version),
            web.get("/book", self.book),
            web.post("/books", self.books),
            web.get("/tick-size", self.tick_size),
            web.get("/tick-size/{token_id}", self.tick_size),
            web.get("/neg-risk", self.neg_risk),
            web.get("/fee-rate", self.fee_rate),
            web.get("/price", self.price),
            web.get("/midpoint", self.midpoint),
            web.get("/spread", self.spread),
            web.get("/last-trade-price", self.last_trade_price),
            web.post("/prices", self.prices),
            web.post("/midpoints", self.midpoints),
            web.post("/spreads", self.spreads),
            web.post("/last-trades-prices", self.last_trades_prices),
            web.get("/markets-by-token/{token_id}", self.market_by_token),
            web.get("/clob-markets/{condition_id}", self.clob_market),
            web.get("/markets/{condition_id}", self.full_market),
            web.post("/auth/api-key", self.create_api_key),
            web.get("/auth/derive-api-key", self.derive_api_key),
            web.get("/auth/api-keys", self.list_api_keys),
            web.delete("/auth/api-key", self.delete_api_key),
            web.post("/order", self.post_order),
            web.post("/orders", self.post_orders),
            web.delete("/order", self.cancel_order),
            web.delete("/orders", self.cancel_orders),
            web.delete("/cancel-all", self.cancel_all),
            web.delete("/cancel-market-orders", self.cancel_market_orders),
            web.get("/data/order/{order_id}", self.get_order),
            web.get("/data/orders", self.open_orders),
            web.get("/data/trades", self.trades),
            web.get("/balance-allowance", self.balance_allowance),
            web.get("/balance-allowance/update", self.update_balance_allowance),
            web.post("/v1/heartbeats", self.heartbeat),
            web.post("/heartbeats", self.heartbeat),
        ]

    # --- public market data ----------------------------------------------------------------
    async def ok(self, request: web.Request) -> web.Response:
        return web.json_response("OK")

    async def server_time(self, request: web.Request) -> web.Response:
        return web.json_response(int(self.clock()))

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": 2})

    async def book(self, request: web.Request) -> web.Response:
        token_id = request.query.get("token_id", "")
        if not token_id.isdigit():
            return _error("Invalid token id", 400)
        market = self.state.market_of(token_id)
        if market is None or market.closed:
            return _error("No orderbook exists for the requested token id", 404)
        return web.json_response(self._book(market, token_id))

    async def books(self, request: web.Request) -> web.Response:
        try:
            wanted = await request.json()
            tokens = [str(item["token_id"]) for item in wanted]
        except (ValueError, TypeError, KeyError):
            return _error("Invalid payload", 400)
        if len(tokens) > 500:
            return _error("Payload exceeds the limit", 400)
        found = [(self.state.market_of(t), t) for t in tokens]
        return web.json_response(
            [self._book(m, t) for m, t in found if m is not None and not m.closed]
        )

    def _book(self, market: Market, token_id: str) -> dict[str, object]:
        return self.state.books[token_id].wire(
            min_order_size=market.min_order_size, neg_risk=market.neg_risk
        )

    def _market(self, request: web.Request) -> tuple[Market, str]:
        token_id = request.match_info.get("token_id") or request.query.get("token_id", "")
        market = self.state.market_of(token_id)
        if market is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": "market not found"}), content_type="application/json"
            )
        return market, token_id

    async def tick_size(self, request: web.Request) -> web.Response:
        market, _ = self._market(request)
        return web.json_response({"minimum_tick_size": number(market.tick_size)})

    async def neg_risk(self, request: web.Request) -> web.Response:
        market, _ = self._market(request)
        return web.json_response({"neg_risk": market.neg_risk})

    async def fee_rate(self, request: web.Request) -> web.Response:
        self._market(request)
        return web.json_response({"base_fee": 0})

    async def price(self, request: web.Request) -> web.Response:
        _, token_id = self._market(request)
        side = request.query.get("side", "").upper()
        if side not in (BUY, SELL):
            return _error("Invalid side", 400)
        return web.json_response({"price": self._price(token_id, side)})

    async def midpoint(self, request: web.Request) -> web.Response:
        market, token_id = self._market(request)
        if market.closed:  # as the venue answers for a resolved token
            return _error("No orderbook exists for the requested token id", 404)
        return web.json_response({"mid": self._mid(token_id)})

    async def spread(self, request: web.Request) -> web.Response:
        _, token_id = self._market(request)
        return web.json_response({"spread": self._spread(token_id)})

    async def last_trade_price(self, request: web.Request) -> web.Response:
        _, token_id = self._market(request)
        return web.json_response(self._last_trade(token_id))

    # the batch forms (reference §3): a JSON body of [{"token_id"(, "side")}]; unknown tokens
    # are left out, as `POST /books` does
    async def prices(self, request: web.Request) -> web.Response:
        wanted = await _token_list(request, with_side=True)
        if isinstance(wanted, web.Response):
            return wanted
        answer: dict[str, dict[str, str]] = {}
        for token_id, side in wanted:
            if self.state.market_of(token_id) is not None:
                answer.setdefault(token_id, {})[side] = self._price(token_id, side)
        return web.json_response(answer)

    async def midpoints(self, request: web.Request) -> web.Response:
        wanted = await _token_list(request)
        if isinstance(wanted, web.Response):
            return wanted
        known = [t for t, _ in wanted if self.state.market_of(t) is not None]
        return web.json_response({t: self._mid(t) for t in known})

    async def spreads(self, request: web.Request) -> web.Response:
        wanted = await _token_list(request)
        if isinstance(wanted, web.Response):
            return wanted
        known = [t for t, _ in wanted if self.state.market_of(t) is not None]
        return web.json_response({t: self._spread(t) for t in known})

    async def last_trades_prices(self, request: web.Request) -> web.Response:
        wanted = await _token_list(request)
        if isinstance(wanted, web.Response):
            return wanted
        known = [t for t, _ in wanted if self.state.market_of(t) is not None]
        return web.json_response([{"token_id": t, **self._last_trade(t)} for t in known])

    def _price(self, token_id: str, side: str) -> str:
        """Per the docs, BUY is the best bid and SELL the best ask (reference §3)."""
        book = self.state.books[token_id]
        best = book.best_bid() if side == BUY else book.best_ask()
        return text(best) if best is not None else "0"

    def _mid(self, token_id: str) -> str:
        mid = self.state.books[token_id].mid()
        return text(mid) if mid is not None else "0"

    def _spread(self, token_id: str) -> str:
        book = self.state.books[token_id]
        bid, ask = book.best_bid(), book.best_ask()
        return text(ask - bid if bid is not None and ask is not None else ZERO)

    def _last_trade(self, token_id: str) -> dict[str, str]:
        book = self.state.books[token_id]
        last = book.last_trade_price
        return {"price": text(last) if last else "0", "side": book.last_trade_side or BUY}

    async def market_by_token(self, request: web.Request) -> web.Response:
        market, _ = self._market(request)
        return web.json_response(
            {"condition_id": market.condition_id, "primary_token_id": market.tokens[0].token_id}
        )

    async def clob_market(self, request: web.Request) -> web.Response:
        market = self.state.markets.get(request.match_info["condition_id"].lower())
        if market is None:
            return _error("market not found", 404)
        body: dict[str, Any] = {
            "r": {},
            "t": [{"t": t.token_id, "o": t.outcome} for t in market.tokens],
            "mos": number(market.min_order_size),
            "mts": number(market.tick_size),
            "mbf": 0,
            "tbf": 0,
            "rfqe": False,
            "itode": False,
            "ibce": False,
            "fd": {"r": number(market.fee_rate), "e": number(market.fee_exponent), "to": True},
            "oas": 0,
        }
        if market.neg_risk:
            body["nr"] = True
        return web.json_response(body)

    async def full_market(self, request: web.Request) -> web.Response:
        market = self.state.markets.get(request.match_info["condition_id"].lower())
        if market is None:
            return _error("market not found", 404)
        return web.json_response(
            {
                "enable_order_book": not market.closed,
                "active": not market.closed,
                "closed": market.closed,
                "archived": False,
                "accepting_orders": market.accepting_orders,
                "accepting_order_timestamp": "2026-01-01T00:00:00Z",
                "minimum_order_size": number(market.min_order_size),
                "minimum_tick_size": number(market.tick_size),
                "condition_id": market.condition_id,
                "question_id": "0x" + market.condition_id[2:][::-1],
                "question": market.title,
                "description": "",
                "market_slug": market.slug,
                "end_date_iso": f"{market.end_date}T00:00:00Z",
                "game_start_time": None,
                "seconds_delay": 0,
                "fpmm": "",
                "maker_base_fee": 0,
                "taker_base_fee": 0,
                "notifications_enabled": True,
                "neg_risk": market.neg_risk,
                "neg_risk_market_id": "",
                "neg_risk_request_id": "",
                "icon": market.icon,
                "image": market.icon,
                "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
                "tokens": [
                    {
                        "token_id": t.token_id,
                        "outcome": t.outcome,
                        "price": number(self.state.mark(t.token_id)),
                        "winner": market.winner == t.token_id,
                    }
                    for t in market.tokens
                ],
            }
        )

    # --- authentication ----------------------------------------------------------------------
    async def create_api_key(self, request: web.Request) -> web.Response:
        try:
            address, nonce = verify_l1(request.headers, self.clock(), self.config.auth_skew_s)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        creds = self.keys.create(address, nonce)
        if creds is None:
            return _error("Could not create api key", 400)
        return web.json_response(creds.public())

    async def derive_api_key(self, request: web.Request) -> web.Response:
        try:
            address, nonce = verify_l1(request.headers, self.clock(), self.config.auth_skew_s)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        return web.json_response(self.keys.derive(address, nonce).public())

    async def _l2(self, request: web.Request) -> tuple[ApiCredentials, str]:
        body = await request.text()
        creds = verify_l2(
            self.keys,
            request.headers,
            request.method,
            request.path,
            body,
            self.clock(),
            self.config.auth_skew_s,
        )
        return creds, body

    async def list_api_keys(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        return web.json_response({"apiKeys": self.keys.keys_of(creds.address)})

    async def delete_api_key(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        self.keys.delete(creds.key)
        return web.json_response("OK")

    # --- orders ------------------------------------------------------------------------------
    async def post_order(self, request: web.Request) -> web.Response:
        try:
            creds, body = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        try:
            payload = json.loads(body)
        except ValueError:
            return _error("Invalid order payload", 400)
        status, answer, order_hash = self.submit(payload, creds)
        _note(request, order_hash=order_hash)
        return web.json_response(answer, status=status)

    async def post_orders(self, request: web.Request) -> web.Response:
        try:
            creds, body = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        try:
            payloads = json.loads(body)
        except ValueError:
            return _error("Invalid order payload", 400)
        if not isinstance(payloads, list) or not payloads:
            return _error("Invalid order payload", 400)
        if len(payloads) > 15:
            return _error("Too many orders in payload, max allowed: 15", 400)
        answers, hashes = [], []
        for payload in payloads:
            status, answer, order_hash = self.submit(payload, creds)
            if status != 200:  # batch answers carry every failure inside the 200
                answer = Refused(str(answer.get("error")), 200).body() | {"success": False}
            answers.append(answer)
            hashes.append(order_hash)
        _note(request, order_hash=hashes)
        return web.json_response(answers)

    def submit(self, payload: Any, creds: ApiCredentials) -> tuple[int, dict[str, Any], str]:
        """Process one order body: (HTTP status, response body, order hash or "")."""
        try:
            posted = _decode_order(payload)
        except (KeyError, TypeError, ValueError, SignatureError):
            return 400, {"error": "Invalid order payload"}, ""
        market = self.state.market_of(posted.token_id)
        if market is None:
            return 400, {"error": "Invalid token id"}, ""
        digest = order_digest(posted.struct, neg_risk=market.neg_risk)
        order_hash = "0x" + digest.hex()
        for hook in self.arrival_hooks:
            hook(order_hash, payload)
        order = self.state.orders.get(order_hash)
        if order is not None:
            order.received += 1
            if order.accepted:
                return 400, {"error": f"order {order_hash} is invalid. Duplicated."}, order_hash
        else:
            order = self._new_order(posted, order_hash, market)
            self.state.record_order(order)
        try:
            self._check(posted, digest, order, market, creds)
            answer = self._execute(order, market)
        except Refused as refusal:
            order.status = (
                "killed" if refusal.message in (FAK_NOTHING, FOK_UNFILLED) else "rejected"
            )
            order.error = refusal.message
            if order.status == "killed":
                order.accepted += 1  # the venue saw it, matched nothing, and killed it
            return refusal.status, refusal.body(), order_hash
        order.accepted += 1
        return 200, answer, order_hash

    def _new_order(self, posted: Posted, order_hash: str, market: Market) -> SimOrder:
        s = posted.struct
        shares = from_base_units(s.taker_amount if posted.side == BUY else s.maker_amount)
        return SimOrder(
            order_hash=order_hash,
            owner=posted.owner,
            maker=s.maker,
            signer=s.signer,
            token_id=posted.token_id,
            side=posted.side,
            order_type=posted.order_type,
            maker_amount=s.maker_amount,
            taker_amount=s.taker_amount,
            price=_order_price(posted),
            original_size=shares,
            expiration=posted.expiration,
            created_at=self.clock(),
            status="rejected",
            signature_type=s.signature_type,
        )

    def _check(
        self,
        posted: Posted,
        digest: bytes,
        order: SimOrder,
        market: Market,
        creds: ApiCredentials,
    ) -> None:
        s = posted.struct
        if posted.owner != creds.key:
            raise Refused(OWNER_MISMATCH)
        try:
            signer = recover_signer(digest, posted.signature)
        except SignatureError:
            raise Refused(INVALID_SIGNATURE) from None
        order.recovered_signer = signer
        if signer.lower() != s.signer.lower():
            raise Refused(INVALID_SIGNATURE)
        if s.signature_type == 0 and s.maker.lower() != signer.lower():
            raise Refused(INVALID_SIGNATURE)  # an EOA order's funds belong to its signer
        if s.signer.lower() != creds.address.lower():
            raise Refused(SIGNER_MISMATCH)
        if s.signature_type in WALLET_SIGNATURE_TYPES:
            # a proxy or Safe order moves the funds of the signer's own wallet, no other's
            wallet = self.state.wallet_of(s.signer, s.signature_type)
            if wallet is None:
                self.state.link_wallet(s.signer, s.maker, s.signature_type)
            elif wallet != s.maker.lower():
                raise Refused(INVALID_SIGNATURE)
        forced = self.faults.take_order(RejectOrder, posted.token_id)
        if forced is not None:
            raise Refused(forced.error, forced.status)
        if not market.accepting_orders:
            raise Refused(MARKET_NOT_READY)
        if s.maker_amount <= 0 or s.taker_amount <= 0:
            raise Refused(f"order {order.order_hash} is invalid. Invalid amounts")
        tick = market.tick_size
        price = order.price
        if price % tick != 0 or not tick <= price <= ONE - tick:
            raise Refused(
                f"order {order.order_hash} is invalid. Price ({_shown(price)}) breaks minimum "
                f"tick size rule: {fmt(tick)}"
            )
        self._check_precision(posted, tick)
        self._check_minimum(posted, order, market)
        if posted.order_type == "GTD" and posted.expiration < self.clock() + 60:
            raise Refused("invalid expiration")
        account = self.state.account(s.maker)
        needed = from_base_units(s.maker_amount)
        if posted.side == BUY:
            short = account.collateral < needed or account.collateral_allowance < needed
        else:
            held = account.tokens.get(posted.token_id, ZERO)
            short = held < needed or not account.tokens_approved
        if short:
            raise Refused(NO_BALANCE)

    def _check_minimum(self, posted: Posted, order: SimOrder, market: Market) -> None:
        """Limit orders: the market's minimum size in shares. Marketable BUYs: $1 of pUSD
        offered instead (reference §3.4). Marketable SELLs: as configured (the venue's rule
        is not documented)."""
        shares = order.original_size
        rule = "shares"
        if posted.order_type in MARKETABLE:
            rule = "notional" if posted.side == BUY else self.config.marketable_sell_minimum
        if rule == "notional":
            given = from_base_units(posted.struct.maker_amount)
            notional = given if posted.side == BUY else shares * order.price
            if notional < ONE:
                shown = fmt(notional.quantize(BASE_UNIT, ROUND_FLOOR))
                raise Refused(
                    f"invalid amount for a marketable {posted.side} order (${shown}), min size: $1"
                )
        elif rule == "shares" and shares < market.min_order_size:
            raise Refused(
                f"order {order.order_hash} is invalid. Size ({fmt(shares)}) lower than the "
                f"minimum: {fmt(market.min_order_size)}"
            )

    def _check_precision(self, posted: Posted, tick: Decimal) -> None:
        s = posted.struct
        if posted.order_type in MARKETABLE:
            # the side given at most 2 decimals, the side received at most 4, whatever the tick
            given, received = 2, 4
            kind = "market buy orders" if posted.side == BUY else "sell orders"
        else:
            amount = _AMOUNT_DECIMALS.get(tick, 4)
            given, received = (amount, 2) if posted.side == BUY else (2, amount)
            kind = "buy orders" if posted.side == BUY else "sell orders"
        if s.maker_amount % 10 ** (6 - given) or s.taker_amount % 10 ** (6 - received):
            raise Refused(
                f"invalid amounts, the {kind} maker amount supports a max accuracy of {given} "
                f"decimals, taker amount a max of {received} decimals"
            )

    def _execute(self, order: SimOrder, market: Market) -> dict[str, Any]:
        book = self.state.books[order.token_id]
        making = from_base_units(order.maker_amount)
        taking = from_base_units(order.taker_amount)
        partial = self.faults.take_order(PartialFill, order.token_id)
        # the price the tick check accepted is the limit the order matches at
        if order.side == BUY:
            cap = _cap(partial, taking)
            walk = book.walk_asks(order.price, making, cap)
        else:
            cap = _cap(partial, making)
            walk = book.walk_bids(order.price, making, cap)
        if order.order_type == "FOK" and not walk.complete:
            raise Refused(FOK_UNFILLED, 200)
        if order.order_type == "FAK" and not walk.takes:
            raise Refused(FAK_NOTHING, 200)
        if not walk.takes:
            order.status = "live"
            self.state.announce_order(order, "PLACEMENT")
            return {
                "success": True,
                "orderID": order.order_hash,
                "status": "live",
                "makingAmount": "",
                "takingAmount": "",
                "errorMsg": "",
            }
        trade = self._fill(order, market, walk)
        resting = order.order_type in ("GTC", "GTD") and not walk.complete
        order.status = "live" if resting else "matched"
        self.state.announce_order(order, "PLACEMENT" if resting else "UPDATE")
        self.state.announce_trade(trade, order, book)
        given, received = (
            (walk.cash, walk.shares) if order.side == BUY else (walk.shares, walk.cash)
        )
        return {
            "success": True,
            "orderID": order.order_hash,
            "status": "matched",
            "makingAmount": self._amount(given),
            "takingAmount": self._amount(received),
            "transactionsHashes": [trade.tx_hash],
            "tradeIDs": [trade.trade_id],
            "errorMsg": "",
        }

    def _fill(self, order: SimOrder, market: Market, walk: Walk) -> ClobTrade:
        book = self.state.books[order.token_id]
        book.consume(order.side, walk.takes, self.state.now_ms())
        account = self.state.account(order.maker)
        held = account.tokens.get(order.token_id, ZERO)
        if order.side == BUY:
            account.collateral -= walk.cash
            account.tokens[order.token_id] = held + walk.shares
        else:
            account.tokens[order.token_id] = held - walk.shares
            account.collateral += walk.cash
        order.size_matched += walk.shares
        order.cash_matched += walk.cash
        average = (walk.cash / walk.shares).quantize(BASE_UNIT)
        token = market.token(order.token_id)
        trade = ClobTrade(
            trade_id=self.state.random_uuid(),
            taker_order_id=order.order_hash,
            owner=order.owner,
            maker_address=order.maker,
            market=market,
            token=token,
            side=order.side,
            size=walk.shares,
            price=average,
            match_time=self.clock(),
            tx_hash=self.state.random_hex(32),
            makers=tuple(
                MakerFill(self.state.random_hex(32), self.state.random_hex(20), t.price, t.shares)
                for t in walk.takes
            ),
        )
        order.trade_ids.append(trade.trade_id)
        self.state.record_fill(
            order.maker, token, order.side, average, walk.shares, trade.tx_hash, origin="clob"
        )
        return trade

    def _amount(self, value: Decimal) -> str:
        if self.config.order_amounts_in_base_units:
            return str(to_base_units(value))
        return text(value)

    # --- cancels -----------------------------------------------------------------------------
    async def cancel_order(self, request: web.Request) -> web.Response:
        try:
            creds, body = await self._l2(request)
            order_id = json.loads(body)["orderID"]
        except AuthError as exc:
            return _error(exc.message, exc.status)
        except (ValueError, TypeError, KeyError):
            return _error("Invalid payload", 400)
        return web.json_response(self._cancel([str(order_id)], creds))

    async def cancel_orders(self, request: web.Request) -> web.Response:
        try:
            creds, body = await self._l2(request)
            ids = [str(x) for x in json.loads(body)]
        except AuthError as exc:
            return _error(exc.message, exc.status)
        except (ValueError, TypeError):
            return _error("Invalid payload", 400)
        return web.json_response(self._cancel(ids, creds))

    async def cancel_all(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        live = [o.order_hash for o in self.state.orders.values() if o.owner == creds.key]
        return web.json_response(self._cancel(live, creds, quiet=True))

    async def cancel_market_orders(self, request: web.Request) -> web.Response:
        """Body: {"market"?: condition id, "asset_id"?: token id} — at least one."""
        try:
            creds, body = await self._l2(request)
            wanted = json.loads(body) if body else {}
            if not isinstance(wanted, dict):
                raise TypeError("expected an object")
            market = str(wanted.get("market") or "").lower()
            asset = str(wanted.get("asset_id") or "")
        except AuthError as exc:
            return _error(exc.message, exc.status)
        except (ValueError, TypeError):
            return _error("Invalid payload", 400)
        if not market and not asset:
            return _error("Invalid payload", 400)
        live = []
        for order in self.state.orders.values():
            held_in = self.state.market_of(order.token_id)
            if order.owner != creds.key or held_in is None:
                continue
            if market and held_in.condition_id != market:
                continue
            if not asset or order.token_id == asset:
                live.append(order.order_hash)
        return web.json_response(self._cancel(live, creds, quiet=True))

    def _cancel(self, ids: list[str], creds: ApiCredentials, quiet: bool = False) -> dict[str, Any]:
        canceled: list[str] = []
        refused: dict[str, str] = {}
        for order_id in ids:
            order = self.state.orders.get(order_id)
            if order is None or order.owner != creds.key or order.status != "live":
                if not quiet:
                    refused[order_id] = "order can't be found - already canceled or matched"
                continue
            order.status = "canceled"
            canceled.append(order_id)
            self.state.announce_order(order, "CANCELLATION")
        return {"canceled": canceled, "not_canceled": refused}

    def expire_heartbeats(self) -> None:
        """The dead-man switch: a key that started heartbeats and stopped loses its orders."""
        now = time.monotonic()
        for key, last in list(self._heartbeats.items()):
            if now - last > self.config.heartbeat_timeout_s:
                del self._heartbeats[key]
                for order in self.state.orders.values():
                    if order.owner == key and order.status == "live":
                        order.status = "canceled"
                        self.state.announce_order(order, "CANCELLATION")

    async def heartbeat(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        self._heartbeats[creds.key] = time.monotonic()
        return web.json_response({"heartbeat_id": str(uuid.uuid4())})

    # --- look-ups ------------------------------------------------------------------------------
    async def get_order(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        order = self.state.orders.get(request.match_info["order_id"])
        if order is None or order.owner != creds.key or order.status == "rejected":
            return _error("order not found", 404)
        return web.json_response(self._order_json(order))

    async def open_orders(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        q = request.query
        rows = [
            self._order_json(o)
            for o in self.state.orders.values()
            if o.owner == creds.key
            and o.status == "live"
            and q.get("id", o.order_hash) == o.order_hash
            and q.get("asset_id", o.token_id) == o.token_id
        ]
        if "market" in q:
            rows = [r for r in rows if r["market"] == q["market"].lower()]
        return web.json_response(
            {"limit": len(rows), "count": len(rows), "next_cursor": END_CURSOR, "data": rows}
        )

    def _order_json(self, order: SimOrder) -> dict[str, Any]:
        market = self.state.market_of(order.token_id)
        assert market is not None
        status = {"live": "LIVE", "matched": "MATCHED"}.get(order.status, "CANCELED")
        return {
            "id": order.order_hash,
            "status": f"ORDER_STATUS_{status}",
            "owner": order.owner,
            "maker_address": order.maker,
            "market": market.condition_id,
            "asset_id": order.token_id,
            "side": order.side,
            "original_size": text(order.original_size),
            "size_matched": text(order.size_matched),
            "price": text(order.price),
            "outcome": market.token(order.token_id).outcome,
            "expiration": str(order.expiration),
            "order_type": order.order_type,
            "associate_trades": list(order.trade_ids),
            "created_at": int(order.created_at),
        }

    async def trades(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        q = request.query
        maker = q.get("maker_address", "").lower()
        try:
            after = int(q.get("after", "0") or 0)
            before = int(q.get("before", "0") or 0)
            start = int(_from_cursor(q.get("next_cursor", "")))
        except ValueError:
            return _error("invalid query", 400)
        rows = [
            t
            for t in self.state.clob_trades
            if (t.owner == creds.key or (maker and t.maker_address.lower() == maker))
            and (not maker or t.maker_address.lower() == maker)
            and q.get("id", t.trade_id) == t.trade_id
            and q.get("market", t.market.condition_id).lower() == t.market.condition_id
            and q.get("asset_id", t.token.token_id) == t.token.token_id
            and (not after or t.match_time >= after)
            and (not before or t.match_time <= before)
        ]
        page = rows[start : start + _TRADES_PAGE]
        more = start + _TRADES_PAGE < len(rows)
        return web.json_response(
            {
                "limit": _TRADES_PAGE,
                "next_cursor": _to_cursor(start + _TRADES_PAGE) if more else END_CURSOR,
                "count": len(page),
                "data": [trade_json(t, status="TRADE_STATUS_CONFIRMED") for t in page],
            }
        )

    async def balance_allowance(self, request: web.Request) -> web.Response:
        try:
            creds, _ = await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        try:
            signature_type = int(request.query.get("signature_type", "0") or 0)
        except ValueError:
            return _error("invalid signature_type", 400)
        if signature_type not in (0, 1, 2, 3):
            return _error("invalid signature_type", 400)
        # the funds of the wallet this key's orders move under that signature type: the same
        # account the order desk debits (a fresh one while no proxy or Safe is known)
        wallet = self.state.wallet_of(creds.address, signature_type)
        account = self.state.account(wallet) if wallet else self.state.fresh_account()
        kind = request.query.get("asset_type", "COLLATERAL").upper()
        if kind == "COLLATERAL":
            balance = to_base_units(account.collateral)
            allowance = str(to_base_units(account.collateral_allowance))
        elif kind in ("CONDITIONAL", "CONDITIONAL-V2"):
            token_id = request.query.get("token_id", "")
            balance = to_base_units(account.tokens.get(token_id, ZERO))
            allowance = _MAX_UINT256 if account.tokens_approved else "0"
        else:
            return _error("invalid asset_type", 400)
        return web.json_response(
            {
                "balance": str(balance),
                "allowances": {STANDARD_EXCHANGE: allowance, NEG_RISK_EXCHANGE: allowance},
            }
        )

    async def update_balance_allowance(self, request: web.Request) -> web.Response:
        try:
            await self._l2(request)
        except AuthError as exc:
            return _error(exc.message, exc.status)
        return web.Response(text="")


# --- decoding ----------------------------------------------------------------------------------
def _decode_order(payload: Any) -> Posted:
    order = payload["order"]
    side = order["side"]
    if side not in (BUY, SELL):
        raise ValueError("side")
    order_type = payload.get("orderType", "GTC")
    if order_type not in ORDER_TYPES:
        raise ValueError("orderType")
    token_id = str(order["tokenId"])
    if not token_id.isdigit():
        raise ValueError("tokenId")
    struct = OrderStruct(
        salt=int(order["salt"]),
        maker=str(order["maker"]),
        signer=str(order["signer"]),
        token_id=int(token_id),
        maker_amount=int(order["makerAmount"]),
        taker_amount=int(order["takerAmount"]),
        side=0 if side == BUY else 1,
        signature_type=int(order["signatureType"]),
        timestamp=int(order["timestamp"]),
        metadata=bytes32_from_hex(str(order["metadata"]), "metadata"),
        builder=bytes32_from_hex(str(order["builder"]), "builder"),
    )
    return Posted(
        struct=struct,
        token_id=token_id,
        side=side,
        signature=str(order["signature"]),
        owner=str(payload["owner"]),
        order_type=order_type,
        expiration=int(order.get("expiration", 0) or 0),
    )


def _exact_price(posted: Posted) -> Decimal:
    """The price per share the signed amounts imply."""
    s = posted.struct
    if s.maker_amount <= 0 or s.taker_amount <= 0:
        return ZERO
    making, taking = Decimal(s.maker_amount), Decimal(s.taker_amount)
    return making / taking if posted.side == BUY else taking / making


def _order_price(posted: Posted) -> Decimal:
    """The order's price as the venue reads it from the signed amounts, whatever the tick: a
    limit order's exactly, a marketable order's at 4 decimals (its received side is rounded
    there). 0.555 stays 0.555, so it is off a 0.01 grid as a FAK just as it is as a GTC."""
    exact = _exact_price(posted)
    if posted.order_type in MARKETABLE:
        return exact.quantize(MARKETABLE_PRICE_STEP, ROUND_HALF_UP)
    return exact


def _shown(price: Decimal) -> str:
    return fmt(price.quantize(BASE_UNIT).normalize())


def _cap(partial: PartialFill | None, wanted: Decimal) -> Decimal | None:
    if partial is None:
        return None
    if partial.max_shares is not None:
        return partial.max_shares
    return (wanted * partial.fraction).quantize(BASE_UNIT)


async def _token_list(
    request: web.Request, *, with_side: bool = False
) -> list[tuple[str, str]] | web.Response:
    """A batch body `[{"token_id": …, "side"?: …}, …]` as (token, side) pairs, or a 400."""
    try:
        wanted = await request.json()
        if not isinstance(wanted, list) or not all(isinstance(i, dict) for i in wanted):
            raise TypeError("expected a list of objects")
        pairs = [(str(i["token_id"]), str(i.get("side", "")).upper()) for i in wanted]
    except (ValueError, TypeError, KeyError):
        return _error("Invalid payload", 400)
    if len(pairs) > 500:
        return _error("Payload exceeds the limit", 400)
    if with_side and any(side not in (BUY, SELL) for _, side in pairs):
        return _error("Invalid side", 400)
    return pairs


def _note(request: web.Request, **fields: Any) -> None:
    record = request.get(RECORD)
    if record is not None:
        record.update(fields)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _to_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _from_cursor(cursor: str) -> str:
    if not cursor or cursor == "MA==":
        return "0"
    return base64.b64decode(cursor.encode()).decode()


__all__ = ["L2_ERROR", "ClobApi", "Refused"]
