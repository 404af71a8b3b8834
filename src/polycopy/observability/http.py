"""The status server: `/healthz`, `/metrics`, `/status`, and authenticated `POST /halt|/resume`.

Loopback by default. Bound anywhere else it requires a bearer token (≥ 32 characters, from
`POLYCOPY_STATUS_TOKEN`) on every route. `/resume` always requires the token: only an
authenticated operator lifts a halt (R25, R36).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from polycopy.observability.metrics import Metrics

MIN_TOKEN_LENGTH = 32


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_listen(text: str) -> ListenAddress:
    """`host:port` (IPv6 as `[::1]:port`). Raises ValueError with a readable message."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    host = host.strip("[]")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return ListenAddress(host, port)


def token_problem(listen: ListenAddress, token: str | None) -> str | None:
    """Why this listen address and token may not be used together, or None."""
    if not listen.loopback and not token:
        return (
            f"status.listen: {listen.host} is not loopback; set POLYCOPY_STATUS_TOKEN "
            f"(at least {MIN_TOKEN_LENGTH} characters) to expose the status server"
        )
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        return f"POLYCOPY_STATUS_TOKEN: must be at least {MIN_TOKEN_LENGTH} characters"
    return None


Command = Callable[[str], Awaitable[dict[str, Any]]]
HaltCommand = Callable[[str, str], Awaitable[dict[str, Any]]]  # (reason, HALTED | REDUCING)
HALT_STATES = ("HALTED", "REDUCING")


class StatusServer:
    def __init__(
        self,
        listen: ListenAddress,
        token: str | None,
        metrics: Metrics,
        status: Callable[[], dict[str, Any]],
        health: Callable[[], Health],
        halt: HaltCommand,
        resume: Command,
    ) -> None:
        self.listen = listen
        self._token = token
        self._metrics = metrics
        self._status = status
        self._health = health
        self._halt = halt
        self._resume = resume
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self._get_health)
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/status", self._get_status)
        app.router.add_post("/halt", self._post_halt)
        app.router.add_post("/resume", self._post_resume)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen.host, self.listen.port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.listen.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- auth -------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        if not self._token:
            return False
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        # compared as bytes: compare_digest refuses str with non-ASCII characters
        return scheme.lower() == "bearer" and secrets.compare_digest(
            given.encode("utf-8", "surrogateescape"), self._token.encode()
        )

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        needs_token = (
            not self.listen.loopback
            or request.path == "/resume"
            or (request.method == "POST" and self._token is not None)
        )
        if needs_token and not self._authorized(request):
            return _json({"error": "unauthorized: a valid bearer token is required"}, 401)
        if request.method == "POST" and request.content_type != "application/json":
            # a web page can send a form or text/plain to loopback without asking; it cannot
            # send application/json without a CORS preflight, which this server never grants
            return _json(
                {"error": "commands take a JSON body (Content-Type: application/json)"}, 415
            )
        return await handler(request)

    # --- routes -----------------------------------------------------------------------------
    async def _get_health(self, _request: web.Request) -> web.Response:
        health = self._health()
        return _json(
            {"healthy": health.healthy, "reasons": health.reasons}, 200 if health.healthy else 503
        )

    async def _get_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.render(),
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def _get_status(self, _request: web.Request) -> web.Response:
        return _json(self._status(), 200)

    async def _post_halt(self, request: web.Request) -> web.Response:
        body = await _body(request)
        state = str(body.get("state") or "HALTED").upper()
        if state not in HALT_STATES:
            return _json({"error": f"state must be one of {', '.join(HALT_STATES)}"}, 400)
        return _json(await self._halt(_reason(body, "operator halt"), state), 200)

    async def _post_resume(self, request: web.Request) -> web.Response:
        body = await _body(request)
        return _json(await self._resume(_reason(body, "operator resume")), 200)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, ValueError):
        body = {}
    return body if isinstance(body, dict) else {}


def _reason(body: dict[str, Any], default: str) -> str:
    reason = body.get("reason")
    return str(reason)[:200] if reason else default


def _json(payload: dict[str, Any], status: int) -> web.Response:
    return web.Response(
        text=json.dumps(payload, default=str), status=status, content_type="application/json"
    )
