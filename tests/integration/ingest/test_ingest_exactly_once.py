"""Exactly once: the same trades via both RTDS streams and REST, duplicated and reordered;
identical fills of one tx; first start; reload; a 1,000-leader config against a firehose."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from pathlib import Path

from polycopy.sim import Duplicated, Reordered, SimConfig, SimServer

from .conftest import (
    after_second_boundary,
    eventually,
    expected_ids,
    make_ingester,
    running,
    subscribed,
)

A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
C = "0x" + "c3" * 20


async def test_both_sources_duplicated_and_reordered_give_one_event_each(tmp_path: Path) -> None:
    config = SimConfig.instant(seed=3, firehose_per_s=300, maker_share=0.3)
    async with SimServer(config) as sim:
        market = sim.add_market(price=Decimal("0.40"))
        yes, no = (t.token_id for t in market.tokens)
        ingester = make_ingester(tmp_path, sim, [A, B], poll_interval_s=Decimal("0.3"))
        async with running(ingester) as worker:
            await subscribed(sim)
            await after_second_boundary()
            sim.faults.arm(Duplicated(times=None, probability=0.4))
            sim.faults.arm(Reordered(times=None, probability=0.3))
            rng = random.Random(11)
            for n in range(60):
                leader = A if n % 3 else B
                token = yes if n % 2 else no
                side = "BUY" if rng.random() < 0.7 else "SELL"
                role = "maker" if n % 5 == 0 else "taker"  # makers only show on `trades`
                price, size = Decimal(rng.randint(5, 95)) / 100, Decimal(rng.randint(1, 900)) / 10
                sim.emit_trade(leader, token, side, price, size, role=role)
                if n % 10 == 0:
                    await asyncio.sleep(0.01)
            # two genuinely identical fills in one tx, and a third with another size
            tx = "0x" + "7e" * 32
            for size in ("12.5", "12.5", "3"):
                sim.emit_trade(A, yes, "BUY", Decimal("0.41"), Decimal(size), tx_hash=tx)
            want = expected_ids(sim.trades())
            assert len(want) == 63 == len(set(want))
            await eventually(lambda: worker.has_all(want), timeout=15)
            # a few more REST polls and websocket frames cannot add anything
            polls = ingester.counters.backfills_total
            await eventually(lambda: ingester.counters.backfills_total >= polls + 4)
            sim.faults.clear()

        assert sorted(worker.ids) == sorted(want)  # exactly once, nothing else
        counters = ingester.counters
        assert counters.duplicates_total["rest"] > 0
        assert counters.duplicates_total["rtds:trades"] > 0
        assert counters.rtds_repeats_total > 0  # Duplicated frames were seen and set aside
        assert counters.frames_skipped_total["other_wallet"] > 100  # the firehose was there
        identical = [t for t in worker.trades if t.tx_hash == "0x" + "7e" * 32]
        assert sorted((t.size, t.occurrence) for t in identical) == [
            (Decimal("3"), 0),
            (Decimal("12.5"), 0),
            (Decimal("12.5"), 1),
        ]


async def test_first_start_copies_no_history_and_restart_misses_nothing(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=5)) as sim:
        token = sim.add_market().tokens[0].token_id
        for n in range(5):  # history: before polycopy ever followed A
            sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(n + 1))
        await after_second_boundary()

        first = make_ingester(tmp_path, sim, [A])
        async with running(first) as worker:
            await eventually(lambda: first.backfills.succeeded.get(A, 0) >= 2)
            assert worker.trades == []
            assert first.counters.history_skipped_total >= 5
            live = [
                sim.emit_trade(A, token, "SELL", Decimal("0.6"), Decimal(n + 1)) for n in range(3)
            ]
            want_live = expected_ids(f.identity() for f in live)
            await eventually(lambda: worker.has_all(want_live))
        assert sorted(worker.ids) == sorted(want_live)

        # down for a while: three trades happen meanwhile
        missed = [sim.emit_trade(A, token, "BUY", Decimal("0.3"), Decimal(n + 7)) for n in range(3)]
        second = make_ingester(tmp_path, sim, [A])  # same ledger file: a restart
        async with running(second) as again:
            want_missed = expected_ids(f.identity() for f in missed)
            await eventually(lambda: again.has_all(want_missed))
            await eventually(lambda: second.backfills.succeeded.get(A, 0) >= 3)
        assert sorted(again.ids) == sorted(want_missed)  # no history, nothing twice


async def test_reload_follows_new_leaders_from_now_and_drops_removed_ones(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=9)) as sim:
        token = sim.add_market().tokens[0].token_id
        sim.emit_trade(C, token, "BUY", Decimal("0.5"), Decimal(1))  # C's history
        await after_second_boundary()
        ingester = make_ingester(tmp_path, sim, [A, B])
        async with running(ingester) as worker:
            await subscribed(sim)
            a1 = sim.emit_trade(A, token, "BUY", Decimal("0.5"), Decimal(2))
            await eventually(lambda: worker.has_all(expected_ids([a1.identity()])))

            ingester.set_leaders([A, C])  # B out, C in
            assert ingester.leaders == {A, C}
            await eventually(lambda: ingester.backfills.succeeded.get(C, 0) >= 1)
            b1 = sim.emit_trade(B, token, "BUY", Decimal("0.5"), Decimal(3))
            c1 = sim.emit_trade(C, token, "SELL", Decimal("0.5"), Decimal(4))
            a2 = sim.emit_trade(A, token, "SELL", Decimal("0.5"), Decimal(5))
            want = expected_ids([a1.identity(), c1.identity(), a2.identity()])
            await eventually(lambda: worker.has_all(want))
            polls = ingester.counters.backfills_total
            await eventually(lambda: ingester.counters.backfills_total >= polls + 3)
        assert sorted(worker.ids) == sorted(want)
        assert expected_ids([b1.identity()])[0] not in worker.ids


async def test_thousand_leaders_filter_a_firehose(tmp_path: Path) -> None:
    rng = random.Random(1000)
    leaders = [f"0x{rng.getrandbits(160):040x}" for _ in range(1_000)]
    trading = leaders[::97]  # eleven of them trade; the firehose is everybody else
    async with SimServer(SimConfig.instant(seed=10, firehose_per_s=3_000)) as sim:
        market = sim.add_market()
        ingester = make_ingester(tmp_path, sim, leaders, poll_interval_s=Decimal("30"))
        async with running(ingester) as worker:
            await subscribed(sim)
            await eventually(lambda: ingester.backfills.idle, timeout=60)
            fills = []
            for n in range(100):
                leader = trading[n % len(trading)]
                token = market.tokens[n % 2].token_id
                size = Decimal(n + 1)
                fills.append(sim.emit_trade(leader, token, "BUY", Decimal("0.5"), size))
                if n % 10 == 0:
                    await asyncio.sleep(0.02)
            want = expected_ids(f.identity() for f in fills)
            await eventually(lambda: worker.has_all(want), timeout=20)
            other = ingester.counters.frames_skipped_total["other_wallet"]
            await eventually(
                lambda: ingester.counters.frames_skipped_total["other_wallet"] > other + 500
            )
        assert sorted(worker.ids) == sorted(want)
        assert all(t.source.startswith("rtds:") for t in worker.trades)  # caught live
        assert ingester.counters.frames_rejected_total == {}


async def test_a_leader_not_followed_at_the_last_run_end_starts_from_now(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant(seed=12)) as sim:
        token = sim.add_market().tokens[0].token_id
        await after_second_boundary()
        # run 1 follows A, B and C; a reload drops B; C is dropped from the file while down
        first = make_ingester(tmp_path, sim, [A, B, C])
        async with running(first) as worker:
            await eventually(lambda: all(first.backfills.succeeded.get(x, 0) for x in (A, B, C)))
            early = [sim.emit_trade(x, token, "BUY", Decimal("0.5"), Decimal(1)) for x in (A, B, C)]
            await eventually(lambda: worker.has_all(expected_ids(f.identity() for f in early)))
            first.set_leaders([A, C])
        second = make_ingester(tmp_path, sim, [A])  # C is no longer in the config
        async with running(second):
            await eventually(lambda: second.backfills.succeeded.get(A, 0) >= 1)

        # while nobody follows B or C, both trade; A is followed throughout
        unfollowed = [sim.emit_trade(x, token, "SELL", Decimal("0.5"), Decimal(2)) for x in (B, C)]
        missed = sim.emit_trade(A, token, "SELL", Decimal("0.5"), Decimal(3))
        await after_second_boundary()

        third = make_ingester(tmp_path, sim, [A, B, C])  # B and C are back in the config
        async with running(third) as again:
            await eventually(lambda: all(third.backfills.succeeded.get(x, 0) for x in (A, B, C)))
            later = [sim.emit_trade(x, token, "BUY", Decimal("0.5"), Decimal(4)) for x in (B, C)]
            want = expected_ids([missed.identity(), *(f.identity() for f in later)])
            await eventually(lambda: again.has_all(want))
            polls = third.counters.backfills_total
            await eventually(lambda: third.counters.backfills_total >= polls + 3)
        # A resumed from its cursor; B and C started from now: their trades in between, from
        # before they were followed again, are history and not copied
        assert sorted(again.ids) == sorted(want)
        assert not set(expected_ids(f.identity() for f in unfollowed)) & set(again.ids)
        assert third.counters.history_skipped_total >= 2
