"""Per-market trading rules: tick size, minimum sizes, neg-risk and fees (R19).

Read from `GET /clob-markets/{condition_id}` (one call: `mts`, `mos`, `nr`, `fd`, tokens), or
from `/tick-size` + `/neg-risk` when the market is not known. Cached for `ttl_s`, and never
forever: a `tick_size_change` event updates the tick in place, and a tick rejection from the
venue drops the entry so the next order reads it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import structlog

from polycopy.domain.money import BadNumber, to_decimal
from polycopy.domain.settings import DEFAULT_MARKET, MarketRules
from polycopy.execution.amounts import VALID_TICKS
from polycopy.execution.book_walk import NO_FEES, FeeSchedule
from polycopy.execution.clob_http import ClobHttp
from polycopy.execution.errors import PermanentVenueError, RejectKind

log = structlog.get_logger("polycopy.markets")

MARKETABLE_MIN_NOTIONAL = Decimal("1")  # $1 for FAK/FOK (SPEC §2.3 step 7)
SIZE_STEP = Decimal("0.01")  # shares given in a marketable order: 2 decimals


@dataclass(frozen=True, slots=True)
class MarketInfo:
    asset_id: str
    condition_id: str
    tick_size: Decimal
    neg_risk: bool
    min_order_size: Decimal = Decimal("5")  # shares, for resting orders (polycopy places none)
    min_order_notional: Decimal = MARKETABLE_MIN_NOTIONAL
    fees: FeeSchedule = NO_FEES
    fetched_at: float = 0.0  # monotonic seconds

    def rules(self) -> MarketRules:
        return MarketRules(
            tick_size=self.tick_size,
            size_step=SIZE_STEP,
            min_order_notional=self.min_order_notional,
        )


def _tick(value: object) -> Decimal:
    tick = to_decimal(value)
    if tick not in VALID_TICKS:
        raise PermanentVenueError(f"unsupported tick size {tick}", kind=RejectKind.TICK)
    return tick.normalize()


def parse_clob_market(payload: Mapping[str, Any], asset_id: str, condition_id: str) -> MarketInfo:
    """Read `GET /clob-markets/{condition_id}` (compact V2 keys)."""
    try:
        fd = payload.get("fd") or {}
        fees = FeeSchedule(
            rate=to_decimal(fd.get("r", 0)),
            exponent=to_decimal(fd.get("e", 1)),
            taker_only=bool(fd.get("to", True)),
        )
        return MarketInfo(
            asset_id=asset_id,
            condition_id=condition_id,
            tick_size=_tick(payload["mts"]),
            neg_risk=bool(payload.get("nr", False)),
            min_order_size=to_decimal(payload.get("mos", 5)),
            fees=fees,
        )
    except (KeyError, BadNumber, AttributeError) as exc:
        raise PermanentVenueError(
            f"clob-markets {condition_id}: malformed ({exc})", kind=RejectKind.OTHER
        ) from exc


class MarketCatalog:
    def __init__(
        self,
        http: ClobHttp,
        *,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, MarketInfo] = {}
        self._loading: dict[str, asyncio.Future[MarketInfo]] = {}
        self.fetches = 0

    def cached(self, asset_id: str) -> MarketInfo | None:
        return self._cache.get(asset_id)

    def rules(self, asset_id: str) -> MarketRules:
        """Synchronous lookup for the sizing policy: the cached rules, else the defaults."""
        info = self._cache.get(asset_id)
        return info.rules() if info is not None else DEFAULT_MARKET

    async def get(self, asset_id: str, condition_id: str = "") -> MarketInfo:
        info = self._cache.get(asset_id)
        if info is not None and self._clock() - info.fetched_at < self._ttl_s:
            return info
        pending = self._loading.get(asset_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[MarketInfo] = asyncio.get_running_loop().create_future()
        self._loading[asset_id] = future
        try:
            info = await self._fetch(asset_id, condition_id or (info.condition_id if info else ""))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._loading.pop(asset_id, None)
        future.set_result(info)
        self._cache[asset_id] = info
        return info

    async def _fetch(self, asset_id: str, condition_id: str) -> MarketInfo:
        self.fetches += 1
        now = self._clock()
        if condition_id:
            try:
                payload = await self._http.get_json(f"/clob-markets/{condition_id}")
                info = parse_clob_market(payload, asset_id, condition_id)
                return replace(info, fetched_at=now)
            except PermanentVenueError as exc:
                log.warning("market_metadata_fallback", asset=asset_id, error=str(exc))
        tick_payload = await self._http.get_json("/tick-size", {"token_id": asset_id})
        neg_payload = await self._http.get_json("/neg-risk", {"token_id": asset_id})
        try:
            tick = _tick(tick_payload["minimum_tick_size"])
            neg_risk = bool(neg_payload.get("neg_risk", False))
        except (KeyError, BadNumber, AttributeError, TypeError) as exc:
            raise PermanentVenueError(
                f"tick-size/neg-risk for {asset_id}: malformed ({exc})", kind=RejectKind.OTHER
            ) from exc
        return MarketInfo(
            asset_id=asset_id,
            condition_id=condition_id,
            tick_size=tick,
            neg_risk=neg_risk,
            fetched_at=now,
        )

    def invalidate(self, asset_id: str) -> None:
        """Forget a market (after an 'invalid tick size' rejection): the next get reads it."""
        if self._cache.pop(asset_id, None) is not None:
            log.info("market_metadata_invalidated", asset=asset_id)

    def on_tick_size_change(self, asset_id: str, new_tick: Decimal) -> None:
        info = self._cache.get(asset_id)
        tick = _tick(new_tick)
        if info is None:
            return
        if info.tick_size != tick:
            self._cache[asset_id] = replace(info, tick_size=tick)
            log.info("tick_size_changed", asset=asset_id, old=info.tick_size, new=tick)

    def apply_event(self, event: Mapping[str, Any]) -> bool:
        """Apply a CLOB market-channel event; True when it was a `tick_size_change`."""
        if event.get("event_type") != "tick_size_change":
            return False
        asset = event.get("asset_id")
        new = event.get("new_tick_size")
        if not isinstance(asset, str) or new is None:
            return False
        self.on_tick_size_change(asset, to_decimal(new))
        return True
