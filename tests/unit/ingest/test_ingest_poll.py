"""REST backfill paging against an in-memory `/activity` with the v1 semantics and caps."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from polycopy.domain.events import LeaderTrade
from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.decode import OccurrenceCounter, decode_trade
from polycopy.ingest.inbox import Inbox
from polycopy.ingest.poll import BackfillScheduler, RestPoller
from polycopy.store.db import Database

from .conftest import WHALE


class ActivityApi:
    """`/activity?user=&type=TRADE&start=&sortDirection=ASC&limit=&offset=` over a list of rows:
    stable ascending order, `start` inclusive, offsets above `offset_cap` refused (a 400)."""

    def __init__(self, rows: list[dict[str, Any]], offset_cap: int) -> None:
        self.rows = sorted(rows, key=lambda r: int(r["timestamp"]))  # sorted() is stable
        self.offset_cap = offset_cap
        self.calls: list[tuple[int, int, int]] = []

    async def fetch(self, leader: str, start: int, offset: int, limit: int) -> list[Any]:
        self.calls.append((start, offset, limit))
        if offset > self.offset_cap:
            raise AssertionError(f"offset {offset} is past the cap: the API answers 400")
        window = [
            r
            for r in self.rows
            if r["proxyWallet"] == leader and r["type"] == "TRADE" and int(r["timestamp"]) >= start
        ]
        return copy.deepcopy(window[offset : offset + limit])


class Collector:
    """The hand-over: inbox commit with the cursor advance, as the ingester does it."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.handed: list[LeaderTrade] = []

    async def __call__(
        self, trades: list[LeaderTrade], cursors: Mapping[str, tuple[int, Iterable[str]]]
    ) -> int:
        new = self.inbox.commit(trades, cursors)
        self.handed.extend(new)
        return len(new)


def make(
    tmp_path: Path, rows: list[dict[str, Any]], *, limit: int, cap: int, now: float
) -> tuple[RestPoller, ActivityApi, Collector, IngestCounters]:
    api = ActivityApi(rows, cap)
    inbox = Inbox(Database(tmp_path / "ledger.sqlite3"), wall=lambda: now)
    collector = Collector(inbox)
    counters = IngestCounters()
    poller = RestPoller(
        api.fetch,
        inbox,
        collector,
        counters,
        overlap_s=120,
        max_backfill_age_s=10**9,
        page_limit=limit,
        offset_cap=cap,
        wall=lambda: now,
    )
    return poller, api, collector, counters


def expected_ids(rows: list[dict[str, Any]]) -> list[str]:
    counter = OccurrenceCounter()
    ordered = sorted((r for r in rows if r["type"] == "TRADE"), key=lambda r: int(r["timestamp"]))
    return [counter.assign(decode_trade(r, source="rest")).trade_id for r in ordered]


async def test_shared_timestamps_across_pages_and_windows(
    tmp_path: Path, whale_rows: list[dict[str, Any]]
) -> None:
    rows = whale_rows[:700]
    first_ts = min(int(r["timestamp"]) for r in rows)
    last_ts = max(int(r["timestamp"]) for r in rows)
    # pages of 9, windows of 6 pages (54 rows): runs of up to 48 rows in one second span
    # pages and windows
    poller, api, collector, counters = make(tmp_path, rows, limit=9, cap=45, now=last_ts)
    poller.inbox.follow(WHALE, first_ts)
    result = await poller.backfill(WHALE)

    want = expected_ids(rows)
    got = [t.trade_id for t in collector.handed]
    assert sorted(got) == sorted(want)
    assert len(got) == len(set(got))
    assert not result.truncated
    assert any(start > first_ts - 120 for start, _, _ in api.calls)  # the window did move
    cursor = poller.inbox.cursor(WHALE)
    assert cursor is not None
    assert cursor.last_ts == max(int(r["timestamp"]) for r in rows)
    assert counters.rows_rejected_total == {}

    # a second backfill from the cursor − overlap finds nothing new
    again = await poller.backfill(WHALE)
    assert again.handed_on == 0


