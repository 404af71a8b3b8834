"""The SQLite file behind the durable ledger: connection settings, integrity, schemas.

One connection, used by one writer. `journal_mode=WAL` with `synchronous=NORMAL`: every commit
survives a killed process (the WAL is written before COMMIT returns), and after a power cut the
file holds a prefix of the commits, in order — consistent, because what the daemon commits
together (a decision and the inbox mark of its trade, fills and their positions) is one
transaction, and what a lost tail held is either asked of the venue again (a sent order's fills)
or re-done (an undecided trade, whose inbox mark was lost with it). A commit that precedes an
order — the signed order, before its POST — is `durable_transaction()`: `synchronous=FULL`, on
disk when it returns (SPEC §6). `PRAGMA quick_check` at open refuses a damaged file.
Each component (ingest cursors, execution ledger, …) owns its tables and declares them with
`ensure_schema`, versioned per component so that they evolve independently.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class StoreError(Exception):
    """The ledger file cannot be used (damaged, wrong schema, not writable)."""


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # R34
        old_umask = os.umask(0o077)  # the file and its -wal/-shm siblings: owner only
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            self.conn.execute("PRAGMA journal_mode=WAL")
        finally:
            os.umask(old_umask)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=5000")
        check = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            self.conn.close()
            raise StoreError(f"{self.path}: integrity check failed: {check}")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions ("
            " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )

    def ensure_schema(self, component: str, migrations: Sequence[Sequence[str]]) -> None:
        """Apply `migrations[i]` (a list of statements) for every version above the stored one.

        Migrations are append-only: version N is `migrations[N-1]`.
        """
        row = self.conn.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ).fetchone()
        current = row[0] if row else 0
        if current > len(migrations):
            raise StoreError(
                f"{self.path}: {component} schema version {current} is newer than this "
                f"polycopy ({len(migrations)}); refusing to run"
            )
        for version in range(current + 1, len(migrations) + 1):
            with self.transaction():
                for statement in migrations[version - 1]:
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                    "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, version),
                )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error). Returns when the commit survives a
        killed process; see `durable_transaction` for a power cut."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def durable_transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction that is on disk when it returns (`synchronous=FULL`: the WAL, this
        commit and every earlier one, is fsynced): for what must outlive a power cut."""
        self.conn.execute("PRAGMA synchronous=FULL")
        try:
            with self.transaction() as conn:
                yield conn
        finally:
            self.conn.execute("PRAGMA synchronous=NORMAL")

    def pragma(self, name: str) -> object:
        return self.conn.execute(f"PRAGMA {name}").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
