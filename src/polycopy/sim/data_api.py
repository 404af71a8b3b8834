"""The Data API routes polycopy uses, v1 and v2, with the real parameters, caps and shapes.

v1 (`/activity`, `/trades`, `/positions`, `/value`): bare JSON arrays of camelCase rows,
numbers as JSON numbers, limit/offset paging with the reference's caps (an offset past the cap
is a 400, a limit past it is clamped). v2 (`/v2/…`): `{"data": …, "pagination": {"limit",
"offset", "has_more", "next_cursor"}}`, snake_case rows, cursor-only paging (`offset` is a
400), an `x-trace-id` header. A fill shows here only `data_api_lag_s` after it happened.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
import uuid
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from polycopy.domain.money import ZERO
from polycopy.sim.state import ActivityFill, Holding, SimState
from polycopy.sim.wire import BASE_UNIT, float_number, number, v2_error_body

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
Q4 = Decimal("0.0001")
V2_TRADES_MIN_AMOUNT = Decimal("0.01")  # `/v2/trades` filter_amount default (reference §1.6)
_ACTIVITY_TYPES = frozenset(
    (
        *("TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "DEPOSIT"),
        *("WITHDRAWAL", "YIELD", "MAKER_REBATE", "TAKER_REBATE", "REFERRAL_REWARD"),
        *("TIP", "MIGRATION"),
    )
)
_V1_POSITION_SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "TOKENS": lambda r: r["size"],
    "CURRENT": lambda r: r["currentValue"],
    "INITIAL": lambda r: r["initialValue"],
    "CASHPNL": lambda r: r["cashPnl"],
    "PERCENTPNL": lambda r: r["percentPnl"],
    "TITLE": lambda r: r["title"],
    "RESOLVING": lambda r: r["endDate"],
    "PRICE": lambda r: r["curPrice"],
    "AVGPRICE": lambda r: r["avgPrice"],
}
_V2_POSITION_SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "CURRENT_VALUE": lambda r: r["current_value"],
    "PRICE": lambda r: r["current_price"],
    "TOKENS": lambda r: r["current_size"],
    "UNREALIZED_PNL": lambda r: r["unrealized_pnl"],
    "REALIZED_PNL": lambda r: r["realized_pnl"],
    "TOTAL_PNL": lambda r: r["total_pnl"],
    "TIMESTAMP": lambda r: r["last_event_at"],
}


class BadRequest(Exception):
    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter


class Params:
    """Query parameters, checked the way the Data API checks them."""

    def __init__(self, query: MultiMapping[str]) -> None:
        self.query = query

    def raw(self, *names: str) -> str | None:
        for name in names:
            value = self.query.get(name)
            if value is not None and value != "":
                return value
        return None

    def address(self, *names: str, required: bool) -> str | None:
        value = self.raw(*names)
        if value is None:
            if required:
                raise BadRequest(f"{names[0]} is required", names[0])
            return None
        if not ADDRESS.match(value):
            raise BadRequest(f"{names[0]}: invalid address", names[0])
        return value.lower()

    def integer(
        self, *names: str, default: int | None, cap: int | None = None, clamp: bool = True
    ) -> int | None:
        value = self.raw(*names)
        if value is None:
            return default
        try:
            result = int(value)
        except ValueError:
            raise BadRequest(f"{names[0]}: expected an integer", names[0]) from None
        if result < 0:
            raise BadRequest(f"{names[0]}: must not be negative", names[0])
        if cap is not None and result > cap:
            if not clamp:
                raise BadRequest(f"{names[0]}: must be at most {cap}", names[0])
            result = cap
        return result

    def decimal(self, *names: str, default: Decimal | None) -> Decimal | None:
        value = self.raw(*names)
        if value is None:
            return default
        try:
            result = Decimal(value)
        except ArithmeticError:
            raise BadRequest(f"{names[0]}: expected a number", names[0]) from None
        if not result.is_finite() or result < 0:
            raise BadRequest(f"{names[0]}: expected a non-negative number", names[0])
        return result

    def choice(self, *names: str, options: Iterable[str], default: str | None) -> str | None:
        value = self.raw(*names)
        if value is None:
            return default
        allowed = tuple(options)
        if value.upper() not in allowed:
            raise BadRequest(f"{names[0]}: expected one of {', '.join(allowed)}", names[0])
        return value.upper()

    def flag(self, *names: str, default: bool) -> bool:
        value = self.raw(*names)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise BadRequest(f"{names[0]}: expected true or false", names[0])
        return value.lower() == "true"

    def items(self, *names: str) -> list[str]:
        values: list[str] = []
        for name in names:
            for value in self.query.getall(name, []):
                values.extend(v.strip() for v in value.split(",") if v.strip())
        return values


class DataApi:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/activity", self._v1(self.activity)),
            web.get("/trades", self._v1(self.trades)),
            web.get("/positions", self._v1(self.positions)),
            web.get("/value", self._v1(self.value)),
            web.get("/v2/activity", self._v2(self.v2_activity)),
            web.get("/v2/trades", self._v2(self.v2_trades)),
            web.get("/v2/positions", self._v2(self.v2_positions)),
            web.get("/v2/value", self._v2(self.v2_value)),
        ]

    # --- v1 ------------------------------------------------------------------------------------
    def activity(self, q: Params) -> Any:
        user = q.address("user", required=True)
        assert user is not None
        limit = q.integer("limit", default=100, cap=500)
        offset = q.integer("offset", default=0, cap=5000, clamp=False)
        types = {t.upper() for t in q.items("type")}
        unknown = types - _ACTIVITY_TYPES
        if unknown:
            raise BadRequest(f"type: unknown activity type {sorted(unknown)[0]}", "type")
        sort_by = q.choice("sortBy", options=("TIMESTAMP", "TOKENS", "CASH"), default="TIMESTAMP")
        descending = q.choice("sortDirection", options=("ASC", "DESC"), default="DESC") == "DESC"
        side = q.choice("side", options=("BUY", "SELL"), default=None)
        if types and "TRADE" not in types:
            return []
        rows = self._window(
            self.state.fills_of(user), q.integer("start", default=0), q.integer("end", default=None)
        )
        rows = _filtered(rows, side=side, markets=_lower(q.items("market")))
        if sort_by == "TOKENS":
            rows.sort(key=lambda f: (f.size, f.seq), reverse=descending)
        elif sort_by == "CASH":
            rows.sort(key=lambda f: (f.size * f.price, f.seq), reverse=descending)
        elif descending:
            rows.reverse()
        assert limit is not None
        assert offset is not None
        return [activity_row(f) for f in rows[offset : offset + limit]]

    def trades(self, q: Params) -> Any:
        user = q.address("user", required=False)
        limit = q.integer("limit", default=100, cap=10_000)
        offset = q.integer("offset", default=0, cap=10_000, clamp=False)
        taker_only = q.flag("takerOnly", default=True)
        side = q.choice("side", options=("BUY", "SELL"), default=None)
        amount_filter = _amount_filter(q, ("filterType",), ("filterAmount",))
        markets = _lower(q.items("market"))
        source = self.state.fills_of(user) if user else self.state.all_fills()
        rows = _filtered(source, side=side, markets=markets, taker_only=taker_only)
        rows = [f for f in rows if amount_filter(f)]
        rows.reverse()
        assert limit is not None
        assert offset is not None
        return [trade_row(f) for f in rows[offset : offset + limit]]

    def positions(self, q: Params) -> Any:
        user = q.address("user", required=True)
        assert user is not None
        threshold = q.decimal("sizeThreshold", default=Decimal(1))
        limit = q.integer("limit", default=100, cap=500)
        offset = q.integer("offset", default=0, cap=10_000, clamp=False)
        sort_by = q.choice("sortBy", options=_V1_POSITION_SORTS, default="TOKENS")
        descending = q.choice("sortDirection", options=("ASC", "DESC"), default="DESC") == "DESC"
        if q.flag("mergeable", default=False):
            return []  # the simulator holds one side of a market at a time
        redeemable_only = q.flag("redeemable", default=False)
        title = (q.raw("title") or "").lower()
        markets = _lower(q.items("market"))
        rows = [
            position_row(user, h, self.state.mark(h.token.token_id))
            for h in self._open(user, threshold or ZERO)
            if (not markets or h.market.condition_id in markets)
            and title in h.market.title.lower()
            and (h.market.closed or not redeemable_only)
        ]
        assert sort_by is not None
        assert limit is not None
        assert offset is not None
        rows.sort(key=_V1_POSITION_SORTS[sort_by], reverse=descending)
        return rows[offset : offset + limit]

    def value(self, q: Params) -> Any:
        user = q.address("user", required=True)
        assert user is not None
        markets = _lower(q.items("market"))
        total = self._value(user, markets)
        return [{"user": user, "value": number(total.quantize(Q4, ROUND_HALF_EVEN))}]

    # --- v2 ------------------------------------------------------------------------------------
    def v2_activity(self, q: Params) -> Any:
        user = q.address("user", required=True)
        assert user is not None
        types = {t.upper() for t in q.items("type")}
        side = q.choice("side", options=("BUY", "SELL"), default=None)
        q.choice("sort_by", "sortBy", options=("TIMESTAMP",), default="TIMESTAMP")
        direction = q.choice(
            "sort_direction", "sortDirection", options=("ASC", "DESC"), default="DESC"
        )
        if types and "TRADE" not in types:
            return _page([], 100, False, None)
        rows = self._window(
            self.state.fills_of(user),
            q.integer("start", default=0),
            q.integer("end", default=None),
        )
        rows = _filtered(rows, side=side, markets=_lower(q.items(*_CONDITION)))
        return _seek_page(q, rows, direction == "DESC", activity_row_v2)

    def v2_trades(self, q: Params) -> Any:
        raw_user = q.raw("user")
        if raw_user is not None and "," in raw_user:
            return _page([], 100, False, None)  # one address only; a list silently finds nothing
        user = q.address("user", required=False)
        side = q.choice("side", options=("BUY", "SELL"), default=None)
        taker_only = q.flag("taker_only", "takerOnly", default=True)
        amount_filter = _amount_filter(
            q,
            ("filter_type", "filterType"),
            ("filter_amount", "filterAmount"),
            defaults=("TOKENS", V2_TRADES_MIN_AMOUNT),
        )
        source = self.state.fills_of(user) if user else self.state.all_fills()
        if user:
            source = self._window(
                source, q.integer("start", default=0), q.integer("end", default=None)
            )
        markets = _lower(q.items(*_CONDITION))
        rows = _filtered(source, side=side, markets=markets, taker_only=taker_only)
        rows = [f for f in rows if amount_filter(f)]
        return _seek_page(q, rows, True, trade_row_v2)

    def v2_positions(self, q: Params) -> Any:
        user = q.address("user", required=False)
        markets = _lower(q.items(*_CONDITION))
        if user is None and len(markets) != 1:
            raise BadRequest("provide user or exactly one condition", "user")
        status = q.choice(
            "status",
            options=("OPEN", "REDEEMABLE", "REDEEMABLE_LOST", "MERGEABLE", "CLOSED"),
            default="OPEN",
        )
        floor = q.decimal("filter_amount", "filterAmount", default=Decimal("0.1")) or ZERO
        cash_floor = (q.raw("filter_type", "filterType") or "TOKENS").upper() == "CASH"
        sort_by = q.choice("sort_by", "sortBy", options=_V2_POSITION_SORTS, default="CURRENT_VALUE")
        descending = (
            q.choice("sort_direction", "sortDirection", options=("ASC", "DESC"), default="DESC")
            == "DESC"
        )
        if status != "OPEN":
            return _page([], 100, False, None)
        wallets = [user] if user else list(self.state.leaders)
        rows = []
        for wallet in wallets:
            for h in self._open(wallet, ZERO):
                if markets and h.market.condition_id not in markets:
                    continue
                mark = self.state.mark(h.token.token_id)
                amount = h.size * mark if cash_floor else h.size
                if amount >= floor:
                    rows.append(position_row_v2(wallet, h, mark, self.state))
        assert sort_by is not None
        rows.sort(key=_V2_POSITION_SORTS[sort_by], reverse=descending)
        start, limit = _offset_cursor(q)
        chunk = rows[start : start + limit]
        more = start + limit < len(rows)
        return _page(
            chunk, limit, more, _encode({"o": start + limit, "l": limit}) if more else None
        )

    def v2_value(self, q: Params) -> Any:
        user = q.address("user", required=True)
        assert user is not None
        total = self._value(user, _lower(q.items(*_CONDITION)))
        return {"data": {"proxy_wallet": user, "value": float(total.quantize(Q4))}}

    # --- helpers -------------------------------------------------------------------------------
    def _window(
        self, rows: list[ActivityFill], start: int | None, end: int | None
    ) -> list[ActivityFill]:
        lo = bisect.bisect_left(rows, (start or 0, 0), key=lambda f: f.sort_key)
        if end:
            hi = bisect.bisect_right(rows, (end, 1 << 62), key=lambda f: f.sort_key)
            return rows[lo:hi]
        return rows[lo:]

    def _open(self, wallet: str, threshold: Decimal) -> list[Holding]:
        return [h for h in self.state.holdings_of(wallet) if h.size > 0 and h.size >= threshold]

    def _value(self, wallet: str, markets: set[str]) -> Decimal:
        return sum(
            (
                h.size * self.state.mark(h.token.token_id)
                for h in self._open(wallet, ZERO)
                if not markets or h.market.condition_id in markets
            ),
            ZERO,
        )

    def _v1(self, route: Callable[[Params], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            try:
                return web.json_response(route(Params(request.query)))
            except BadRequest as exc:
                return web.json_response({"error": exc.message}, status=400)

        return handler

    def _v2(self, route: Callable[[Params], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            trace = uuid.uuid4().hex
            headers = {"x-trace-id": trace}
            try:
                if "offset" in request.query:
                    raise BadRequest("offset is not supported; follow next_cursor", "offset")
                return web.json_response(route(Params(request.query)), headers=headers)
            except BadRequest as exc:
                body = v2_error_body(400, exc.message, trace, parameter=exc.parameter)
                return web.json_response(body, status=400, headers=headers)

        return handler


_CONDITION = ("condition", "condition_id", "conditionId", "market")


# --- rows -------------------------------------------------------------------------------------
def activity_row(f: ActivityFill) -> dict[str, Any]:
    m, t, p = f.market, f.token, f.profile
    return {
        "proxyWallet": f.wallet,
        "timestamp": f.timestamp,
        "conditionId": m.condition_id,
        "type": "TRADE",
        "size": number(f.size),
        "usdcSize": number((f.size * f.price).quantize(BASE_UNIT)),
        "transactionHash": f.tx_hash,
        "price": number(f.price),
        "asset": t.token_id,
        "side": f.side,
        "outcomeIndex": t.outcome_index,
        "title": m.title,
        "slug": m.slug,
        "icon": m.icon,
        "eventSlug": m.event_slug,
        "outcome": t.outcome,
        "name": p.name,
        "pseudonym": p.pseudonym,
        "bio": p.bio,
        "profileImage": p.profile_image,
        "profileImageOptimized": p.profile_image_optimized,
    }


def trade_row(f: ActivityFill) -> dict[str, Any]:
    m, t, p = f.market, f.token, f.profile
    return {
        "proxyWallet": f.wallet,
        "side": f.side,
        "asset": t.token_id,
        "conditionId": m.condition_id,
        "size": number(f.size),
        "price": number(f.price),
        "timestamp": f.timestamp,
        "title": m.title,
        "slug": m.slug,
        "icon": m.icon,
        "eventSlug": m.event_slug,
        "outcome": t.outcome,
        "outcomeIndex": t.outcome_index,
        "name": p.name,
        "pseudonym": p.pseudonym,
        "bio": p.bio,
        "profileImage": p.profile_image,
        "profileImageOptimized": p.profile_image_optimized,
        "transactionHash": f.tx_hash,
    }


def activity_row_v2(f: ActivityFill) -> dict[str, Any]:
    m, t, p = f.market, f.token, f.profile
    return {
        "proxy_wallet": f.wallet,
        "timestamp": f.timestamp,
        "condition_id": m.condition_id,
        "type": "TRADE",
        "size": float_number(f.size),
        "usdc_size": float_number((f.size * f.price).quantize(BASE_UNIT)),
        "transaction_hash": f.tx_hash,
        "price": float_number(f.price),
        "token_id": t.token_id,
        "side": f.side,
        "outcome_index": t.outcome_index,
        "title": m.title,
        "slug": m.slug,
        "icon": m.icon,
        "event_slug": m.event_slug,
        "outcome": t.outcome,
        "name": p.name,
        "pseudonym": p.pseudonym,
        "bio": p.bio,
        "profile_image": p.profile_image,
        "profile_image_optimized": p.profile_image_optimized,
    }


def trade_row_v2(f: ActivityFill) -> dict[str, Any]:
    m, t, p = f.market, f.token, f.profile
    return {
        "proxy_wallet": f.wallet,
        "side": f.side,
        "token_id": t.token_id,
        "condition_id": m.condition_id,
        "size": float_number(f.size),
        "price": float_number(f.price),
        "timestamp": f.timestamp,
        "title": m.title,
        "slug": m.slug,
        "icon": m.icon,
        "event_slug": m.event_slug,
        "outcome": t.outcome,
        "outcome_index": t.outcome_index,
        "name": p.name,
        "pseudonym": p.pseudonym,
        "bio": p.bio,
        "profile_image": p.profile_image,
        "profile_image_optimized": p.profile_image_optimized,
        "transaction_hash": f.tx_hash,
    }


def _position_numbers(h: Holding, mark: Decimal) -> dict[str, Decimal]:
    initial = h.cost
    current = h.size * mark
    pnl = current - initial
    return {
        "size": h.size,
        "avg": h.avg_price,
        "initial": initial,
        "current": current,
        "pnl": pnl,
        "percent": pnl / initial * 100 if initial else ZERO,
        "realized": h.realized,
        "percent_realized": h.realized / initial * 100 if initial else ZERO,
        "mark": mark,
        "bought": h.total_bought,
    }


def position_row(wallet: str, h: Holding, mark: Decimal) -> dict[str, Any]:
    n = {k: v.quantize(Q4, ROUND_HALF_EVEN) for k, v in _position_numbers(h, mark).items()}
    m, t = h.market, h.token
    other = m.other(t.token_id)
    return {
        "proxyWallet": wallet,
        "asset": t.token_id,
        "conditionId": m.condition_id,
        "size": number(n["size"]),
        "avgPrice": number(n["avg"]),
        "initialValue": number(n["initial"]),
        "currentValue": number(n["current"]),
        "cashPnl": number(n["pnl"]),
        "percentPnl": number(n["percent"]),
        "totalBought": number(n["bought"]),
        "realizedPnl": number(n["realized"]),
        "percentRealizedPnl": number(n["percent_realized"]),
        "curPrice": number(n["mark"]),
        "redeemable": m.closed,
        "mergeable": False,
        "title": m.title,
        "slug": m.slug,
        "icon": m.icon,
        "eventId": m.event_id,
        "eventSlug": m.event_slug,
        "outcome": t.outcome,
        "outcomeIndex": t.outcome_index,
        "oppositeOutcome": other.outcome,
        "oppositeAsset": other.token_id,
        "endDate": m.end_date,
        "negativeRisk": m.neg_risk,
    }


def position_row_v2(wallet: str, h: Holding, mark: Decimal, state: SimState) -> dict[str, Any]:
    n = {k: v.quantize(Q4, ROUND_HALF_EVEN) for k, v in _position_numbers(h, mark).items()}
    m, t = h.market, h.token
    other = m.other(t.token_id)
    profile = state.profile_of(wallet)
    return {
        "proxy_wallet": wallet,
        "token_id": t.token_id,
        "condition_id": m.condition_id,
        "current_size": float(n["size"]),
        "avg_price": float(n["avg"]),
        "entry_cost_usdc": float(n["initial"]),
        "entry_fees_usdc": 0.0,
        "total_cost_usdc": float(n["initial"]),
        "current_price": float(n["mark"]),
        "current_value": float(n["current"]),
        "total_size": float(n["bought"]),
        "realized_pnl": float(n["realized"]),
        "unrealized_pnl": float(n["pnl"]),
        "total_pnl": float(n["pnl"] + n["realized"]),
        "percent_pnl": float(n["percent"]),
        "percent_realized_pnl": float(n["percent_realized"]),
        "status": ("REDEEMABLE" if m.winner == t.token_id else "REDEEMABLE_LOST")
        if m.closed
        else "OPEN",
        "redeemable": m.closed,
        "mergeable": False,
        "negative_risk": m.neg_risk,
        "archived": False,
        "title": m.title,
        "slug": m.slug,
        "icon": m.icon,
        "event_id": m.event_id,
        "event_slug": m.event_slug,
        "outcome": t.outcome,
        "outcome_index": t.outcome_index,
        "opposite_outcome": other.outcome,
        "opposite_token_id": other.token_id,
        "end_date": m.end_date,
        "last_event_at": h.last_event_at,
        "name": profile.name,
        "profile_image": profile.profile_image,
        "verified": False,
    }


# --- filtering and paging ----------------------------------------------------------------------
def _lower(values: list[str]) -> set[str]:
    return {v.lower() for v in values}


def _filtered(
    rows: Iterable[ActivityFill],
    *,
    side: str | None,
    markets: set[str],
    taker_only: bool = False,
) -> list[ActivityFill]:
    return [
        f
        for f in rows
        if (side is None or f.side == side)
        and (not markets or f.market.condition_id in markets)
        and (not taker_only or f.role == "taker")
    ]


def _amount_filter(
    q: Params,
    type_names: tuple[str, ...],
    amount_names: tuple[str, ...],
    *,
    defaults: tuple[str, Decimal] | None = None,
) -> Callable[[ActivityFill], bool]:
    """A minimum trade size in shares (`TOKENS`) or USDC (`CASH`). v1 takes both parameters
    or neither; v2 defaults each (`TOKENS`, 0.01) and takes snake_case or camelCase names."""
    kind = q.choice(*type_names, options=("CASH", "TOKENS"), default=None)
    amount = q.decimal(*amount_names, default=None)
    if defaults is not None:
        kind = kind or defaults[0]
        amount = defaults[1] if amount is None else amount
    if kind is None and amount is None:
        return lambda f: True
    if kind is None or amount is None:
        raise BadRequest(f"{type_names[0]} and {amount_names[0]} go together", type_names[0])
    if kind == "CASH":
        return lambda f: f.size * f.price >= amount
    return lambda f: f.size >= amount


def _page(data: list[Any], limit: int, more: bool, cursor: str | None) -> dict[str, Any]:
    return {
        "data": data,
        "pagination": {"limit": limit, "offset": 0, "has_more": more, "next_cursor": cursor},
    }


def _encode(anchor: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(anchor).encode()).decode()


def _decode(cursor: str) -> dict[str, Any]:
    try:
        anchor = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise BadRequest("cursor: invalid", "cursor") from None
    if not isinstance(anchor, dict):
        raise BadRequest("cursor: invalid", "cursor")
    return anchor


def _first_limit(q: Params) -> int:
    limit = q.integer("limit", default=100, cap=1000)
    assert limit is not None
    return max(limit, 1)


def _seek_page(
    q: Params,
    rows: list[ActivityFill],
    descending: bool,
    render: Callable[[ActivityFill], dict[str, Any]],
) -> dict[str, Any]:
    """Keyset paging on (timestamp, seq): stable while new fills arrive between pages."""
    cursor = q.raw("cursor")
    ordered = rows[::-1] if descending else rows
    if cursor is None:
        limit, start = _first_limit(q), 0
    else:
        anchor = _decode(cursor)
        try:
            limit, key = int(anchor["l"]), (int(anchor["k"][0]), int(anchor["k"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise BadRequest("cursor: invalid", "cursor") from None
        keys = [f.sort_key for f in ordered]
        if descending:
            start = next((i for i, k in enumerate(keys) if k < key), len(keys))
        else:
            start = bisect.bisect_right(keys, key)
    chunk = ordered[start : start + limit]
    more = start + limit < len(ordered)
    next_cursor = _encode({"k": list(chunk[-1].sort_key), "l": limit}) if more else None
    return _page([render(f) for f in chunk], limit, more, next_cursor)


def _offset_cursor(q: Params) -> tuple[int, int]:
    cursor = q.raw("cursor")
    if cursor is None:
        return 0, _first_limit(q)
    anchor = _decode(cursor)
    try:
        return int(anchor["o"]), int(anchor["l"])
    except (KeyError, TypeError, ValueError):
        raise BadRequest("cursor: invalid", "cursor") from None
