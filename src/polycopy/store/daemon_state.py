"""What the daemon itself must remember across restarts, next to the ledger: the kill switch
(a halt survives a restart, R25), the day's PnL baseline for the daily loss limit, and each
leader's last exposure snapshot (so a restart knows E_u and its age before the first refresh)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from polycopy.domain.killswitch import KillSwitch, TradingState
from polycopy.store.db import Database

COMPONENT = "daemon"
MIGRATIONS = [
    [
        "CREATE TABLE daemon_state ("
        " key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE daemon_exposure ("
        " leader TEXT PRIMARY KEY, value TEXT NOT NULL, positions TEXT,"
        " refreshed_at TEXT NOT NULL)",
    ]
]


class DaemonState:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(COMPONENT, MIGRATIONS)

    def _get(self, key: str) -> Any:
        row = self.db.conn.execute(
            "SELECT value FROM daemon_state WHERE key = ?", (key,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, key: str, value: Any, now: datetime) -> None:
        sql = (
            "INSERT INTO daemon_state(key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at"
        )
        params = (key, json.dumps(value), now.isoformat())
        if self.db.conn.in_transaction:
            self.db.conn.execute(sql, params)
        else:  # a halt must outlive a power cut too (R25)
            with self.db.durable_transaction() as conn:
                conn.execute(sql, params)

    # --- kill switch --------------------------------------------------------------------------
    def kill_switch(self) -> KillSwitch:
        saved = self._get("kill_switch")
        if not saved:
            return KillSwitch()
        since = datetime.fromisoformat(saved["since"]) if saved.get("since") else None
        return KillSwitch(TradingState(saved["state"]), saved.get("reason", ""), since)

    def save_kill_switch(self, switch: KillSwitch, now: datetime) -> None:
        since = switch.since.isoformat() if switch.since else None
        self._put(
            "kill_switch",
            {"state": switch.state.value, "reason": switch.reason, "since": since},
            now,
        )

    # --- daily PnL baseline -------------------------------------------------------------------
    def pnl_baseline(self, today: date, current: Decimal, now: datetime) -> Decimal:
        """Total PnL at the start of `today` (UTC); the first call of a day sets it."""
        saved = self._get("pnl_baseline")
        if saved and saved.get("day") == today.isoformat():
            return Decimal(saved["pnl"])
        self._put("pnl_baseline", {"day": today.isoformat(), "pnl": str(current)}, now)
        return current

    # --- leader exposure ----------------------------------------------------------------------
    def save_exposure(
        self,
        leader: str,
        value: Decimal,
        positions: Mapping[str, Decimal] | None,
        refreshed_at: datetime,
    ) -> None:
        sql = (
            "INSERT INTO daemon_exposure(leader, value, positions, refreshed_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(leader) DO UPDATE SET value = excluded.value, "
            "positions = COALESCE(excluded.positions, daemon_exposure.positions), "
            "refreshed_at = excluded.refreshed_at"
        )
        held = (
            json.dumps({a: str(s) for a, s in positions.items()}) if positions is not None else None
        )
        params = (leader, str(value), held, refreshed_at.isoformat())
        if self.db.conn.in_transaction:
            self.db.conn.execute(sql, params)
        else:
            with self.db.transaction() as conn:
                conn.execute(sql, params)

    def exposures(self) -> list[tuple[str, Decimal, dict[str, Decimal] | None, datetime]]:
        rows = self.db.conn.execute(
            "SELECT leader, value, positions, refreshed_at FROM daemon_exposure ORDER BY leader"
        ).fetchall()
        out = []
        for leader, value, positions, refreshed_at in rows:
            held = {a: Decimal(s) for a, s in json.loads(positions).items()} if positions else None
            out.append((leader, Decimal(value), held, datetime.fromisoformat(refreshed_at)))
        return out