async def test_identical_fills_in_one_tx_are_two_trades(tmp_path: Path) -> None:
    base = {
        "proxyWallet": WHALE,
        "timestamp": 1_773_718_931,
        "conditionId": "0x" + "9f" * 32,
        "type": "TRADE",
        "size": Decimal("5"),
        "transactionHash": "0x" + "c5" * 32,
        "price": Decimal("0.04"),
        "asset": "85041495124636364465524207427291847277512583258226863950929723670181441670161",
        "side": "BUY",
        "outcomeIndex": 0,
    }
    rows = [dict(base), dict(base), {**base, "size": Decimal("6")}]
    poller, _, collector, _ = make(tmp_path, rows, limit=2, cap=10, now=1_773_718_900)
    poller.inbox.follow(WHALE, 1_773_718_900)
    await poller.backfill(WHALE)
    assert sorted(t.occurrence for t in collector.handed) == [0, 0, 1]
    assert len({t.trade_id for t in collector.handed}) == 3
    assert (await poller.backfill(WHALE)).handed_on == 0


async def test_a_window_of_one_timestamp_beyond_the_cap_is_truncated_not_looped(
    tmp_path: Path,
) -> None:
    rows = [
        {
            "proxyWallet": WHALE,
            "timestamp": 1_000_000,
            "type": "TRADE",
            "size": Decimal(n + 1),
            "transactionHash": "0x" + f"{n:064x}",
            "price": Decimal("0.5"),
            "asset": "1",
            "side": "BUY",
        }
        for n in range(30)
    ]
    poller, _, collector, counters = make(tmp_path, rows, limit=5, cap=10, now=1_000_000)
    poller.inbox.follow(WHALE, 1_000_000)
    result = await poller.backfill(WHALE)
    assert result.truncated
    assert counters.backfill_truncated_total == 1
    assert len(collector.handed) == 15  # what the API could page through


async def test_a_failed_hand_on_leaves_the_cursor_at_the_last_committed_page(
    tmp_path: Path, whale_rows: list[dict[str, Any]]
) -> None:
    rows = whale_rows[:50]
    first_ts = min(int(r["timestamp"]) for r in rows)
    last_ts = max(int(r["timestamp"]) for r in rows)
    poller, _, collector, _ = make(tmp_path, rows, limit=10, cap=100, now=last_ts)
    poller.inbox.follow(WHALE, first_ts)
    calls = 0

    async def failing(
        trades: list[LeaderTrade], cursors: Mapping[str, tuple[int, Iterable[str]]]
    ) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        return await collector(trades, cursors)

    poller._hand_on = failing
    with pytest.raises(OSError, match="disk full"):
        await poller.backfill(WHALE)
    cursor = poller.inbox.cursor(WHALE)
    assert cursor is not None
    assert cursor.last_ts == max(int(r["timestamp"]) for r in sorted_rows(rows)[:20])

    poller._hand_on = collector  # "restart": everything arrives, nothing twice
    await poller.backfill(WHALE)
    assert sorted(t.trade_id for t in collector.handed) == sorted(expected_ids(rows))


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in rows if r["type"] == "TRADE"), key=lambda r: int(r["timestamp"]))


async def test_a_poll_reuses_the_rows_it_read_before_and_numbers_them_the_same(
    tmp_path: Path,
) -> None:
    base = {
        "proxyWallet": WHALE,
        "timestamp": 1_773_718_931,
        "conditionId": "0x" + "9f" * 32,
        "type": "TRADE",
        "size": Decimal("5"),
        "transactionHash": "0x" + "c5" * 32,
        "price": Decimal("0.04"),
        "asset": "85041495124636364465524207427291847277512583258226863950929723670181441670161",
        "side": "BUY",
    }
    rows = [dict(base), dict(base), {**base, "side": "HOLD"}, {**base, "size": Decimal("6")}]
    now = 1_773_718_940
    api = ActivityApi(rows, 10)
    inbox = Inbox(Database(tmp_path / "ledger.sqlite3"), wall=lambda: now)
    collector = Collector(inbox)
    given: list[list[str]] = []

    async def hand_on(
        trades: list[LeaderTrade], cursors: Mapping[str, tuple[int, Iterable[str]]]
    ) -> int:  # what each pass hands on, then committed as usual
        given.append([t.trade_id for t in trades])
        return await collector(trades, cursors)

    counters = IngestCounters()
    poller = RestPoller(api.fetch, inbox, hand_on, counters, page_limit=10, wall=lambda: now)
    poller.inbox.follow(WHALE, 1_773_718_900)
    await poller.backfill(WHALE)
    assert counters.rows_reused_total == 0
    assert (await poller.backfill(WHALE, deep=False)).handed_on == 0
    assert counters.rows_reused_total == 3  # the bad row is judged (and counted) again
    assert given[0] == given[1]  # the same trades, the same occurrence numbers
    assert counters.rows_rejected_total == {"side": 2}
    api.rows[0] = {**base, "size": Decimal("7")}  # a row that changed is decoded afresh
    await poller.backfill(WHALE, deep=False)
    assert counters.rows_reused_total == 3 + 2
    assert len(collector.handed) == 4


