"""How many leader trades a second the simulator pushes through RTDS to one subscriber.

    .venv/bin/python bench/sim_rtds_throughput.py [--rate 2000] [--seconds 5]

The generator's leaders trade ~630 times an hour, so its speed is set to reach `--rate`.
Prints the rate reached, frames received, CPU used by this process (simulator and client
together) and how late frames arrive (envelope timestamp to receipt), as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from websockets.asyncio.client import connect

from polycopy.sim import SimConfig, SimServer
from polycopy.synth import PRACTICAL_EXAMPLE

TRADES_PER_HOUR = sum(p.trades_per_hour for p in PRACTICAL_EXAMPLE)


async def measure(rate: float, seconds: float, both_types: bool) -> dict[str, float]:
    config = SimConfig.instant(generate_seed=1, speed=rate * 3600 / TRADES_PER_HOUR)
    async with SimServer(config) as sim:
        types = ["orders_matched", "trades"] if both_types else ["orders_matched"]
        subscribe = {
            "action": "subscribe",
            "subscriptions": [{"topic": "activity", "type": t} for t in types],
        }
        frames = 0
        lateness: list[float] = []
        async with connect(sim.rtds_url, ping_interval=None, max_queue=None) as ws:
            await ws.send(json.dumps(subscribe))

            async def read() -> None:
                nonlocal frames
                async for frame in ws:
                    frames += 1
                    if frames % 100 == 0:
                        sent = json.loads(frame)["timestamp"]
                        lateness.append(time.time() * 1000 - sent)

            reader = asyncio.create_task(read())
            started, cpu = time.perf_counter(), time.process_time()
            first = len(sim.state.fills)
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - started
            used = time.process_time() - cpu
            trades = len(sim.state.fills) - first
            reader.cancel()
            await asyncio.wait([reader])
    return {
        "target_trades_per_s": rate,
        "trades_per_s": round(trades / elapsed),
        "frames_received": frames,
        "cpu_percent": round(100 * used / elapsed),
        "lateness_ms_p50": round(statistics.median(lateness), 2) if lateness else 0.0,
        "lateness_ms_max": round(max(lateness), 2) if lateness else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--both-types", action="store_true", help="also subscribe to trades")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.rate, args.seconds, args.both_types)), indent=1))


if __name__ == "__main__":
    main()
