"""The durable inbox: exactly-once hand-over of leader trades, and per-leader REST cursors.

A leader trade is *handed on* when its row, keyed by its identity `trade_id` (SPEC §2.8), is
committed here; only then is it put on the worker's queue. A second arrival of the same trade
(the other RTDS stream, a REST page, an overlap window, a replay after a restart) finds the
row and is dropped as a duplicate. Rows stay *pending* until the sizing worker has stored its
decision and calls `mark_processed` (inside its own transaction, ideally); at start-up
`pending()` returns what was handed on but never decided, oldest first, to enqueue again.

Each followed leader has a cursor `(last_ts, ids at last_ts, follow_since, checked_ts)`:
`last_ts` is the newest venue timestamp of a trade that a REST page has shown and committed,
advanced in the same transaction as that page's rows, never past what was fetched and never to
the wall clock. `checked_ts` is how far a complete REST pass has looked (the pass's start,
less the Data API's visibility lag): a quiet leader's position moves forward by it, not by
invented trades. `follow_since` is when polycopy started to follow the leader; trades from
before it are history and never copied. A leader that stops being followed loses its cursor
(`unfollow`), so following it again starts from then, like a first start.

Commits are grouped (one per RTDS frame batch or REST page) to take thousands of trades per
second. A bounded in-memory set of
recently committed ids answers hot duplicates without touching the database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from polycopy.domain.events import LeaderTrade, Side
from polycopy.store.db import Database

COMPONENT = "ingest"
RECENT_IDS = 100_000  # ids of recent commits kept in memory
RETENTION_S = 7 * 86_400  # processed rows kept this long (venue time) for dedup
DEAD_LETTER_KEEP = 10_000  # newest dead letters kept
DEAD_LETTER_BUFFER = 1_000  # dead letters waiting for the next commit
DEAD_LETTER_RAW_MAX = 4_096  # characters of a raw payload kept

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE ingest_inbox (
            seq INTEGER PRIMARY KEY,
            trade_id TEXT NOT NULL UNIQUE,
            leader TEXT NOT NULL,
            ts INTEGER NOT NULL,
            event_time TEXT NOT NULL,
            asset TEXT NOT NULL,
            condition_id TEXT NOT NULL,
            side TEXT NOT NULL,
            price TEXT NOT NULL,
            size TEXT NOT NULL,
            tx_hash TEXT NOT NULL,
            occurrence INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            outcome_index INTEGER,
            source TEXT NOT NULL,
            received_at REAL NOT NULL,
            processed_at REAL
        )""",
        "CREATE INDEX ingest_inbox_pending ON ingest_inbox(ts, seq) WHERE processed_at IS NULL",
        "CREATE INDEX ingest_inbox_ts ON ingest_inbox(ts)",
        """CREATE TABLE ingest_cursor (
            leader TEXT PRIMARY KEY,
            last_ts INTEGER NOT NULL,
            ids_at_last_ts TEXT NOT NULL,
            follow_since INTEGER NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE ingest_dead_letter (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            raw TEXT NOT NULL
        )""",
    ],
    ["ALTER TABLE ingest_cursor ADD COLUMN checked_ts INTEGER NOT NULL DEFAULT 0"],
]

