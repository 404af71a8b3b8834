"""The Data API as the simulator serves it: same fields and JSON types as recorded real
payloads, the real parameters, caps and paging."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
from simkit import assert_same_shape, recorded

from conftest import LEADER, WHALE
from polycopy.sim import ErrorStatus, RateLimit, SimConfig, SimServer
from polycopy.sim.state import Market


async def get(session: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    async with session.get(url, params={k: str(v) for k, v in params.items()}) as resp:
        return resp.status, await resp.json()


def seed_trades(sim: SimServer, market: Market, count: int = 3) -> None:
    yes, no = (t.token_id for t in market.tokens)
    for i in range(count):
        sim.emit_trade(LEADER, yes, "BUY", Decimal("0.50"), Decimal(10 + i))
    sim.emit_trade(LEADER, no, "BUY", Decimal("0.48"), Decimal("7.5"))
    sim.emit_trade(LEADER, yes, "SELL", Decimal("0.52"), Decimal(4), role="maker")


async def test_v1_rows_have_the_recorded_fields_and_types(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    seed_trades(sim, market)
    _, activity = await get(session, sim.url + "/activity", user=LEADER)
    assert_same_shape(activity, recorded("activity/sellersja01__polybotanalysis__trades_raw.json"))
    _, trades = await get(session, sim.url + "/trades", user=LEADER)
    assert_same_shape(trades, recorded("activity/ra1nty__polymarket-cli__trades.json"))
    _, positions = await get(session, sim.url + "/positions", user=LEADER)
    assert_same_shape(positions, recorded("positions/jm709__pscanner__positions.json"))
    _, value = await get(session, sim.url + "/value", user=LEADER)
    assert_same_shape(value, [{"user": "0x", "value": 1.5}])  # reference §1.4


async def test_v2_envelopes_and_rows_have_the_recorded_fields_and_types(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    seed_trades(sim, market)
    _, activity = await get(session, sim.url + "/v2/activity", user=LEADER)
    assert set(activity) == {"data", "pagination"}
    assert set(activity["pagination"]) == {"limit", "offset", "has_more", "next_cursor"}
    assert_same_shape(
        activity["data"], recorded("activity/Polymarket__py-sdk__data_v2_activity.json")
    )
    _, trades = await get(session, sim.url + "/v2/trades", user=LEADER)
    assert_same_shape(trades["data"], recorded("activity/Polymarket__py-sdk__data_v2_trades.json"))
    _, positions = await get(session, sim.url + "/v2/positions", user=LEADER)
    assert_same_shape(
        positions["data"], recorded("positions/Polymarket__py-sdk__data_v2_positions.json")
    )
    _, value = await get(session, sim.url + "/v2/value", user=LEADER)
    assert_same_shape(
        [value["data"]], [recorded("positions/Polymarket__py-sdk__data_v2_value.json")]
    )


async def test_book_has_the_recorded_fields_with_levels_best_last(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    token = market.tokens[0].token_id
    status, book = await get(session, sim.url + "/book", token_id=token)
    assert status == 200
    real = recorded("books/ra1nty__polymarket-cli__book.json")
    assert_same_shape([book], [real])
    assert_same_shape(book["asks"] + book["bids"], real["asks"])
    bids = [Decimal(x["price"]) for x in book["bids"]]
    asks = [Decimal(x["price"]) for x in book["asks"]]
    assert bids == sorted(bids)
    assert asks == sorted(asks, reverse=True)
    assert bids[-1] < asks[-1]
    assert book["timestamp"].isdigit()
    assert len(book["timestamp"]) == 13
    assert (await get(session, sim.url + "/book", token_id="123"))[0] == 404
    assert (await get(session, sim.url + "/book"))[0] == 400


async def test_activity_paging_caps_sorting_and_windows(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    token = market.tokens[0].token_id
    for i in range(600):
        sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(i + 1), timestamp=1_000 + i)
    url = sim.url + "/activity"
    _, rows = await get(session, url, user=LEADER, limit=1000)
    assert len(rows) == 500  # limit clamped to 500
    assert rows[0]["timestamp"] == 1_599  # newest first by default
    assert (await get(session, url, user=LEADER, offset=5001))[0] == 400
    assert (await get(session, url, user=LEADER, offset=5000))[0] == 200
    assert (await get(session, url))[0] == 400  # user is required
    _, window = await get(
        session, url, user=LEADER, start=1_100, end=1_109, sortDirection="ASC", limit=500
    )
    assert [r["timestamp"] for r in window] == list(range(1_100, 1_110))
    _, by_size = await get(session, url, user=LEADER, sortBy="TOKENS", limit=2)
    assert [r["size"] for r in by_size] == [600, 599]
    _, page2 = await get(session, url, user=LEADER, limit=100, offset=100)
    assert page2[0]["timestamp"] == 1_499
    _, none = await get(session, url, user=LEADER, type="REDEEM")
    assert none == []


async def test_v2_cursor_paging_is_complete_and_refuses_offset(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    token = market.tokens[0].token_id
    for i in range(250):
        sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(1), timestamp=5_000 + i // 3)
    seen: list[tuple[int, str]] = []
    params: dict[str, Any] = {"user": LEADER, "limit": 100}
    pages = 0
    while True:
        status, page = await get(session, sim.url + "/v2/activity", **params)
        assert status == 200
        pages += 1
        seen += [(r["timestamp"], r["transaction_hash"]) for r in page["data"]]
        if page["pagination"]["next_cursor"] is None:
            assert page["pagination"]["has_more"] is False
            break
        # new trades between pages do not shift the pages already anchored
        sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(1), timestamp=9_999)
        params = {"user": LEADER, "cursor": page["pagination"]["next_cursor"]}
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    status, error = await get(session, sim.url + "/v2/activity", user=LEADER, offset=10)
    assert status == 400
    assert error["code"] == "invalid_request"
    assert error["parameter"] == "offset"


async def test_v2_trade_filters_take_either_case_and_default_to_a_hundredth_of_a_share(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    token = market.tokens[0].token_id
    for size in ("0.005", "2", "8", "14"):  # $0.0025, $1, $4, $7 at 0.5
        sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(size))

    async def sizes(route: str, **params: Any) -> list[float]:
        status, body = await get(session, sim.url + route, user=LEADER, **params)
        assert status == 200, body
        rows = body["data"] if isinstance(body, dict) else body
        return sorted(r["size"] for r in rows)

    assert await sizes("/v2/trades", filterType="CASH", filterAmount=5) == [14]
    assert await sizes("/v2/trades", filter_type="CASH", filter_amount=5) == [14]
    assert await sizes("/v2/trades", filterAmount=8) == [8, 14]  # TOKENS by default
    assert await sizes("/v2/trades", filter_type="CASH") == [2, 8, 14]  # at least $0.01
    assert await sizes("/v2/trades") == [2, 8, 14]  # 0.01 share by default hides dust
    assert await sizes("/v2/trades", filter_amount=0) == [0.005, 2, 8, 14]
    assert await sizes("/trades") == [0.005, 2, 8, 14]  # v1 has no default filter
    assert await sizes("/trades", filterType="CASH", filterAmount=5) == [14]
    status, error = await get(session, sim.url + "/trades", user=LEADER, filterType="CASH")
    assert (status, error) == (400, {"error": "filterType and filterAmount go together"})


async def test_http_faults_on_v2_routes_answer_in_the_v2_error_shape(
    sim: SimServer, session: aiohttp.ClientSession
) -> None:
    sim.faults.arm(RateLimit(path="/v2/*", retry_after_s=3))
    sim.faults.arm(ErrorStatus(path="/v2/*", status=503))
    sim.faults.arm(ErrorStatus(path="/v2/*", status=500))
    for status, code in ((429, "rate_limited"), (503, "dependency_unavailable"), (500, "internal")):
        async with session.get(sim.url + "/v2/trades", params={"user": LEADER}) as resp:
            body = await resp.json()
            assert resp.status == status
            assert set(body) == {"error", "code", "retryable", "trace_id"}
            assert (body["code"], body["retryable"]) == (code, True)
            assert resp.headers["x-trace-id"] == body["trace_id"]
            if status != 500:
                assert resp.headers["Retry-After"] == ("3" if status == 429 else "1")
    sim.faults.arm(ErrorStatus(path="/*", status=500))
    async with session.get(sim.url + "/trades", params={"user": LEADER}) as resp:
        assert (resp.status, await resp.json()) == (500, {"error": "Internal Server Error"})
        assert "x-trace-id" not in resp.headers  # v1 keeps its own shape


async def test_trades_hide_maker_fills_unless_asked_and_positions_follow_trades(
    sim: SimServer, session: aiohttp.ClientSession, market: Market
) -> None:
    seed_trades(sim, market)
    _, taker_only = await get(session, sim.url + "/trades", user=LEADER)
    _, everything = await get(session, sim.url + "/trades", user=LEADER, takerOnly="false")
    assert len(everything) == len(taker_only) + 1
    _, activity = await get(session, sim.url + "/activity", user=LEADER)
    assert len(activity) == 5  # the wallet's feed carries maker fills too
    yes = market.tokens[0].token_id
    _, positions = await get(session, sim.url + "/positions", user=LEADER, sizeThreshold=0)
    sizes = {p["asset"]: p["size"] for p in positions}
    assert sizes[yes] == 10 + 11 + 12 - 4
    assert sizes[market.tokens[1].token_id] == 7.5
    _, hidden = await get(session, sim.url + "/positions", user=LEADER, sizeThreshold=8)
    assert [p["asset"] for p in hidden] == [yes]
    _, value = await get(session, sim.url + "/value", user=LEADER)
    expected = sum(Decimal(str(p["currentValue"])) for p in positions)
    assert abs(Decimal(str(value[0]["value"])) - expected) < Decimal("0.001")


async def test_other_wallets_trades_reach_the_trade_feeds_and_only_the_latest_are_kept(
    session: aiohttp.ClientSession,
) -> None:
    async with SimServer(SimConfig.instant(other_fills_kept=30)) as sim:
        market = sim.add_market()
        token = market.tokens[0].token_id
        fill = sim.emit_trade(LEADER, token, "BUY", Decimal("0.5"), Decimal(8))
        _, rows = await get(session, sim.url + "/trades", takerOnly="false")
        maker = next(r for r in rows if r["proxyWallet"] != LEADER)
        assert maker["transactionHash"] == fill.tx_hash  # the leader's counterparty
        assert (maker["side"], maker["size"], maker["asset"]) == ("SELL", 8, token)
        _, theirs = await get(session, sim.url + "/trades", user=maker["proxyWallet"])
        assert theirs == []  # a maker row: hidden by the default takerOnly=true
        _, theirs = await get(
            session, sim.url + "/v2/trades", user=maker["proxyWallet"], taker_only="false"
        )
        assert [r["transaction_hash"] for r in theirs["data"]] == [fill.tx_hash]

        crowd = [sim.crowd.trade(market) for _ in range(40)]  # what the firehose emits
        _, rows = await get(session, sim.url + "/trades", limit=1000)
        others = [r for r in rows if r["proxyWallet"] != LEADER]
        assert [r["transactionHash"] for r in others] == [f.tx_hash for f in crowd[-30:]][::-1]
        assert [r["transactionHash"] for r in rows if r["proxyWallet"] == LEADER] == [
            fill.tx_hash  # the leader's own rows are never dropped
        ]
        someone = crowd[-1]
        _, activity = await get(session, sim.url + "/activity", user=someone.wallet)
        assert someone.tx_hash in {a["transactionHash"] for a in activity}
        _, positions = await get(session, sim.url + "/positions", user=someone.wallet)
        assert positions == []  # no positions are kept for them


async def test_the_data_api_shows_a_trade_only_after_its_lag(
    session: aiohttp.ClientSession,
) -> None:
    clock = [1_800_000_000.0]
    config = SimConfig.instant(data_api_lag_s=5.0)
    async with SimServer(config, clock=lambda: clock[0]) as sim:
        token = sim.add_market().tokens[0].token_id
        sim.emit_trade(WHALE, token, "BUY", Decimal("0.5"), Decimal(100))
        assert (await get(session, sim.url + "/activity", user=WHALE))[1] == []
        assert (await get(session, sim.url + "/value", user=WHALE))[1][0]["value"] == 0
        clock[0] += 5.0
        _, rows = await get(session, sim.url + "/activity", user=WHALE)
        assert len(rows) == 1
        assert rows[0]["timestamp"] == 1_800_000_000
