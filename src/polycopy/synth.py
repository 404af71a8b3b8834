"""Seeded synthetic leader activity, shaped like the recorded tapes: small high-frequency
leaders with $3–50 median trades and a whale whose trades are orders of magnitude larger,
heavy-tailed sizes, buys and proportional sells, markets shared between leaders.

Output rows are Data API v1 `/activity` TRADE rows (camelCase), so every reader and the
simulator treat them exactly like recorded ones. Randomness comes from the seed only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

TICK = Decimal("0.01")


@dataclass(frozen=True)
class LeaderProfile:
    address: str
    name: str
    trades_per_hour: float
    median_notional: float  # USDC; sizes are log-normal around it
    sigma: float  # log-normal spread: 1.0 already gives a heavy tail
    sell_share: float  # probability that a trade reduces an open position
    start_exposure: float  # USDC held before the tape starts (for a positions snapshot)


# The design note's practical example: three small leaders and a whale ($200 bankroll).
# The addresses are the wallets of the recorded tapes in ../shared/data (two high-frequency
# bots, a volume bot and a mega-whale), so config/demo.yaml also replays those tapes.
PRACTICAL_EXAMPLE = (
    LeaderProfile(
        "0x6031b6eed1c97e853c6e0f03ad3ce3529351f96d", "leader-a", 240, 150.0, 1.0, 0.3, 6_000
    ),
    LeaderProfile(
        "0x961afce6bd9aec79c5cf09d2d4dac2b434b23361", "leader-b", 180, 250.0, 1.0, 0.3, 8_000
    ),
    LeaderProfile(
        "0xd0d6053c3c37e727402d84c14069780d360993aa", "leader-c", 150, 120.0, 0.9, 0.3, 5_000
    ),
    LeaderProfile(
        "0x09b428f7c2b469786286214aa5c90dd9015f7320", "whale", 60, 40_000.0, 1.0, 0.2, 400_000
    ),
)


@dataclass
class _Market:
    condition_id: str
    tokens: tuple[str, str]
    price: float  # of token 0; token 1 trades at 1 − price
    slug: str


class ActivityGenerator:
    """An endless, time-ordered stream of synthetic leader trades."""

    def __init__(
        self,
        seed: int,
        profiles: tuple[LeaderProfile, ...] = PRACTICAL_EXAMPLE,
        start: datetime | None = None,
        markets: int = 12,
    ) -> None:
        self._rng = random.Random(seed)
        self.profiles = profiles
        self.start = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        self.markets = [self._new_market(i) for i in range(markets)]
        # leader → token → shares held (so sells only reduce positions that exist)
        self.positions: dict[str, dict[str, Decimal]] = {p.address: {} for p in profiles}
        self._next_at = {p.address: self._gap(p) for p in profiles}
        self._clock = 0.0

    def _new_market(self, index: int) -> _Market:
        rng = self._rng
        return _Market(
            condition_id="0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64)),
            tokens=(str(rng.getrandbits(252)), str(rng.getrandbits(252))),
            price=rng.uniform(0.15, 0.85),
            slug=f"synthetic-market-{index:02d}",
        )

    def _gap(self, profile: LeaderProfile) -> float:
        return self._rng.expovariate(profile.trades_per_hour / 3600.0)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    @property
    def elapsed_s(self) -> float:
        """Seconds from `start` to the trade last returned (sub-second, unlike its timestamp)."""
        return self._clock

    def __next__(self) -> dict[str, Any]:
        address = min(self._next_at, key=lambda a: (self._next_at[a], a))
        self._clock = self._next_at[address]
        profile = next(p for p in self.profiles if p.address == address)
        self._next_at[address] = self._clock + self._gap(profile)
        return self._trade(profile, self.start + timedelta(seconds=self._clock))

    def take(self, duration_s: float) -> list[dict[str, Any]]:
        rows = []
        for row in self:
            if self._clock > duration_s:
                break
            rows.append(row)
        return rows

    def _trade(self, profile: LeaderProfile, when: datetime) -> dict[str, Any]:
        rng = self._rng
        held = self.positions[profile.address]
        open_tokens = sorted(t for t, s in held.items() if s > 0)
        selling = bool(open_tokens) and rng.random() < profile.sell_share
        if selling:
            token = rng.choice(open_tokens)
            market = next(m for m in self.markets if token in m.tokens)
        else:
            market = rng.choice(self.markets)
            token = market.tokens[rng.randrange(2)]
        self._drift(market)
        index = market.tokens.index(token)
        raw_price = market.price if index == 0 else 1 - market.price
        price = _on_grid(raw_price + rng.uniform(-0.01, 0.01))
        if selling:
            fraction = Decimal(str(round(rng.choice((0.25, 0.5, 1.0, rng.uniform(0.1, 1.0))), 4)))
            size = _shares(held[token] * fraction)
            if size <= 0:
                size = held[token]
            held[token] -= size
        else:
            notional = profile.median_notional * math.exp(rng.gauss(0.0, profile.sigma))
            size = _shares(Decimal(str(round(notional, 6))) / price)
            if size <= 0:
                size = Decimal("1")
            held[token] = held.get(token, Decimal(0)) + size
        return {
            "proxyWallet": profile.address,
            "timestamp": int(when.timestamp()),
            "conditionId": market.condition_id,
            "type": "TRADE",
            "size": size,
            "usdcSize": (size * price).quantize(Decimal("0.000001")),
            "transactionHash": "0x" + f"{rng.getrandbits(256):064x}",
            "price": price,
            "asset": token,
            "side": "SELL" if selling else "BUY",
            "outcomeIndex": index,
            "title": market.slug.replace("-", " ").title(),
            "slug": market.slug,
            "eventSlug": market.slug,
            "outcome": "Yes" if index == 0 else "No",
            "name": profile.name,
            "pseudonym": profile.name,
        }

    def _drift(self, market: _Market) -> None:
        market.price = min(0.95, max(0.05, market.price + self._rng.gauss(0.0, 0.01)))

    def positions_snapshot(self, profile: LeaderProfile) -> list[dict[str, Any]]:
        """A `/positions` response giving the leader `start_exposure` spread over markets."""
        rng = random.Random(f"{profile.address}-positions")
        rows = []
        chosen = rng.sample(self.markets, k=min(4, len(self.markets)))
        for market in chosen:
            price = _on_grid(market.price)
            value = Decimal(str(profile.start_exposure / len(chosen)))
            size = _shares(value / price)
            self.positions[profile.address][market.tokens[0]] = size
            rows.append(
                {
                    "proxyWallet": profile.address,
                    "asset": market.tokens[0],
                    "conditionId": market.condition_id,
                    "size": size,
                    "avgPrice": price,
                    "currentValue": (size * price).quantize(Decimal("0.01")),
                    "curPrice": price,
                    "redeemable": False,
                    "outcome": "Yes",
                    "outcomeIndex": 0,
                }
            )
        return rows


def _on_grid(price: float) -> Decimal:
    clipped = min(0.95, max(0.03, price))
    return Decimal(str(clipped)).quantize(TICK, rounding=ROUND_FLOOR)


def _shares(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_FLOOR)


def to_json_row(row: dict[str, Any]) -> dict[str, Any]:
    """Decimals as JSON numbers, as the real API sends them. Every value here has at most 15
    significant digits, so the float's shortest repr is exactly the decimal text."""
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items()}
