"""Books kept live from the simulator's CLOB market channel: served from the stream once a
token is subscribed, the same levels `GET /book` gives, updated as the book moves; tick
changes reach the market catalog; a dropped stream falls back to `GET /book` until it is back;
idle tokens are unsubscribed; malformed frames are counted, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sim_rig import eventually

from polycopy.execution.clob_http import ClobHttp
from polycopy.execution.market_stream import MarketStream
from polycopy.execution.markets import MarketCatalog
from polycopy.sim import SimConfig, SimServer
from polycopy.sim.faults import Disconnect, Malformed

D = Decimal


Rig = tuple[SimServer, MarketStream, MarketCatalog, ClobHttp]


@contextlib.asynccontextmanager
async def running(idle_s: float = 60.0) -> AsyncIterator[Rig]:
    async with SimServer(SimConfig.instant()) as sim:
        http = ClobHttp(sim.url, timeout_s=5)
        catalog = MarketCatalog(http)
        stream = MarketStream(
            sim.clob_ws_url, http, catalog, ping_s=0.2, backoff_initial_s=0.05, idle_s=idle_s
        )
        task = asyncio.create_task(stream.run())
        try:
            yield sim, stream, catalog, http
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await http.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running() as parts:
        yield parts


def book_requests(sim: SimServer) -> int:
    return len(sim.requests(path="/book"))


async def test_books_come_from_the_stream_once_subscribed_and_follow_the_market(
    rig: Rig,
) -> None:
    sim, stream, _, http = rig
    token = sim.add_market(D("0.50")).tokens[0].token_id
    sim.set_book(token, [(D("0.48"), D(10)), (D("0.49"), D(5))], [(D("0.51"), D(7))])
    first = await stream.book(token)  # not subscribed yet: GET /book, and subscribe
    assert book_requests(sim) == 1
    assert stream.fell_back == 1
    await eventually(lambda: token in stream._books)
    from_stream = await stream.book(token)
    assert book_requests(sim) == 1  # no second request
    assert (from_stream.bids, from_stream.asks) == (first.bids, first.asks)
    assert [lv.price for lv in from_stream.bids] == [D("0.49"), D("0.48")]  # best first

    sim.set_book(token, [(D("0.30"), D(1))], [(D("0.70"), D(2))])  # the market moves
    await eventually(lambda: _best(stream, token) == (D("0.30"), D("0.70")))
    assert (await stream.book(token)).asks == (await http.book(token)).asks
    assert book_requests(sim) == 2  # the comparison above, nothing else


def _best(stream: MarketStream, token: str) -> tuple[Decimal | None, Decimal | None] | None:
    live = stream._books.get(token)
    if live is None:
        return None
    book = live.book(token)
    return book.best_bid, book.best_ask


async def test_a_tick_change_reaches_the_market_catalog(
    rig: Rig,
) -> None:
    sim, stream, catalog, _ = rig
    market = sim.add_market(D("0.50"))
    token = market.tokens[0].token_id
    await catalog.get(token, market.condition_id)
    assert catalog.rules(token).tick_size == D("0.01")
    await stream.book(token)
    await eventually(lambda: token in stream._books)
    sim.change_tick(token, D("0.001"))
    await eventually(lambda: catalog.rules(token).tick_size == D("0.001"))


async def test_a_dropped_stream_falls_back_to_get_book_and_comes_back(
    rig: Rig,
) -> None:
    sim, stream, _, _ = rig
    token = sim.add_market(D("0.50")).tokens[0].token_id
    await stream.book(token)
    await eventually(lambda: token in stream._books)
    connects = stream.connects
    sim.faults.arm(Disconnect(channel="market", refuse_s=0.5))
    await eventually(lambda: not stream.connected)
    before = book_requests(sim)
    await stream.book(token)  # down: the venue is asked
    assert book_requests(sim) == before + 1
    await eventually(lambda: stream.connects > connects and token in stream._books, timeout=10)
    await stream.book(token)
    assert book_requests(sim) == before + 1


async def test_idle_tokens_are_unsubscribed_and_bad_frames_counted() -> None:
    async with running(idle_s=1.0) as (sim, stream, _, _):
        await _idle_and_bad_frames(sim, stream)


async def _idle_and_bad_frames(sim: SimServer, stream: MarketStream) -> None:
    token = sim.add_market(D("0.50")).tokens[0].token_id
    await stream.book(token)
    await eventually(lambda: token in stream._books)
    sim.faults.arm(Malformed(channel="market", style="garbage"))
    sim.set_book(token, [(D("0.40"), D(1))], [(D("0.60"), D(1))])  # a frame goes out, spoiled
    await eventually(lambda: stream.frames_rejected >= 1)
    assert stream.connected
    # not read for idle_s (1 s): unsubscribed, its book dropped
    await eventually(lambda: token not in stream._books, timeout=5)
    assert token not in stream._wanted
