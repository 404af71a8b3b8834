"""Fixtures for the ingest unit tests: real recorded payloads from ../shared/data."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
WHALE_FILE = "activity/sellersja01__polybotanalysis__trades_24h.json"
WHALE = "0xd0d6053c3c37e727402d84c14069780d360993aa"


def shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"recorded data not available: {path}")
    return path


def load_rows(relative: str) -> list[dict[str, Any]]:
    body = json.loads(shared(relative).read_text(encoding="utf-8"), parse_float=Decimal)
    rows = body["data"] if isinstance(body, dict) else body
    assert isinstance(rows, list)
    return rows


@pytest.fixture(scope="session")
def whale_rows() -> list[dict[str, Any]]:
    """3,500 real `/activity` rows of one wallet, oldest first."""
    return list(reversed(load_rows(WHALE_FILE)))


def rtds_frame(row: dict[str, Any], kind: str = "trades", **envelope: Any) -> str:
    """A real-shaped RTDS frame around an `/activity` row (checksum-cased wallet, floats)."""
    payload = {k: v for k, v in row.items() if k not in ("type", "usdcSize")}
    wallet = str(payload["proxyWallet"])
    payload["proxyWallet"] = "0x" + "".join(
        c.upper() if i % 3 == 0 else c for i, c in enumerate(wallet[2:])
    )
    message = {
        "connection_id": "gXseIO-NQWeIKEhJwA==",
        "payload": payload,
        "timestamp": int(row["timestamp"]) * 1000 + 53,
        "topic": "activity",
        "type": kind,
        **envelope,
    }
    return json.dumps(message, default=_number)


def _number(value: Any) -> float:
    # the wire carries JSON numbers; these came from JSON numbers, so repr round-trips
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
