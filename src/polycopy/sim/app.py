"""One aiohttp application on one port: the Data API and CLOB REST at their real paths, the
RTDS websocket at `/rtds`, the CLOB websockets at `/ws/market` and `/ws/user`, and the
simulator's own routes under `/_sim/`. Every request but `/_sim/` ones is recorded first, then
the armed HTTP faults apply."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from polycopy.sim.control import Control
from polycopy.sim.faults import RECORD, Handler, http_fault_middleware

if TYPE_CHECKING:
    from polycopy.sim.server import SimServer

MAX_BODY_RECORDED = 65_536
_SHOWN_HEADERS = frozenset({"POLY_ADDRESS", "POLY_API_KEY", "POLY_TIMESTAMP", "POLY_NONCE"})
_UNANSWERED = ("drop", "accept_then_hang")  # the client never saw a status
_SECRET_HEADERS = frozenset({"POLY_SIGNATURE", "POLY_PASSPHRASE", "AUTHORIZATION", "COOKIE"})


def build_app(sim: SimServer, released: asyncio.Event) -> web.Application:
    app = web.Application(
        middlewares=[
            recording_middleware(sim.request_log, sim.clock),
            http_fault_middleware(sim.faults, released),
        ],
        client_max_size=4 * 1024 * 1024,
    )
    app.add_routes(
        [
            web.get("/rtds", sim.rtds.handle),
            web.get("/ws/market", sim.market_ws.handle),
            web.get("/ws/user", sim.user_ws.handle),
            *sim.data_api.routes(),
            *sim.clob.routes(),
            *Control(sim).routes(),
        ]
    )
    return app


def recording_middleware(log: deque[dict[str, Any]], clock: Callable[[], float]) -> Any:
    counter = itertools.count(1)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        body = await request.text() if request.can_read_body else ""
        record: dict[str, Any] = {
            "seq": next(counter),
            "at": clock(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {k: _shown(k, v) for k, v in request.headers.items()},
            "body": body[:MAX_BODY_RECORDED],
            "status": None,
        }
        log.append(record)
        request[RECORD] = record
        response = await handler(request)
        if record.get("fault") not in _UNANSWERED:
            record["status"] = response.status
        return response

    return middleware


def _shown(name: str, value: str) -> str:
    upper = name.upper()
    if upper in _SHOWN_HEADERS or not (upper.startswith("POLY") or upper in _SECRET_HEADERS):
        return value
    return "<redacted>"
