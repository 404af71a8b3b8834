"""Knobs of the simulated Polymarket. Defaults follow the reference's measured production
behaviour; `SimConfig.instant()` gives the zero-lag variant that tests use."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

# Measured against production (reference §2.1, §1.7): RTDS `orders_matched` ≈ 2 s after the
# match, `trades` ≈ 0.3 s later; the Data API shows a fill ≈ 5 s after the match.
RTDS_LAG_S = 2.0
RTDS_TRADES_EXTRA_LAG_S = 0.3
DATA_API_LAG_S = 5.0
DEFAULT_PORT = 8765
SELL_MINIMUMS = ("none", "notional", "shares")


@dataclass(frozen=True, slots=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    seed: int = 0  # every random choice of the simulator derives from it

    # leader activity
    tapes: tuple[Path, ...] = ()
    generate_seed: int | None = None
    generator_markets: int = 12
    speed: float = 1.0  # tape gaps are divided by it
    paused: bool = False  # wait for POST /_sim/start (or SimServer.start_playback)

    # visibility lags
    rtds_lag_s: float = RTDS_LAG_S
    rtds_trades_extra_lag_s: float = RTDS_TRADES_EXTRA_LAG_S
    data_api_lag_s: float = DATA_API_LAG_S

    # realism of the RTDS firehose
    firehose_per_s: float = 0.0  # trades of other wallets per second
    counterparty_rows: bool = True  # `trades` also carries the maker row of each leader taker fill
    maker_share: float = 0.0  # share of leader fills made as maker (only on `trades`)
    rtds_pong: str = ""  # the reference: the RTDS server answers PING with an empty frame

    # CLOB
    book_depth: int = 10
    default_collateral: Decimal = Decimal(10_000)  # pUSD of an account nobody funded
    auth_skew_s: float = 30.0
    order_amounts_in_base_units: bool = False  # POST /order makingAmount as "5000000", not "5"
    # The venue's minimum for a marketable (FAK/FOK) order is documented for BUYs only: $1 of
    # pUSD offered (reference §3.4, community reports). What it asks of a marketable SELL is
    # unknown, so it is a choice: "none" (the default: no minimum), "notional" ($1 at the
    # order's price, polycopy's own assumption in SPEC §2.3) or "shares" (the market's
    # `min_order_size`, as for limit orders).
    marketable_sell_minimum: str = "none"
    heartbeat_timeout_s: float = 10.0

    # permessage-deflate costs more CPU per frame than everything else the simulator does for
    # it; off unless a test wants to see compressed frames
    ws_compression: bool = False

    # limits that keep a long run's memory flat
    ws_queue_frames: int = 100_000  # per connection; a slower reader is closed with 1013
    request_log_size: int = 200_000
    other_fills_kept: int = 10_000  # other wallets' latest fills the Data API can show

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"the simulator binds to loopback only, not {self.host}")
        if self.speed <= 0:
            raise ValueError("speed must be above 0")
        if self.marketable_sell_minimum not in SELL_MINIMUMS:
            raise ValueError(
                f"marketable_sell_minimum: expected one of {SELL_MINIMUMS}, "
                f"got {self.marketable_sell_minimum!r}"
            )
        if self.tapes and self.generate_seed is not None:
            raise ValueError("use a tape or a generator, not both")

    @classmethod
    def instant(cls, **overrides: Any) -> SimConfig:
        """No visibility lags: what tests want unless they test the lags themselves."""
        base: dict[str, Any] = {
            "rtds_lag_s": 0.0,
            "rtds_trades_extra_lag_s": 0.0,
            "data_api_lag_s": 0.0,
        }
        return cls(**{**base, **overrides})

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)
