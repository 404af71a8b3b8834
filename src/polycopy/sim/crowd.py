"""The other wallets of the market: nobody follows them, but their trades are there.

One of them is the maker on the other side of each taker fill of a leader (or of an order
posted to the simulator): the row RTDS `trades` carries and `/trades?takerOnly=false` shows.
At `firehose_per_s` they also trade among themselves: the RTDS firehose a client has to filter,
and rows of the Data API's trade feeds. The state keeps only their latest trades (bounded) and
no positions for them; their trades leave the books alone.
"""

from __future__ import annotations

import asyncio
import math
import random
from decimal import Decimal

from polycopy.domain.money import ONE
from polycopy.sim.settings import SimConfig
from polycopy.sim.state import BUY, SELL, ActivityFill, Market, Profile, SimState, StateListener

WALLETS = 400
TICK_S = 0.05  # the firehose's pace: it emits what is due this often
_WORDS = ("Brave", "Quiet", "Lucky", "Amber", "Rapid", "Stoic", "Giddy", "Fuzzy")
_THINGS = ("Crane", "Otter", "Ledger", "Kettle", "Comet", "Tundra", "Walrus", "Pixel")


class Crowd(StateListener):
    def __init__(self, state: SimState, config: SimConfig) -> None:
        self.state = state
        self.config = config
        self._rng = random.Random(f"crowd-{config.seed}")
        self.members: list[tuple[str, Profile]] = [self._member() for _ in range(WALLETS)]

    def fill_recorded(self, fill: ActivityFill) -> None:
        """The maker of a taker fill that happened on the simulated venue."""
        if not self.config.counterparty_rows or fill.role != "taker":
            return
        if fill.origin not in ("feed", "clob"):
            return
        wallet, profile = self._pick()
        self.state.record_other_fill(
            wallet,
            profile,
            fill.token,
            SELL if fill.side == BUY else BUY,
            fill.price,
            fill.size,
            fill.tx_hash,
            role="maker",
            origin="counterparty",
            timestamp=fill.timestamp,
        )

    async def run_firehose(self, per_second: float) -> None:
        """Trades of wallets nobody follows, `per_second` on average, until cancelled."""
        owed = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            owed += per_second * TICK_S
            count, owed = int(owed), owed - int(owed)
            markets = list(self.state.markets.values())
            if not markets:
                continue
            for _ in range(count):
                self.trade(markets[self._rng.randrange(len(markets))])

    def trade(self, market: Market) -> ActivityFill:
        """One taker trade of a member in `market`, at the token's current price (on the
        grid), with a heavy-tailed size."""
        token = market.tokens[self._rng.randrange(2)]
        tick = market.tick_size
        mark = self.state.mark(token.token_id)
        price = min(max((mark / tick).to_integral_value() * tick, tick), ONE - tick)
        size = Decimal(str(round(math.exp(self._rng.gauss(2.0, 1.2)), 2))) + Decimal("0.01")
        side = BUY if self._rng.random() < 0.6 else SELL
        wallet, profile = self._pick()
        return self.state.record_other_fill(
            wallet,
            profile,
            token,
            side,
            price,
            size,
            f"0x{self._rng.getrandbits(256):064x}",
            role="taker",
            origin="crowd",
        )

    def _pick(self) -> tuple[str, Profile]:
        return self.members[self._rng.randrange(len(self.members))]

    def _member(self) -> tuple[str, Profile]:
        wallet = f"0x{self._rng.getrandbits(160):040x}"
        pseudonym = f"{self._rng.choice(_WORDS)}-{self._rng.choice(_THINGS)}"
        return wallet, Profile(pseudonym=pseudonym)
