"""The status server on loopback: routes, bearer-token rules (R36), health codes."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from polycopy.observability.http import (
    Health,
    ListenAddress,
    StatusServer,
    parse_listen,
    token_problem,
)
from polycopy.observability.metrics import Metrics

TOKEN = "t" * 40


class Operator:
    """Records what the server asked the daemon to do."""

    def __init__(self) -> None:
        self.state = "ACTIVE"
        self.healthy = True

    async def halt(self, reason: str, state: str) -> dict[str, Any]:
        self.state = state
        return {"trading_state": self.state, "reason": reason}

    async def resume(self, reason: str) -> dict[str, Any]:
        self.state = "ACTIVE"
        return {"trading_state": self.state}


async def _server(listen: ListenAddress, token: str | None, op: Operator) -> StatusServer:
    metrics = Metrics()
    metrics.queue_depth.set(3)
    server = StatusServer(
        listen,
        token,
        metrics,
        status=lambda: {"mode": "paper", "trading_state": op.state},
        health=lambda: Health(op.healthy, [] if op.healthy else ["ingest stale for 31s"]),
        halt=op.halt,
        resume=op.resume,
    )
    await server.start()
    return server


async def test_loopback_reads_are_open_and_resume_needs_the_token() -> None:
    op = Operator()
    server = await _server(ListenAddress("127.0.0.1", 0), TOKEN, op)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/status") as resp:
                assert resp.status == 200
                assert (await resp.json())["mode"] == "paper"
            async with http.get(f"{base}/metrics") as resp:
                assert "polycopy_queue_depth 3.0" in await resp.text()
            async with http.post(f"{base}/halt", json={}) as resp:
                assert resp.status == 401  # a token is configured: commands need it
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with http.post(f"{base}/halt", json={"reason": "test"}, headers=auth) as resp:
                assert resp.status == 200
                assert (await resp.json())["reason"] == "test"
            async with http.post(f"{base}/resume", json={}) as resp:
                assert resp.status == 401
            assert op.state == "HALTED"
            async with http.post(
                f"{base}/resume", json={}, headers={"Authorization": "Bearer wrong"}
            ) as resp:
                assert resp.status == 401
            async with http.post(
                f"{base}/resume", json={}, headers={"Authorization": "Bearer wröng ✓"}
            ) as resp:
                assert resp.status == 401  # not a 500: compared as bytes
            async with http.post(f"{base}/resume", json={}, headers=auth) as resp:
                assert resp.status == 200
            assert op.state == "ACTIVE"
            op.healthy = False
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 503
                assert (await resp.json())["reasons"] == ["ingest stale for 31s"]
    finally:
        await server.stop()


async def test_without_a_token_resume_is_impossible() -> None:
    op = Operator()
    server = await _server(ListenAddress("127.0.0.1", 0), None, op)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}"
            async with http.post(f"{url}/halt", data="x", headers={"Content-Type": "text/plain"}):
                pass
            assert op.state == "ACTIVE"  # what a web page could send is refused (415)
            async with http.post(f"{url}/halt", json={"state": "PAUSED"}) as resp:
                assert resp.status == 400
            async with http.post(f"{url}/halt", json={"state": "reducing"}) as resp:
                assert resp.status == 200  # halting from loopback is always allowed
                assert (await resp.json())["trading_state"] == "REDUCING"
            async with http.post(f"{url}/halt", json={}) as resp:
                assert resp.status == 200
            async with http.post(f"{url}/resume", json={}) as resp:
                assert resp.status == 401
        assert op.state == "HALTED"
    finally:
        await server.stop()


async def test_non_loopback_bind_requires_the_token_everywhere() -> None:
    op = Operator()
    # 127.0.0.2 is loopback too, so pretend with a listen object whose host is not
    server = await _server(ListenAddress("127.0.0.1", 0), TOKEN, op)
    server.listen = ListenAddress("0.0.0.0", server.port or 0)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}/status"
            async with http.get(url) as resp:
                assert resp.status == 401
            async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                assert resp.status == 200
    finally:
        await server.stop()


def test_listen_rules() -> None:
    assert parse_listen("127.0.0.1:9464") == ListenAddress("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464").loopback
    with pytest.raises(ValueError, match="host:port"):
        parse_listen("9464")
    assert token_problem(ListenAddress("0.0.0.0", 9464), None) is not None
    assert token_problem(ListenAddress("0.0.0.0", 9464), "short") is not None
    assert token_problem(ListenAddress("0.0.0.0", 9464), TOKEN) is None
    assert token_problem(ListenAddress("127.0.0.1", 9464), None) is None
