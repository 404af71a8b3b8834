"""A loopback HTTP front for the simulator, for venue behaviours the simulator has no fault
for. Every request goes through to the simulator unchanged (headers too, so its L2 auth
still checks our signatures); only some answers are reshaped, in the venue's own shapes:

- `page_size`: `GET /data/trades` is re-paged, `page_size` trades a page, under this front's
  own cursors (the simulator pages by 100), so a listing can be longer than a client bound;
- `hide_trades`: `GET /data/trades` answers with no trades (they are late to show);
- `rename_orders`: the venue calls each new order by another id than its hash — in the
  `POST /order` answer and as `taker_order_id` of its trades (`renamed` maps them).

It is a test venue in front of the real one, not a stand-in for any polycopy code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
from aiohttp import web

END = "LTE="
HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor or cursor == END:
        return 0
    return int(base64.b64decode(cursor).decode())


class VenueFront:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.page_size: int | None = None
        self.hide_trades = False
        self.rename_orders = False
        self.renamed: dict[str, str] = {}  # our order hash → the id the venue gives it
        self.trade_pages_served = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> VenueFront:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _upstream(
        self, request: web.Request, *, query: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path,
            params=query if query is not None else dict(request.query),
            headers=headers,
            data=await request.read(),
        ) as answer:
            return answer.status, await answer.read(), answer.content_type

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.path == "/data/trades":
            return await self._trades(request)
        status, body, content_type = await self._upstream(request)
        if request.method == "POST" and request.path == "/order" and self.rename_orders:
            answer = json.loads(body)
            if isinstance(answer, dict) and answer.get("orderID"):
                ours = answer["orderID"]
                answer["orderID"] = self.renamed.setdefault(ours, "0x" + ours[2:][::-1])
                body = json.dumps(answer).encode()
        return web.Response(status=status, body=body, content_type=content_type)

    async def _trades(self, request: web.Request) -> web.StreamResponse:
        self.trade_pages_served += 1
        query = {k: v for k, v in request.query.items() if k != "next_cursor"}
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:  # the whole listing from the simulator, all of its pages
            status, body, content_type = await self._upstream(
                request, query={**query, **({"next_cursor": cursor} if cursor else {})}
            )
            if status != 200:
                return web.Response(status=status, body=body, content_type=content_type)
            page = json.loads(body)
            rows.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor == END:
                break
        if self.hide_trades:
            rows = []
        for row in rows:
            row["taker_order_id"] = self.renamed.get(row["taker_order_id"], row["taker_order_id"])
        size = self.page_size or 100
        start = _offset(request.query.get("next_cursor"))
        chunk = rows[start : start + size]
        more = start + size < len(rows)
        return web.json_response(
            {
                "limit": size,
                "count": len(chunk),
                "next_cursor": _cursor(start + size) if more else END,
                "data": chunk,
            }
        )
