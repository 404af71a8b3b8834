"""The simulator's own routes under `/_sim/`: introspection for tests and rehearsals, and
control (start playback, arm and clear faults, emit trades, set books and balances). They are
never recorded and never faulted."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from polycopy.domain.money import BadNumber, to_decimal
from polycopy.sim.faults import Fault, TickSizeChange, check_fault, fault_from_json

if TYPE_CHECKING:
    from polycopy.sim.server import SimServer


class Control:
    def __init__(self, sim: SimServer) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/status", self.status),
            web.post("/_sim/start", self.start),
            web.get("/_sim/requests", self.requests),
            web.get("/_sim/trades", self.trades),
            web.get("/_sim/orders", self.orders),
            web.get("/_sim/markets", self.markets),
            web.get("/_sim/faults", self.faults),
            web.post("/_sim/faults", self.arm),
            web.delete("/_sim/faults", self.clear),
            web.post("/_sim/emit", self.emit),
            web.post("/_sim/book", self.book),
            web.post("/_sim/balance", self.balance),
            web.post("/_sim/wallet", self.wallet),
        ]

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.status())

    async def start(self, request: web.Request) -> web.Response:
        self.sim.start_playback()
        return web.json_response({"started": True})

    async def requests(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            since = _since(q.get("since"))
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response(
            [
                r
                for r in self.sim.requests(path=q.get("path"), method=q.get("method"))
                if r["seq"] > since
            ]
        )

    async def trades(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            since = _since(q.get("since"))
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response(self.sim.trades(wallet=q.get("wallet"), since=since))

    async def orders(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.orders(order_hash=request.query.get("hash")))

    async def markets(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.markets())

    async def faults(self, request: web.Request) -> web.Response:
        faults = self.sim.faults
        return web.json_response({"armed": faults.listing(), "fired": list(faults.fired)})

    async def arm(self, request: web.Request) -> web.Response:
        """Body: one fault object, a list of them, or {"clear": true | <id>}. A list is armed
        only when every entry is valid: a bad one is a 400 and arms nothing."""
        try:
            body = await request.json()
        except ValueError:
            return _bad("expected JSON")
        if isinstance(body, dict) and "clear" in body:
            which = body["clear"]
            if which is True:
                return web.json_response({"cleared": self.sim.faults.clear()})
            if isinstance(which, int) and not isinstance(which, bool) and which > 0:
                return web.json_response({"cleared": self.sim.faults.clear(which)})
            return _bad(f"clear: expected true or a fault id (a positive integer), got {which!r}")
        items = body if isinstance(body, list) else [body]
        if not items:
            return _bad("expected a fault object or a non-empty list of them")
        specs = []
        for index, item in enumerate(items):
            try:
                spec = fault_from_json(item)
                check_fault(spec)
                self._check_target(spec)
            except ValueError as exc:
                where = f"[{index}] " if isinstance(body, list) else ""
                return _bad(f"{where}{exc}")
            specs.append(spec)
        return web.json_response({"armed": [self.sim.faults.arm(spec) for spec in specs]})

    def _check_target(self, spec: Fault) -> None:
        if isinstance(spec, TickSizeChange) and self.sim.state.market_of(spec.token_id) is None:
            raise ValueError(f"tick_size_change: unknown token_id {spec.token_id!r}")

    async def clear(self, request: web.Request) -> web.Response:
        return web.json_response({"cleared": self.sim.faults.clear()})

    async def emit(self, request: web.Request) -> web.Response:
        """Body: an activity row or a list of rows (timestamp and tx hash optional)."""
        try:
            body = json.loads(await request.text(), parse_float=Decimal)
            rows = body if isinstance(body, list) else [body]
            if not all(isinstance(row, dict) for row in rows):
                raise ValueError("expected an activity row (a JSON object) or a list of them")
            fills = self.sim.emit_many(rows)
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response([f.identity() for f in fills])

    async def book(self, request: web.Request) -> web.Response:
        """Body: {"token_id", "bids": [[price, size], …], "asks": […]} (strings or numbers)."""
        try:
            body = await request.json()
            token_id = str(body["token_id"])
            bids = [(to_decimal(str(p)), to_decimal(str(s))) for p, s in body.get("bids", [])]
            asks = [(to_decimal(str(p)), to_decimal(str(s))) for p, s in body.get("asks", [])]
            self.sim.set_book(token_id, bids, asks)
        except (ValueError, KeyError, TypeError, BadNumber) as exc:
            return _bad(f"bad book: {exc}")
        return web.json_response({"ok": True})

    async def balance(self, request: web.Request) -> web.Response:
        """Body: {"address", "collateral"?, "token_id"?, "shares"?, "allowance"?, "approved"?}."""
        try:
            body: dict[str, Any] = await request.json()

            def dec(key: str) -> Decimal | None:
                return to_decimal(str(body[key])) if body.get(key) is not None else None

            self.sim.set_balance(
                str(body["address"]),
                collateral=dec("collateral"),
                token_id=body.get("token_id"),
                shares=dec("shares"),
                allowance=dec("allowance"),
                approved=body.get("approved"),
            )
        except (ValueError, KeyError, TypeError, BadNumber) as exc:
            return _bad(f"bad balance: {exc}")
        return web.json_response({"ok": True})

    async def wallet(self, request: web.Request) -> web.Response:
        """Body: {"signer", "wallet", "signature_type": 1 | 2} — link a proxy or Safe."""
        try:
            body: dict[str, Any] = await request.json()
            signature_type = body["signature_type"]
            if not isinstance(signature_type, int) or isinstance(signature_type, bool):
                raise ValueError("signature_type: expected 1 or 2")
            self.sim.link_wallet(str(body["signer"]), str(body["wallet"]), signature_type)
        except (ValueError, KeyError, TypeError) as exc:
            return _bad(f"bad wallet: {exc}")
        return web.json_response({"ok": True})


def _since(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        since = int(raw)
    except ValueError:
        raise ValueError(f"since: expected a sequence number, got {raw!r}") from None
    if since < 0:
        raise ValueError(f"since: expected a sequence number, got {raw!r}")
    return since


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
