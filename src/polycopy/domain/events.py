"""Value objects that flow through the pipeline: leader trades in, decisions out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from polycopy.domain.money import fmt
from polycopy.domain.reasons import Enforcement, Mode, Outcome, Reason
from polycopy.domain.value import value


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


IDENTITY_PRICE_STEP = Decimal("0.0001")  # the finest tick: every order price is on it
IDENTITY_SIZE_STEP = Decimal("0.000001")  # shares carry 6 decimals on chain


def trade_identity(
    leader: str,
    tx_hash: str,
    asset: str,
    side: Side,
    price: Decimal,
    size: Decimal,
    occurrence: int,
) -> str:
    """Deterministic id of one leader fill (SPEC §2.8). Equal for every source that carries it.

    Price and size are rounded half-even to `IDENTITY_PRICE_STEP` and `IDENTITY_SIZE_STEP`
    first: the feeds render one fill differently (RTDS sends floats such as `0.12`, `/activity`
    derives its price from the settled amounts, `0.12000001318105698`, and its sizes carry
    float noise); values already on those grids hash as they are. Expects bounded values (as
    the decoders return them).
    """
    price = price.quantize(IDENTITY_PRICE_STEP, rounding=ROUND_HALF_EVEN)
    size = size.quantize(IDENTITY_SIZE_STEP, rounding=ROUND_HALF_EVEN)
    text = "|".join(
        (leader, tx_hash.lower(), asset, side.value, fmt(price), fmt(size), str(occurrence))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@value
class LeaderTrade:
    """One fill of a followed wallet, normalised from any source."""

    leader: str  # lower-case proxy wallet
    asset: str  # token id
    condition_id: str
    side: Side
    price: Decimal
    size: Decimal  # shares
    timestamp: datetime  # UTC, the venue's time of the trade
    tx_hash: str
    occurrence: int = 0  # index among identical-looking fills of this wallet in one tx
    outcome: str = ""
    outcome_index: int | None = None
    source: str = ""  # rtds | rest | tape:<file>
    trade_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.trade_id:
            object.__setattr__(
                self,
                "trade_id",
                trade_identity(
                    self.leader,
                    self.tx_hash,
                    self.asset,
                    self.side,
                    self.price,
                    self.size,
                    self.occurrence,
                ),
            )

    @property
    def notional(self) -> Decimal:
        return self.size * self.price


@value
class Decision:
    """The record of what polycopy did with one leader trade (or one netting flush).

    Field names are the contract of SPEC §4.
    """

    decision_id: str
    ts: datetime
    event_ts: datetime | None
    leader: str
    leader_name: str
    asset: str
    condition_id: str
    side: Side
    leader_price: Decimal | None
    leader_size: Decimal | None
    leader_notional: Decimal | None
    mode: Mode
    enforcement: Enforcement | None
    rate: Decimal | None
    leader_exposure: Decimal | None
    budget: Decimal | None
    target_notional: Decimal | None
    exec_notional: Decimal
    exec_shares: Decimal
    exec_price: Decimal | None
    outcome: Outcome
    reasons: tuple[Reason, ...]
    attributed_exposure: Decimal
    headroom: Decimal | None
    netted_ids: tuple[str, ...] = ()
    exposure_age_s: float | None = None  # live only: how old E_u was
    config_version: str = ""

    def to_record(self) -> dict[str, Any]:
        """JSON-ready mapping: decimals as strings, absent values None, times ISO-8601 UTC."""
        ts = iso(self.ts)
        event_ts = self.event_ts
        return {
            "decision_id": self.decision_id,
            "ts": ts,
            "event_ts": (ts if event_ts == self.ts else iso(event_ts)) if event_ts else None,
            "leader": self.leader,
            "leader_name": self.leader_name,
            "asset": self.asset,
            "condition_id": self.condition_id,
            "side": self.side.value,
            "leader_price": _opt(self.leader_price),
            "leader_size": _opt(self.leader_size),
            "leader_notional": _opt(self.leader_notional),
            "mode": self.mode.value,
            "enforcement": self.enforcement.value if self.enforcement else None,
            "rate": _opt(self.rate),
            "leader_exposure": _opt(self.leader_exposure),
            "budget": _opt(self.budget),
            "target_notional": _opt(self.target_notional),
            "exec_notional": fmt(self.exec_notional),
            "exec_shares": fmt(self.exec_shares),
            "exec_price": _opt(self.exec_price),
            "outcome": self.outcome.value,
            "reasons": [r.value for r in self.reasons],
            "attributed_exposure": fmt(self.attributed_exposure),
            "headroom": _opt(self.headroom),
            "netted_ids": list(self.netted_ids),
            "exposure_age_s": self.exposure_age_s,
            "config_version": self.config_version,
        }

    def to_json(self) -> str:
        """`to_record()` as one compact JSON line, written directly: the replay's hot path.

        Equal to `json.dumps(to_record(), separators=(",", ":"))`, which a test checks. Enum
        members are `str`, so they are joined as they are.
        """
        ts = iso(self.ts)
        event_ts = self.event_ts
        event = (ts if event_ts == self.ts else iso(event_ts)) if event_ts else None
        enforcement = self.enforcement
        age = self.exposure_age_s
        return "".join(
            (
                '{"decision_id":"',
                self.decision_id,
                '","ts":"',
                ts,
                '","event_ts":',
                _q(event),
                ',"leader":"',
                self.leader,
                '","leader_name":',
                _text(self.leader_name),
                ',"asset":',
                _text(self.asset),
                ',"condition_id":',
                _text(self.condition_id),
                ',"side":"',
                self.side,
                '","leader_price":',
                _qd(self.leader_price),
                ',"leader_size":',
                _qd(self.leader_size),
                ',"leader_notional":',
                _qd(self.leader_notional),
                ',"mode":"',
                self.mode,
                '","enforcement":',
                _q(enforcement),
                ',"rate":',
                _qd(self.rate),
                ',"leader_exposure":',
                _qd(self.leader_exposure),
                ',"budget":',
                _qd(self.budget),
                ',"target_notional":',
                _qd(self.target_notional),
                ',"exec_notional":"',
                fmt(self.exec_notional),
                '","exec_shares":"',
                fmt(self.exec_shares),
                '","exec_price":',
                _qd(self.exec_price),
                ',"outcome":"',
                self.outcome,
                '","reasons":[',
                _strings(self.reasons),
                '],"attributed_exposure":"',
                fmt(self.attributed_exposure),
                '","headroom":',
                _qd(self.headroom),
                ',"netted_ids":[',
                _strings(self.netted_ids),
                '],"exposure_age_s":',
                "null" if age is None else json.dumps(age),
                ',"config_version":',
                _text(self.config_version),
                "}",
            )
        )


def _strings(items: tuple[str, ...]) -> str:
    return '"' + '","'.join(items) + '"' if items else ""


def _q(text: str | None) -> str:
    """A value known to need no escaping (ids, enum values, ISO times), quoted, or null."""
    return "null" if text is None else f'"{text}"'


def _qd(value: Decimal | None) -> str:
    return "null" if value is None else f'"{fmt(value)}"'


def _text(text: str) -> str:
    """Free text from config or the wire: escaped exactly as json.dumps escapes it."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a Z suffix and millisecond precision (`moment` is UTC)."""
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)
