"""Leader activity for the simulator: a recorded tape or the seeded generator, re-timed.

A tape's first trade happens when playback starts; each later one keeps its gap to the first,
divided by the speed. Emitted trades carry the current time, not the tape's. The generator is
endless and keeps its own (sub-second) clock, re-timed the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from polycopy.domain.events import LeaderTrade
from polycopy.domain.money import to_decimal
from polycopy.ingest.decode import DecodeError, decode_trade
from polycopy.sim.state import Market, Profile, SimState, Token
from polycopy.synth import ActivityGenerator
from polycopy.tapes import read_trade_rows

# (seconds on the source's clock, activity row, the row decoded when that was done already)
Timed = tuple[float, Mapping[str, Any], LeaderTrade | None]
Emit = Callable[[list[tuple[Mapping[str, Any], LeaderTrade | None]]], None]
_BATCH = 1000  # rows emitted before yielding to the event loop when far behind


def tape_feed(state: SimState, paths: Sequence[Path]) -> Iterator[Timed]:
    """A tape's trades, with every market they touch registered before playback starts."""
    rows = read_trade_rows(paths)
    timed: list[Timed] = []
    for row in rows:
        try:
            trade = decode_trade(row)
        except DecodeError:
            continue
        state.market_for_row(row, trade.asset, trade.price)
        timed.append((trade.timestamp.timestamp(), row, trade))
    return iter(timed)


def generator_feed(state: SimState, seed: int, markets: int) -> Iterator[Timed]:
    """The seeded generator's leaders (three small ones and a whale): their markets, starting
    positions and profiles registered, then an endless stream of their trades."""
    generator = ActivityGenerator(seed, markets=markets)
    for m in generator.markets:
        title = m.slug.replace("-", " ").title()
        market = Market(
            m.condition_id,
            (Token(m.tokens[0], "Yes", 0), Token(m.tokens[1], "No", 1)),
            title=title,
            slug=m.slug,
            event_slug=m.slug,
        )
        state.add_market(market, Decimal(str(round(m.price, 2))))
    for profile in generator.profiles:
        state.set_profile(profile.address, Profile(name=profile.name, pseudonym=profile.name))
        for row in generator.positions_snapshot(profile):
            state.set_position(
                profile.address,
                str(row["asset"]),
                to_decimal(row["size"]),
                to_decimal(row["avgPrice"]),
            )

    def timed() -> Iterator[Timed]:
        for row in generator:
            yield generator.elapsed_s, row, None

    return timed()


class Playback:
    """Hands rows to `emit` in batches, as they fall due."""

    def __init__(
        self,
        rows: Iterator[Timed],
        speed: float,
        emit: Emit,
    ) -> None:
        self._rows = rows
        self._speed = speed
        self._emit = emit
        self.emitted = 0
        self.finished = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first: float | None = None
        batch: list[tuple[Mapping[str, Any], LeaderTrade | None]] = []
        for at, row, trade in self._rows:
            if first is None:
                first = at
            wait = started + (at - first) / self._speed - loop.time()
            if wait > 0 or len(batch) >= _BATCH:
                self._flush(batch)
                batch = []
                await asyncio.sleep(max(wait, 0))
            batch.append((row, trade))
        self._flush(batch)
        self.finished = True

    def _flush(self, batch: list[tuple[Mapping[str, Any], LeaderTrade | None]]) -> None:
        if batch:
            self._emit(batch)
            self.emitted += len(batch)