async def test_malformed_rows_are_counted_and_dead_lettered(tmp_path: Path) -> None:
    good = {
        "proxyWallet": WHALE,
        "timestamp": 2_000_000,
        "type": "TRADE",
        "size": Decimal("3"),
        "transactionHash": "0x" + "e" * 64,
        "price": Decimal("0.5"),
        "asset": "7",
        "side": "BUY",
    }
    rows = [good, {**good, "price": Decimal("1.5")}, {**good, "side": "HOLD"}]
    poller, _, collector, counters = make(tmp_path, rows, limit=10, cap=100, now=2_000_000)
    poller.inbox.follow(WHALE, 2_000_000)
    await poller.backfill(WHALE)
    assert len(collector.handed) == 1
    assert counters.rows_rejected_total == {"price": 1, "side": 1}
    poller.inbox.flush()
    assert {reason for _, reason, _, _ in poller.inbox.dead_letters()} == {"price", "side"}


async def test_scheduler_coalesces_requests_per_leader() -> None:
    counters = IngestCounters()
    started: list[str] = []
    release = __import__("asyncio").Event()

    async def backfill(leader: str, deep: bool) -> Any:
        started.append(leader if deep else f"{leader}~")
        await release.wait()
        from polycopy.ingest.poll import BackfillResult

        return BackfillResult(leader, 0, 1, 0, 0, False)

    import asyncio

    scheduler = BackfillScheduler(backfill, counters, concurrency=2)
    task = asyncio.create_task(scheduler.run())
    scheduler.request(["a", "b", "a"])
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    scheduler.request(["a", "a", "a"], deep=False)  # while running: one rerun, not three
    scheduler.request(["b"], deep=False)
    release.set()
    for _ in range(20):
        await asyncio.sleep(0)
    # a's rerun was asked shallow only; b's shallow request followed its deep run
    assert sorted(started) == ["a", "a~", "b", "b~"]
    assert scheduler.completed == {"a": 2, "b": 2}
    assert scheduler.idle
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_periodic_poll_looks_back_less_than_a_deep_backfill() -> None:
    from polycopy.ingest.inbox import Inbox
    from polycopy.store.db import Database

    requested: list[int] = []

    async def fetch(leader: str, start: int, offset: int, limit: int) -> list[Any]:
        requested.append(start)
        return []

    async def hand_on(trades: Any, cursors: Any) -> int:
        return 0

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"{tmp}/i.sqlite3")
        inbox = Inbox(db, wall=lambda: 10_000.0)
        poller = RestPoller(
            fetch,
            inbox,
            hand_on,
            IngestCounters(),
            overlap_s=120,
            poll_overlap_s=15,
            wall=lambda: 10_000.0,
        )
        await poller.backfill(WHALE)
        await poller.backfill(WHALE, deep=False)
        db.close()
    assert requested == [10_000 - 120, 10_000 - 15]


def plain_row(ts: int, n: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "proxyWallet": WHALE,
        "timestamp": ts,
        "type": "TRADE",
        "size": Decimal(n),
        "transactionHash": "0x" + f"{n:064x}",
        "price": Decimal("0.5"),
        "asset": "7",
        "side": "BUY",
    }
    row.update(over)
    return row


