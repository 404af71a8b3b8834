"""RTDS decode + filter throughput on one core, with 10 and with 1,000 followed leaders.

Frames are real `/activity` rows from ../shared/data/activity wrapped in the RTDS envelope
(compact JSON, checksum-cased wallets, JSON numbers). The mix is a firehose: 99 % trades of
5,000 wallets nobody follows (the real rows with their wallet replaced), 1 % trades of ten
followed leaders, decoded strictly to `LeaderTrade`. The same frames run against a set of 10
and a set of 1,000 followed wallets (SPEC §10: 1,000 leaders must cost no more per frame than
10), first through the pure decoder, then through `RtdsSource.on_frame` (counters, watchdog
clock, hand-over). Medians of alternating runs.

    .venv/bin/python bench/ingest_rtds.py [--frames N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from polycopy.domain.events import LeaderTrade
from polycopy.ingest.counters import IngestCounters
from polycopy.ingest.decode import FrameSkip, decode_rtds_frame
from polycopy.ingest.rtds import RtdsSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "activity"
FILES = (
    "sellersja01__polybotanalysis__trades_24h.json",
    "sellersja01__polybotanalysis__trades_raw.json",
    "jm709__pscanner__activity.json",
    "edulabrador__polymarket-smart-money__activity_all.json",
)
LEADER_SHARE = 0.01


def checksum_cased(rng: random.Random, address: str) -> str:
    return "0x" + "".join(c.upper() if rng.random() < 0.5 else c for c in address[2:])


def random_address(rng: random.Random) -> str:
    return f"0x{rng.getrandbits(160):040x}"


def load_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in FILES:
        body = json.loads((DATA / name).read_text(encoding="utf-8"), parse_float=Decimal)
        rows.extend(r for r in body if r.get("type") == "TRADE")
    return rows


def frame(row: dict[str, Any], wallet: str, kind: str, ts_ms: int) -> str:
    payload = {k: v for k, v in sorted(row.items()) if k not in ("type", "usdcSize")}
    payload["proxyWallet"] = wallet
    body = json.dumps(payload, separators=(",", ":"), default=float)
    return (
        '{"connection_id":"gXseIO-NQWeIKEhJwA==","payload":'
        + body
        + f',"timestamp":{ts_ms},"topic":"activity","type":"{kind}"}}'
    )


def build(
    rows: list[dict[str, Any]], leaders: list[str], count: int, rng: random.Random
) -> list[str]:
    crowd = [checksum_cased(rng, random_address(rng)) for _ in range(5_000)]
    frames = []
    for i in range(count):
        row = rows[i % len(rows)]
        if rng.random() < LEADER_SHARE:
            wallet = checksum_cased(rng, rng.choice(leaders))
        else:
            wallet = rng.choice(crowd)
        kind = "trades" if i % 2 else "orders_matched"
        frames.append(frame(row, wallet, kind, int(row["timestamp"]) * 1000 + i % 1000))
    return frames


def measure(frames: list[str], leaders: frozenset[str]) -> tuple[float, int]:
    decoded = 0
    began = time.perf_counter()
    for raw in frames:
        if not isinstance(decode_rtds_frame(raw, leaders), FrameSkip):
            decoded += 1
    return len(frames) / (time.perf_counter() - began), decoded


def measure_source(frames: list[str], leaders: frozenset[str]) -> float:
    """The same frames through `RtdsSource.on_frame`: counters, watchdog clock, hand-over."""
    handed: list[LeaderTrade] = []

    async def on_trade(trade: LeaderTrade) -> None:
        handed.append(trade)

    async def run() -> float:
        source = RtdsSource(
            "ws://127.0.0.1:9/rtds",
            leaders,
            on_trade,
            lambda: None,
            lambda exc, raw: None,
            IngestCounters(),
        )
        began = time.perf_counter()
        for raw in frames:
            await source.on_frame(raw)
        return len(frames) / (time.perf_counter() - began)

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"recorded data not found: {DATA}", file=sys.stderr)
        return 1
    rng = random.Random(42)
    rows = load_rows()
    # One frame list for both cases: the trading leaders are ten wallets that both sets hold,
    # so only the size of the set differs. Runs alternate between the two sets.
    trading = [random_address(rng) for _ in range(10)]
    frames = build(rows, trading, args.frames, rng)
    sets = {
        10: frozenset(trading),
        1_000: frozenset(trading + [random_address(rng) for _ in range(990)]),
    }
    rates: dict[int, list[float]] = {n: [] for n in sets}
    paths: dict[int, list[float]] = {n: [] for n in sets}
    decoded: dict[int, int] = {}
    for _ in range(args.runs):
        for n, followed in sets.items():
            rate, decoded[n] = measure(frames, followed)
            rates[n].append(rate)
            paths[n].append(measure_source(frames, followed))
    results = [
        (n, statistics.median(rates[n]), decoded[n], statistics.median(paths[n])) for n in sets
    ]
    line = "; ".join(
        f"{n} leaders: {rate:,.0f} frames/s decode+filter, {path:,.0f} frames/s through "
        f"RtdsSource.on_frame ({decoded} leader trades)"
        for n, rate, decoded, path in results
    )
    print(
        f"ingest_rtds, one core, median of {args.runs} x {args.frames:,} frames "
        f"({LEADER_SHARE:.0%} leader frames): {line}; "
        f"10/1000 leaders speed ratio {results[0][1] / results[1][1]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
