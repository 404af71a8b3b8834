"""Replay throughput (SPEC §10: ≥ 20,000 leader trades/s, goal 50,000, on a 100k-trade tape).

Generates a seeded synthetic tape of the design's example leaders (bench/out/, not committed),
replays it in-process several times with the demo configuration (Budgeted Dynamic) and with the
all-FIXED_RATE baseline, and prints the median trades/s of each.

    .venv/bin/python bench/replay_throughput.py [--trades 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

from polycopy.config import parse_config
from polycopy.demo import demo_config_data, fixed_rate_baseline
from polycopy.replay import replay
from polycopy.synth import PRACTICAL_EXAMPLE, ActivityGenerator, to_json_row

OUT = Path(__file__).resolve().parent / "out"


def synthetic_tape(trades: int, seed: int = 11) -> tuple[Path, list[Path]]:
    """A JSONL tape of `trades` rows plus the leaders' starting positions (cached on disk)."""
    OUT.mkdir(exist_ok=True)
    tape = OUT / f"tape-{trades}-{seed}.jsonl"
    positions = [OUT / f"positions-{p.name}-{seed}.json" for p in PRACTICAL_EXAMPLE]
    if tape.exists() and all(p.exists() for p in positions):
        return tape, positions
    generator = ActivityGenerator(seed)
    for profile, path in zip(PRACTICAL_EXAMPLE, positions, strict=True):
        rows = [to_json_row(r) for r in generator.positions_snapshot(profile)]
        path.write_text(json.dumps(rows))
    with tape.open("w") as out:
        for _ in range(trades):
            out.write(json.dumps(to_json_row(next(generator)), separators=(",", ":")))
            out.write("\n")
    return tape, positions


def measure(
    label: str, data: dict[str, object], tape: Path, positions: list[Path], runs: int
) -> float:
    config = parse_config(data, environ={})
    rates = []
    for _ in range(runs):
        sink = io.StringIO()
        started = time.perf_counter()
        result = replay(config, [tape], sink, positions=positions)
        elapsed = time.perf_counter() - started
        trades = sum(s.trades for s in result.leaders)
        rates.append(trades / elapsed)
    median = statistics.median(rates)
    spread = f"{min(rates):,.0f}–{max(rates):,.0f}"
    print(
        f"replay {label:<9} {trades:>7,} trades: median {median:>9,.0f} trades/s "
        f"over {runs} runs (range {spread})"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tape, positions = synthetic_tape(args.trades)
    data = demo_config_data()
    measure("budgeted", data, tape, positions, args.runs)
    measure("fixed", fixed_rate_baseline(data), tape, positions, args.runs)


if __name__ == "__main__":
    main()