@pytest.mark.parametrize(
    "poison",
    [
        {"side": "HOLD", "timestamp": 9_999_999_999},  # rejected for its side; absurd time
        {"timestamp": 9_999_999_999},  # a well-formed trade but in the year 2286
        {"timestamp": 9_999_999_999_999},  # 13 digits: milliseconds, still far ahead
        {"price": Decimal("1.5"), "timestamp": 1_800_000_030},  # rejected, a little ahead
    ],
)
async def test_a_rejected_row_never_moves_the_cursor(
    tmp_path: Path, poison: dict[str, Any]
) -> None:
    now = 1_800_000_000
    rows = [plain_row(now + 1, 1), plain_row(now + 2, 2, **poison)]
    poller, api, collector, counters = make(tmp_path, rows, limit=10, cap=100, now=now + 5)
    poller.inbox.follow(WHALE, now)
    await poller.backfill(WHALE)
    cursor = poller.inbox.cursor(WHALE)
    assert cursor is not None
    assert cursor.last_ts == now + 1  # the only row that decoded into a trade
    assert sum(counters.rows_rejected_total.values()) == 1

    api.rows.append(plain_row(now + 20, 3))  # a real, later trade
    await poller.backfill(WHALE, deep=False)
    await poller.backfill(WHALE)
    assert [t.size for t in collector.handed] == [Decimal(1), Decimal(3)]
    assert all(start <= now + 1 for start, _, _ in api.calls)  # never skipped ahead
    reopened = Inbox(Database(tmp_path / "ledger.sqlite3"))
    durable = reopened.cursor(WHALE)
    assert durable is not None
    assert durable.last_ts == now + 20


async def test_a_millisecond_timestamp_is_read_as_the_second_it_names(tmp_path: Path) -> None:
    now = 1_800_000_000
    rows = [plain_row(now * 1000 + 500, 1)]
    poller, _, collector, _ = make(tmp_path, rows, limit=10, cap=100, now=now + 5)
    poller.inbox.follow(WHALE, now)
    await poller.backfill(WHALE)
    assert [int(t.timestamp.timestamp()) for t in collector.handed] == [now]
    cursor = poller.inbox.cursor(WHALE)
    assert cursor is not None
    assert cursor.last_ts == now


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_quiet_leader_raises_backfill_truncated_only_for_a_real_gap(
    tmp_path: Path,
) -> None:
    clock = Clock(1_000_000.0)
    api = ActivityApi([], offset_cap=100)
    path = tmp_path / "ledger.sqlite3"
    inbox = Inbox(Database(path), wall=clock)
    counters = IngestCounters()

    def poller_on(inbox: Inbox) -> RestPoller:
        return RestPoller(
            api.fetch,
            inbox,
            Collector(inbox),
            counters,
            overlap_s=120,
            poll_overlap_s=15,
            max_backfill_age_s=86_400,
            wall=clock,
        )

    poller = poller_on(inbox)
    inbox.follow(WHALE, int(clock.now))
    for _ in range(2 * 24 * 4):  # two days of polls, every 15 minutes, not one trade
        clock.now += 900
        result = await poller.backfill(WHALE, deep=False)
        assert not result.truncated
        assert result.start >= clock.now - 900 - 200  # the window stays short
    assert counters.backfill_truncated_total == 0
    cursor = inbox.cursor(WHALE)
    assert cursor is not None
    assert cursor.last_ts == cursor.follow_since  # no trade seen, none invented

    # a restart ten minutes later resumes from where the API was last checked
    inbox.db.close()
    clock.now += 600
    inbox = Inbox(Database(path), wall=clock)
    poller = poller_on(inbox)
    result = await poller.backfill(WHALE)
    assert result.start >= clock.now - 600 - 200
    assert counters.backfill_truncated_total == 0

    # a real gap: nothing checked for two days (polycopy was down)
    clock.now += 2 * 86_400
    assert (await poller.backfill(WHALE)).truncated
    assert not (await poller.backfill(WHALE, deep=False)).truncated
    assert counters.backfill_truncated_total == 1
    inbox.db.close()


async def test_a_failed_backfill_does_not_mark_the_leader_checked(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)

    async def failing(leader: str, start: int, offset: int, limit: int) -> list[Any]:
        raise OSError("unreachable")

    inbox = Inbox(Database(tmp_path / "ledger.sqlite3"), wall=clock)
    poller = RestPoller(failing, inbox, Collector(inbox), IngestCounters(), wall=clock)
    inbox.follow(WHALE, int(clock.now))
    clock.now += 3600
    with pytest.raises(OSError, match="unreachable"):
        await poller.backfill(WHALE)
    cursor = inbox.cursor(WHALE)
    assert cursor is not None
    assert cursor.position == 1_000_000  # unchanged: nothing was checked