_INSERT = (
    "INSERT OR IGNORE INTO ingest_inbox (trade_id, leader, ts, event_time, asset, condition_id,"
    " side, price, size, tx_hash, occurrence, outcome, outcome_index, source, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_PENDING = (
    "SELECT trade_id, leader, event_time, asset, condition_id, side, price, size, tx_hash,"
    " occurrence, outcome, outcome_index, source FROM ingest_inbox"
    " WHERE processed_at IS NULL ORDER BY ts, seq"
)


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far REST has been read for one leader (venue time, epoch seconds)."""

    leader: str
    last_ts: int  # newest trade committed from REST
    ids_at_last_ts: frozenset[str]
    follow_since: int
    checked_ts: int = 0  # a complete REST pass found every trade up to here

    @property
    def position(self) -> int:
        """Where the next REST window is measured from (before its overlap)."""
        return max(self.last_ts, self.checked_ts)

    def advanced(self, ts: int, ids: Iterable[str]) -> Cursor:
        """The cursor after a committed page whose newest trade is at `ts` (never backwards)."""
        if ts > self.last_ts:
            return replace(self, last_ts=ts, ids_at_last_ts=frozenset(ids))
        if ts == self.last_ts:
            return replace(self, ids_at_last_ts=self.ids_at_last_ts | frozenset(ids))
        return self

    def checked(self, ts: int) -> Cursor:
        """The cursor after a complete REST pass that has seen every trade up to `ts`."""
        return replace(self, checked_ts=ts) if ts > self.checked_ts else self


def epoch_seconds(trade: LeaderTrade) -> int:
    """The trade's venue time in whole seconds (the Data API's unit)."""
    return int(trade.timestamp.timestamp())


class Inbox:
    def __init__(self, db: Database, wall: Callable[[], float] = time.time) -> None:
        db.ensure_schema(COMPONENT, MIGRATIONS)
        self.db = db
        self._wall = wall
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._cursors: dict[str, Cursor] = {}
        self._dead: deque[tuple[float, str, str, str, str]] = deque(maxlen=DEAD_LETTER_BUFFER)
        for row in db.conn.execute(
            "SELECT leader, last_ts, ids_at_last_ts, follow_since, checked_ts FROM ingest_cursor"
        ):
            self._cursors[row[0]] = Cursor(
                row[0], row[1], frozenset(json.loads(row[2])), row[3], row[4]
            )

    # --- dedup and hand-over -------------------------------------------------------------
    def is_recent(self, trade_id: str) -> bool:
        """True when this process committed (or saw committed) the id lately: a duplicate."""
        return trade_id in self._recent

    def commit(
        self,
        trades: Sequence[LeaderTrade],
        cursors: Mapping[str, tuple[int, Iterable[str]]] | None = None,
    ) -> list[LeaderTrade]:
        """Commit `trades` and advance `cursors` (leader → (ts, ids at ts)) in one transaction.

        Only cursors that exist (see `follow`) advance.

        Returns the trades that were not in the inbox before, in the given order: these, and
        only these, are now handed on. Duplicates (in the inbox, or twice in `trades`) are
        left out. When the call returns, the rows and cursors are durable.
        """
        fresh = [t for t in trades if t.trade_id not in self._recent]
        updates = {
            leader: self._cursors[leader].advanced(ts, ids)
            for leader, (ts, ids) in (cursors or {}).items()
            if leader in self._cursors  # a leader unfollowed meanwhile keeps no cursor
        }
        updates = {k: v for k, v in updates.items() if v != self._cursors.get(k)}
        if not fresh and not updates and not self._dead:
            return []
        now = self._wall()
        new: list[LeaderTrade] = []
        with self.db.transaction() as conn:
            for trade in fresh:
                cursor = conn.execute(_INSERT, _row(trade, now))
                if cursor.rowcount == 1:
                    new.append(trade)
            for cursor_row in updates.values():
                _write_cursor(conn, cursor_row, now)
            self._flush_dead(conn)
        self._cursors.update(updates)
        for trade in trades:
            self._remember(trade.trade_id)
        return new

    def _remember(self, trade_id: str) -> None:
        recent = self._recent
        if trade_id in recent:
            recent.move_to_end(trade_id)
            return
        recent[trade_id] = None
        if len(recent) > RECENT_IDS:
            recent.popitem(last=False)

    def contains(self, trade_id: str) -> bool:
        if trade_id in self._recent:
            return True
        row = self.db.conn.execute(
            "SELECT 1 FROM ingest_inbox WHERE trade_id = ?", (trade_id,)
        ).fetchone()
        return row is not None

    # --- the worker's side ---------------------------------------------------------------
    def mark_processed(self, trade_ids: Iterable[str], processed_at: float | None = None) -> int:
        """Record that the worker's decisions for these trades are stored.

        Runs inside the caller's open transaction when there is one (so that the decision and
        this mark commit together), else in its own. Returns how many rows changed.
        """
        at = self._wall() if processed_at is None else processed_at
        params = [(at, trade_id) for trade_id in trade_ids]
        sql = "UPDATE ingest_inbox SET processed_at = ? WHERE trade_id = ? AND processed_at IS NULL"
        conn = self.db.conn
        if conn.in_transaction:
            return _changes(conn, sql, params)
        with self.db.transaction() as tx:
            return _changes(tx, sql, params)

    def pending(self, leaders: Container[str] | None = None) -> list[LeaderTrade]:
        """Handed on but not processed, oldest (venue time) first; only `leaders` if given."""
        rows = self.db.conn.execute(_SELECT_PENDING).fetchall()
        trades = [_trade(row) for row in rows]
        if leaders is None:
            return trades
        return [t for t in trades if t.leader in leaders]

    def pending_count(self) -> int:
        row = self.db.conn.execute(
            "SELECT count(*) FROM ingest_inbox WHERE processed_at IS NULL"
        ).fetchone()
        return int(row[0])

    # --- cursors -------------------------------------------------------------------------
    def cursor(self, leader: str) -> Cursor | None:
        return self._cursors.get(leader)

    def cursor_or_new(self, leader: str, now_ts: int) -> Cursor:
        return self._cursors.get(leader) or Cursor(leader, now_ts, frozenset(), now_ts)

    def follow(self, leader: str, now_ts: int, *, restart: bool = False) -> Cursor:
        """Make sure `leader` has a cursor; a new one starts at `now_ts` (no history copied).

        `restart=True` replaces an existing cursor too: a leader added by a reload is followed
        from now on, not from whenever it was followed before.
        """
        return self.follow_many([leader], now_ts, restart=restart)[leader]

    def follow_many(
        self, leaders: Iterable[str], now_ts: int, *, restart: bool = False
    ) -> dict[str, Cursor]:
        """`follow` for several leaders, new cursors written in one transaction."""
        result: dict[str, Cursor] = {}
        created: list[Cursor] = []
        for leader in leaders:
            existing = self._cursors.get(leader)
            if existing is not None and not restart:
                result[leader] = existing
            else:
                result[leader] = cursor = Cursor(leader, now_ts, frozenset(), now_ts)
                created.append(cursor)
        if created:
            now = self._wall()
            with self.db.transaction() as conn:
                for cursor in created:
                    _write_cursor(conn, cursor, now)
            self._cursors.update((c.leader, c) for c in created)
        return result

    def mark_checked(self, leader: str, ts: int) -> None:
        """A complete REST pass saw every trade of `leader` up to `ts`; durable on return.

        Call it after the pass's pages are handed on. No-op for a leader not followed (its
        cursor gone meanwhile) and when `ts` is not ahead of the cursor's `checked_ts`.
        """
        cursor = self._cursors.get(leader)
        if cursor is None:
            return
        moved = cursor.checked(ts)
        if moved is cursor:
            return
        with self.db.transaction() as conn:
            _write_cursor(conn, moved, self._wall())
        self._cursors[leader] = moved

    def unfollow(self, leaders: Iterable[str]) -> int:
        """Stop following `leaders`: forget their cursors, so that following one again starts
        from then (no history copied), and retire their pending trades (never decided: the
        leader is not followed). Returns how many pending trades were retired."""
        gone = sorted(set(leaders))
        if not gone:
            return 0
        now = self._wall()
        with self.db.transaction() as conn:
            retired = 0
            for leader in gone:
                conn.execute("DELETE FROM ingest_cursor WHERE leader = ?", (leader,))
                retired += conn.execute(
                    "UPDATE ingest_inbox SET processed_at = ?"
                    " WHERE leader = ? AND processed_at IS NULL",
                    (now, leader),
                ).rowcount
        for leader in gone:
            self._cursors.pop(leader, None)
        return int(retired)

    def followed(self) -> frozenset[str]:
        """Leaders with a cursor: those followed when this inbox last changed."""
        return frozenset(self._cursors)

    # --- dead letters and housekeeping ---------------------------------------------------
    def dead_letter(self, source: str, reason: str, detail: str, raw: str | bytes) -> None:
        """Keep a rejected payload for inspection; written with the next commit or `flush`.

        The buffer is bounded: under a storm of bad frames the oldest unsaved ones go first.
        """
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        self._dead.append((self._wall(), source, reason, detail[:500], text[:DEAD_LETTER_RAW_MAX]))

    def flush(self) -> None:
        """Write buffered dead letters now."""
        if self._dead:
            with self.db.transaction() as conn:
                self._flush_dead(conn)

    def _flush_dead(self, conn: sqlite3.Connection) -> None:
        if self._dead:
            conn.executemany(
                "INSERT INTO ingest_dead_letter (received_at, source, reason, detail, raw)"
                " VALUES (?, ?, ?, ?, ?)",
                list(self._dead),
            )
            self._dead.clear()

    def prune(self, now_ts: int) -> int:
        """Forget processed rows older than the retention and the oldest dead letters."""
        with self.db.transaction() as conn:
            removed = conn.execute(
                "DELETE FROM ingest_inbox WHERE processed_at IS NOT NULL AND ts < ?",
                (now_ts - RETENTION_S,),
            ).rowcount
            conn.execute(
                "DELETE FROM ingest_dead_letter WHERE id <= "
                "(SELECT max(id) FROM ingest_dead_letter) - ?",
                (DEAD_LETTER_KEEP,),
            )
        return int(removed)

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str, str]]:
        """(source, reason, detail, raw) of the newest dead letters, newest first."""
        rows = self.db.conn.execute(
            "SELECT source, reason, detail, raw FROM ingest_dead_letter ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]


# --- rows -----------------------------------------------------------------------------------
def _row(trade: LeaderTrade, now: float) -> tuple[object, ...]:
    return (
        trade.trade_id,
        trade.leader,
        epoch_seconds(trade),
        trade.timestamp.isoformat(),
        trade.asset,
        trade.condition_id,
        trade.side.value,
        str(trade.price),
        str(trade.size),
        trade.tx_hash,
        trade.occurrence,
        trade.outcome,
        trade.outcome_index,
        trade.source,
        now,
    )


def _trade(row: Sequence[object]) -> LeaderTrade:
    (trade_id, leader, event_time, asset, condition, side, price, size, tx, occurrence,
     outcome, outcome_index, source) = row  # fmt: skip
    return LeaderTrade(
        leader=str(leader),
        asset=str(asset),
        condition_id=str(condition),
        side=Side(str(side)),
        price=Decimal(str(price)),
        size=Decimal(str(size)),
        timestamp=datetime.fromisoformat(str(event_time)),
        tx_hash=str(tx),
        occurrence=int(str(occurrence)),
        outcome=str(outcome),
        outcome_index=None if outcome_index is None else int(str(outcome_index)),
        source=str(source),
        trade_id=str(trade_id),
    )


def _write_cursor(conn: sqlite3.Connection, cursor: Cursor, now: float) -> None:
    conn.execute(
        "INSERT INTO ingest_cursor (leader, last_ts, ids_at_last_ts, follow_since, checked_ts,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(leader) DO UPDATE SET"
        " last_ts = excluded.last_ts, ids_at_last_ts = excluded.ids_at_last_ts,"
        " follow_since = excluded.follow_since, checked_ts = excluded.checked_ts,"
        " updated_at = excluded.updated_at",
        (
            cursor.leader,
            cursor.last_ts,
            json.dumps(sorted(cursor.ids_at_last_ts)),
            cursor.follow_since,
            cursor.checked_ts,
            now,
        ),
    )


def _changes(conn: sqlite3.Connection, sql: str, params: list[tuple[float, str]]) -> int:
    before = conn.total_changes
    conn.executemany(sql, params)
    return conn.total_changes - before
