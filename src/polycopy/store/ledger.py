"""The durable execution ledger (SPEC §6, R1–R9): decisions, order intents, fills, attributed
positions, realised PnL per leader, and the reservations that open BUY intents hold.

One writer: the daemon calls it from a single task. Every write that precedes an order is its
own `BEGIN IMMEDIATE … COMMIT` (never a deferred batch): `begin_intent`, then
`record_submission` with `synchronous=FULL`, whose WAL fsync also makes the intent durable —
both are on disk before the order leaves. Decisions that need no order
are queued and group-committed (`flush`, or the next durable write).

`settle` is the one place that applies fills: in a single transaction it records the fills
(idempotent by venue trade id), moves the attributed position and realised PnL, sets the
intent's state and writes the decision record. A crash before it leaves the venue as the
source of truth; reconciliation asks it again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from polycopy.domain.events import Decision, Side, iso
from polycopy.domain.ledger import AttributedBook
from polycopy.domain.money import ZERO, fmt
from polycopy.domain.reasons import Enforcement, Mode, Reason
from polycopy.domain.sizing import DecisionContext, OrderPlan
from polycopy.execution.book_walk import FeeSchedule
from polycopy.execution.errors import InvariantError
from polycopy.execution.port import (
    ExecutionReport,
    OrderIntent,
    SignedSubmission,
    VenueFill,
    intent_id_for,
)
from polycopy.execution.states import DUST_SHARES, FINAL_STATES, OrderStatus, can_transition
from polycopy.store.db import Database, StoreError

log = structlog.get_logger("polycopy.ledger")

COMPONENT = "ledger"
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE ledger_decisions (
            decision_id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            leader TEXT NOT NULL,
            asset TEXT NOT NULL,
            side TEXT NOT NULL,
            outcome TEXT NOT NULL,
            reasons TEXT NOT NULL,
            record TEXT NOT NULL)""",
        "CREATE INDEX ledger_decisions_leader ON ledger_decisions(leader, ts)",
        """CREATE TABLE ledger_intents (
            intent_id TEXT PRIMARY KEY,
            decision_id TEXT NOT NULL UNIQUE,
            leader TEXT NOT NULL,
            asset TEXT NOT NULL,
            condition_id TEXT NOT NULL,
            side TEXT NOT NULL,
            order_type TEXT NOT NULL,
            notional TEXT NOT NULL,
            shares TEXT NOT NULL,
            limit_price TEXT NOT NULL,
            plan TEXT NOT NULL,
            status TEXT NOT NULL,
            order_hash TEXT UNIQUE,
            signed_order TEXT,
            signed_at_ms INTEGER,
            filled_shares TEXT NOT NULL DEFAULT '0',
            filled_notional TEXT NOT NULL DEFAULT '0',
            fees TEXT NOT NULL DEFAULT '0',
            detail TEXT NOT NULL DEFAULT '',
            lookups INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE INDEX ledger_intents_status ON ledger_intents(status)",
        """CREATE TABLE ledger_fills (
            venue_trade_id TEXT NOT NULL,
            order_hash TEXT NOT NULL,
            intent_id TEXT NOT NULL REFERENCES ledger_intents(intent_id),
            leader TEXT NOT NULL,
            asset TEXT NOT NULL,
            side TEXT NOT NULL,
            price TEXT NOT NULL,
            shares TEXT NOT NULL,
            fee TEXT NOT NULL,
            ts REAL NOT NULL,
            recorded_at REAL NOT NULL,
            UNIQUE (venue_trade_id, order_hash))""",
        "CREATE INDEX ledger_fills_intent ON ledger_fills(intent_id)",
        """CREATE TABLE ledger_positions (
            leader TEXT NOT NULL,
            asset TEXT NOT NULL,
            shares TEXT NOT NULL,
            cost TEXT NOT NULL,
            PRIMARY KEY (leader, asset))""",
        """CREATE TABLE ledger_pnl (
            leader TEXT PRIMARY KEY,
            realized TEXT NOT NULL,
            fees TEXT NOT NULL)""",
        "CREATE TABLE ledger_marks (asset TEXT PRIMARY KEY, price TEXT NOT NULL, ts REAL NOT NULL)",
    ],
    [
        # the market's fee schedule when the order was signed (fills found after a restart)
        "ALTER TABLE ledger_intents ADD COLUMN fee_schedule TEXT",
        # the venue's id of the order, only when it differs from our hash
        "ALTER TABLE ledger_intents ADD COLUMN venue_order_id TEXT",
    ],
    [
        # positions closed by their market's resolution (payout 1 or 0 per share)
        """CREATE TABLE ledger_settlements (
            leader TEXT NOT NULL,
            asset TEXT NOT NULL,
            shares TEXT NOT NULL,
            payout TEXT NOT NULL,
            realized TEXT NOT NULL,
            ts REAL NOT NULL)""",
    ],
]

OPEN_STATES = tuple(s.value for s in OrderStatus if s not in FINAL_STATES)
_UNSENT = frozenset({OrderStatus.NEW, OrderStatus.ABANDONED, OrderStatus.REJECTED})


def ledger_path(state_dir: Path | str, mode: str) -> Path:
    """Paper and live keep separate files (R23)."""
    return Path(state_dir) / f"polycopy-{mode}.sqlite3"


@dataclass(frozen=True, slots=True)
class Position:
    leader: str
    asset: str
    shares: Decimal
    cost: Decimal


@dataclass(frozen=True, slots=True)
class Settlement:
    leader: str
    asset: str
    shares: Decimal
    payout: Decimal  # per share
    realized: Decimal


@dataclass(frozen=True, slots=True)
class LeaderPnl:
    leader: str
    realized: Decimal  # Σ sell proceeds − cost of the shares sold (before fees)
    fees: Decimal  # taker fees paid
    cost: Decimal  # cost basis of the shares still held
    value: Decimal  # Σ shares × mark (cost where no mark is known)

    @property
    def unrealized(self) -> Decimal:
        return self.value - self.cost

    @property
    def net(self) -> Decimal:
        return self.realized - self.fees + self.unrealized


@dataclass(frozen=True, slots=True)
class SettleResult:
    intent: OrderIntent
    applied: tuple[VenueFill, ...]  # fills newly recorded
    duplicates: int  # exact replays ignored
    conflicts: int  # same trade id, different data: WARN, not applied
    overfills: int  # beyond the order's size + dust: alert, not applied


class Ledger:
    def __init__(
        self,
        db: Database,
        mode: str,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 512,
    ) -> None:
        self.db = db
        self.mode = mode
        self._clock = clock
        self._batch_size = batch_size
        self._pending: list[tuple[Any, ...]] = []
        self._pending_ids: set[str] = set()
        # settles of paper intents, written by the next group commit (`settle(deferred=True)`)
        self._deferred: list[Callable[[sqlite3.Connection], object]] = []
        self._marks: dict[str, tuple[str, float]] = {}
        self.alerts = 0  # conflicting replays and overfills seen (R7)
        db.ensure_schema(COMPONENT, MIGRATIONS)
        row = db.conn.execute("SELECT value FROM ledger_meta WHERE key = 'mode'").fetchone()
        if row is None:
            with db.transaction() as conn:
                conn.execute("INSERT INTO ledger_meta(key, value) VALUES ('mode', ?)", (mode,))
        elif row[0] != mode:
            raise StoreError(
                f"{db.path}: this is a {row[0]} ledger; refusing to use it in {mode} mode"
            )

    @classmethod
    def open(cls, state_dir: Path | str, mode: str, **kwargs: Any) -> Ledger:
        return cls(Database(ledger_path(state_dir, mode)), mode, **kwargs)

    @property
    def path(self) -> Path:
        return self.db.path

    def close(self) -> None:
        self.flush()
        self.db.close()

    # --- decisions ------------------------------------------------------------------------
    def record_decision(self, decision: Decision) -> None:
        """Queue a decision that needs no order; written at the next flush (group commit)."""
        self._pending.append(_decision_row(decision))
        self._pending_ids.add(decision.decision_id)
        if len(self._pending) >= self._batch_size:
            self.flush()

    def flush(self, also: Callable[[], object] | None = None) -> None:
        """Write queued decisions and marks in one transaction; `also` runs inside it (the
        daemon marks the trades these decisions answer as processed, atomically)."""
        if not self._pending and not self._marks and not self._deferred and also is None:
            return
        with self.db.transaction() as conn:
            self._write_pending(conn)
            if also is not None:
                also()

    def _write_pending(self, conn: sqlite3.Connection) -> None:
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            for write in deferred:
                write(conn)
        if self._pending:
            conn.executemany(
                "INSERT OR IGNORE INTO ledger_decisions"
                "(decision_id, ts, leader, asset, side, outcome, reasons, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._pending,
            )
            self._pending.clear()
        self._pending_ids.clear()
        if self._marks:
            conn.executemany(
                "INSERT INTO ledger_marks(asset, price, ts) VALUES (?, ?, ?) "
                "ON CONFLICT(asset) DO UPDATE SET price = excluded.price, ts = excluded.ts",
                [(asset, price, ts) for asset, (price, ts) in self._marks.items()],
            )
            self._marks.clear()

    def _settle_deferred(self) -> None:
        """Reads see every settle, deferred ones included (they are written first)."""
        if self._deferred:
            self.flush()

    def has_decision(self, decision_id: str) -> bool:
        """Whether a decision with this id is stored or queued. Unlike `decision`, it commits
        nothing: a cheap look-up the sizing worker makes for every trade."""
        if decision_id in self._pending_ids:
            return True
        row = self.db.conn.execute(
            "SELECT 1 FROM ledger_decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return row is not None

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        self.flush()
        row = self.db.conn.execute(
            "SELECT record FROM ledger_decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def decisions(self) -> Iterator[dict[str, Any]]:
        self.flush()
        for (record,) in self.db.conn.execute(
            "SELECT record FROM ledger_decisions ORDER BY ts, decision_id"
        ):
            yield json.loads(record)

    def set_mark(self, asset: str, price: Decimal) -> None:
        """Remember an asset's last mark for unrealised PnL after a restart (batched)."""
        self._marks[asset] = (fmt(price), self._clock())

    # --- intents --------------------------------------------------------------------------
    def begin_intent(self, plan: OrderPlan, order_type: str) -> OrderIntent:
        """Durably commit the intent for `plan` before anything is signed or sent (R1).

        Idempotent per decision: a second call returns the existing intent unchanged.
        """
        intent = self.new_intent(plan, order_type)
        with self.db.transaction() as conn:
            self._write_pending(conn)
            inserted = self._insert_intent(conn, intent, plan)
        if inserted:  # new: exactly what was written (a read-back would give the same)
            return intent
        existing = self.intent(intent.intent_id)  # decided before: as it stands
        assert existing is not None
        return existing

    def new_intent(self, plan: OrderPlan, order_type: str) -> OrderIntent:
        """The intent for `plan`, not written anywhere yet: `begin_intent` commits it before
        an order goes out; an executor that sends nothing (paper) has it written by `settle`,
        in the one transaction that records what filled."""
        return OrderIntent(
            intent_id=intent_id_for(plan.decision_id),
            decision_id=plan.decision_id,
            leader=plan.leader,
            asset=plan.asset,
            condition_id=plan.context.condition_id,
            side=plan.side,
            order_type=order_type,
            notional=Decimal(fmt(plan.notional)),
            shares=Decimal(fmt(plan.shares)),
            limit_price=Decimal(fmt(plan.limit_price)),
            status=OrderStatus.NEW,
            created_at=self._clock(),
        )

    @staticmethod
    def _insert_intent(conn: sqlite3.Connection, intent: OrderIntent, plan: OrderPlan) -> bool:
        return bool(
            conn.execute(
                "INSERT OR IGNORE INTO ledger_intents(intent_id, decision_id, leader, asset,"
                " condition_id, side, order_type, notional, shares, limit_price, plan, status,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    intent.intent_id,
                    intent.decision_id,
                    intent.leader,
                    intent.asset,
                    intent.condition_id,
                    intent.side.value,
                    intent.order_type,
                    fmt(intent.notional),
                    fmt(intent.shares),
                    fmt(intent.limit_price),
                    plan_to_json(plan),
                    OrderStatus.NEW.value,
                    intent.created_at,
                    intent.created_at,
                ),
            ).rowcount
        )

    def record_submission(self, intent: OrderIntent, submission: SignedSubmission) -> OrderIntent:
        """Durably store the signed order and its hash, state SIGNED, before the POST (R1).

        An intent is signed once (R3): a second submission — whatever its state, even the
        same bytes again — raises `InvariantError` and changes nothing. On disk when it
        returns (a power cut after the POST must not forget the order was sent)."""
        with self.db.durable_transaction() as conn:
            self._write_pending(conn)
            current = self._status(conn, intent.intent_id)
            if current is not OrderStatus.NEW:
                raise InvariantError(
                    f"intent {intent.intent_id} is {current}: it was signed already (sign once)"
                )
            updated = conn.execute(
                "UPDATE ledger_intents SET status = ?, order_hash = ?, signed_order = ?,"
                " signed_at_ms = ?, fee_schedule = ?, updated_at = ?"
                " WHERE intent_id = ? AND status = ? AND order_hash IS NULL",
                (
                    OrderStatus.SIGNED.value,
                    submission.order_hash,
                    submission.payload,
                    submission.signed_at_ms,
                    _fees_to_json(submission.fees),
                    self._clock(),
                    intent.intent_id,
                    OrderStatus.NEW.value,
                ),
            ).rowcount
            if updated != 1:
                raise InvariantError(f"intent {intent.intent_id} already has an order hash")
        signed = self.intent(intent.intent_id)
        assert signed is not None
        return signed

    def record_venue_order_id(self, intent: OrderIntent, venue_order_id: str) -> OrderIntent:
        """Note the venue's id for an order whose id differs from our hash (look-ups use it)."""
        with self.db.transaction() as conn:
            self._write_pending(conn)
            conn.execute(
                "UPDATE ledger_intents SET venue_order_id = ?, updated_at = ? WHERE intent_id = ?",
                (venue_order_id, self._clock(), intent.intent_id),
            )
        updated = self.intent(intent.intent_id)
        assert updated is not None
        return updated

    def note_lookup(self, intent: OrderIntent, detail: str) -> OrderIntent:
        """Count a venue look-up that found nothing, and move SIGNED to UNKNOWN."""
        with self.db.transaction() as conn:
            self._write_pending(conn)
            current = self._status(conn, intent.intent_id)
            status = OrderStatus.UNKNOWN if current is OrderStatus.SIGNED else current
            conn.execute(
                "UPDATE ledger_intents SET status = ?, lookups = lookups + 1, detail = ?,"
                " updated_at = ? WHERE intent_id = ?",
                (status.value, detail, self._clock(), intent.intent_id),
            )
        updated = self.intent(intent.intent_id)
        assert updated is not None
        return updated

    def intent(self, intent_id: str) -> OrderIntent | None:
        self._settle_deferred()
        row = self.db.conn.execute(
            _SELECT_INTENTS + " WHERE intent_id = ?", (intent_id,)
        ).fetchone()
        return _intent(row) if row else None

    def intent_for_decision(self, decision_id: str) -> OrderIntent | None:
        return self.intent(intent_id_for(decision_id))

    def open_intents(self) -> list[OrderIntent]:
        self._settle_deferred()
        rows = self.db.conn.execute(_SELECT_OPEN_INTENTS, OPEN_STATES).fetchall()
        return [_intent(row) for row in rows]

    def intents(self) -> list[OrderIntent]:
        self._settle_deferred()
        rows = self.db.conn.execute(_SELECT_INTENTS + " ORDER BY created_at, intent_id").fetchall()
        return [_intent(row) for row in rows]

    def plan_of(self, intent: OrderIntent) -> OrderPlan:
        self._settle_deferred()
        row = self.db.conn.execute(
            "SELECT plan FROM ledger_intents WHERE intent_id = ?", (intent.intent_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no intent {intent.intent_id}")
        return plan_from_json(row[0])

    def signed_order(self, intent: OrderIntent) -> str | None:
        self._settle_deferred()
        row = self.db.conn.execute(
            "SELECT signed_order FROM ledger_intents WHERE intent_id = ?", (intent.intent_id,)
        ).fetchone()
        return row[0] if row else None

    # --- fills, positions, PnL -----------------------------------------------------------
    def settle(
        self,
        intent: OrderIntent,
        report: ExecutionReport,
        decision: Decision | None = None,
        *,
        unwritten: OrderPlan | None = None,
        deferred: bool = False,
    ) -> SettleResult:
        """Apply what the venue reported, in one transaction: fills (idempotent by trade id),
        the attributed position and realised PnL, the intent's state and its decision.

        The state moves by the transition table (`states.py`); an illegal move is logged and
        not applied, and a final state is kept. A fill reported for an intent already in a
        final state (a late fill) is applied — the venue says we hold those shares, and Σ
        fills must equal the position — exactly once (by trade id), with an alert
        (`fill_after_close`). CANCELED may still become FILLED; other final states stay.

        `unwritten`: the plan of an intent `begin_intent` never wrote (`new_intent`, an
        executor that sends nothing): written here, in the same transaction. With `deferred`
        (only for those: nothing outside the process depends on them) the writes join the
        next group commit (`flush`), with the decisions and the inbox marks of their trades;
        the result is what they will write (new fills, all of them)."""
        if deferred:
            if unwritten is None:
                raise StoreError("only an unwritten (paper) intent's settle can be deferred")
            self._deferred.append(
                lambda conn: self._settle_in(conn, intent, report, decision, unwritten)
            )
            if decision is not None:
                self._pending_ids.add(decision.decision_id)
            status, _ = _next_status(OrderStatus.NEW, report)
            settled = replace(intent, status=status, order_hash=report.order_hash)
            if len(self._deferred) >= self._batch_size:
                self.flush()
            return SettleResult(settled, report.fills, 0, 0, 0)
        with self.db.transaction() as conn:
            self._write_pending(conn)
            return self._settle_in(conn, intent, report, decision, unwritten)

    def _settle_in(
        self,
        conn: sqlite3.Connection,
        intent: OrderIntent,
        report: ExecutionReport,
        decision: Decision | None,
        unwritten: OrderPlan | None,
    ) -> SettleResult:
        applied: list[VenueFill] = []
        duplicates = conflicts = overfills = 0
        if unwritten is not None:
            self._insert_intent(conn, intent, unwritten)
        row = conn.execute(
            "SELECT status, filled_shares, filled_notional, fees, notional, shares,"
            " order_hash FROM ledger_intents WHERE intent_id = ?",
            (intent.intent_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"no intent {intent.intent_id}")
        current = OrderStatus(row[0])
        filled_shares, filled_notional, fees = (Decimal(v) for v in row[1:4])
        quantity_notional, quantity_shares = Decimal(row[4]), Decimal(row[5])
        order_hash = report.order_hash or row[6] or f"paper:{intent.intent_id}"
        now = self._clock()
        for fill in report.fills:
            verdict = self._known_fill(conn, intent, fill, order_hash)
            if verdict == "duplicate":
                duplicates += 1
                continue
            if verdict == "conflict":
                conflicts += 1
                continue
            if _overfills(
                intent.side,
                fill,
                filled_shares,
                filled_notional,
                quantity_shares,
                quantity_notional,
            ):
                overfills += 1
                self.alerts += 1
                log.error(
                    "fill_overfill",
                    intent_id=intent.intent_id,
                    trade_id=fill.trade_id,
                    shares=fill.shares,
                    filled=filled_shares,
                )
                continue
            self._insert_fill(conn, intent, fill, order_hash, now)
            applied.append(fill)
            filled_shares += fill.shares
            filled_notional += fill.notional
            fees += fill.fee
        if applied:
            self._apply_position(conn, intent, applied)
            if current.final:
                self._late_fills(intent, current, applied)
        status, refused = _next_status(current, report)
        if refused:
            log.error(
                "order_transition_refused",
                intent_id=intent.intent_id,
                current=current,
                target=report.status,
            )
        conn.execute(
            "UPDATE ledger_intents SET status = ?, order_hash = COALESCE(order_hash, ?),"
            " filled_shares = ?, filled_notional = ?, fees = ?, detail = ?, updated_at = ?"
            " WHERE intent_id = ?",
            (
                status.value,
                report.order_hash,
                fmt(filled_shares),
                fmt(filled_notional),
                fmt(fees),
                report.detail[:500],
                now,
                intent.intent_id,
            ),
        )
        if decision is not None:
            conn.execute(
                "INSERT INTO ledger_decisions"
                "(decision_id, ts, leader, asset, side, outcome, reasons, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(decision_id) DO UPDATE SET"
                " outcome = excluded.outcome, reasons = excluded.reasons,"
                " record = excluded.record",
                _decision_row(decision),
            )
        settled = replace(
            intent,
            status=status,
            order_hash=intent.order_hash or report.order_hash or row[6],
        )
        return SettleResult(settled, tuple(applied), duplicates, conflicts, overfills)

    def _late_fills(
        self, intent: OrderIntent, current: OrderStatus, fills: list[VenueFill]
    ) -> None:
        self.alerts += 1
        log.error(
            "fill_after_close",
            intent_id=intent.intent_id,
            status=current,
            trade_ids=[f.trade_id for f in fills],
            shares=sum((f.shares for f in fills), ZERO),
        )

    def _known_fill(
        self, conn: sqlite3.Connection, intent: OrderIntent, fill: VenueFill, order_hash: str
    ) -> str:
        """'new', 'duplicate' (exact replay: ignored) or 'conflict' (WARN, not applied)."""
        existing = conn.execute(
            "SELECT price, shares, fee FROM ledger_fills WHERE venue_trade_id = ?"
            " AND order_hash = ?",
            (fill.trade_id, order_hash),
        ).fetchone()
        if existing is None:
            return "new"
        same = (
            Decimal(existing[0]) == fill.price
            and Decimal(existing[1]) == fill.shares
            and Decimal(existing[2]) == fill.fee
        )
        if same:
            return "duplicate"
        self.alerts += 1
        log.warning(
            "fill_conflicting_replay",
            intent_id=intent.intent_id,
            trade_id=fill.trade_id,
            recorded_shares=existing[1],
            reported_shares=fill.shares,
        )
        return "conflict"

    @staticmethod
    def _insert_fill(
        conn: sqlite3.Connection,
        intent: OrderIntent,
        fill: VenueFill,
        order_hash: str,
        now: float,
    ) -> None:
        conn.execute(
            "INSERT INTO ledger_fills(venue_trade_id, order_hash, intent_id, leader, asset, side,"
            " price, shares, fee, ts, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fill.trade_id,
                order_hash,
                intent.intent_id,
                intent.leader,
                intent.asset,
                intent.side.value,
                fmt(fill.price),
                fmt(fill.shares),
                fmt(fill.fee),
                fill.ts,
                now,
            ),
        )

    def _apply_position(
        self, conn: sqlite3.Connection, intent: OrderIntent, fills: list[VenueFill]
    ) -> None:
        """Move the (leader, asset) position by the fills of one report, as one aggregate
        (the same arithmetic as `AttributedBook.apply_fill`, so both agree to the digit)."""
        shares = sum((f.shares for f in fills), ZERO)
        notional = sum((f.notional for f in fills), ZERO)
        fee = sum((f.fee for f in fills), ZERO)
        row = conn.execute(
            "SELECT shares, cost FROM ledger_positions WHERE leader = ? AND asset = ?",
            (intent.leader, intent.asset),
        ).fetchone()
        held, cost = (Decimal(row[0]), Decimal(row[1])) if row else (ZERO, ZERO)
        realized = ZERO
        if intent.side is Side.BUY:
            held += shares
            cost += notional
        else:
            if shares > held + DUST_SHARES:
                self.alerts += 1
                log.error(
                    "position_oversold",
                    leader=intent.leader,
                    asset=intent.asset,
                    held=held,
                    sold=shares,
                )
            cost_out = cost if shares >= held else cost * shares / held
            realized = notional - cost_out
            held = max(held - shares, ZERO)
            cost = cost - cost_out if held > 0 else ZERO
        if held > 0:
            conn.execute(
                "INSERT INTO ledger_positions(leader, asset, shares, cost) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(leader, asset) DO UPDATE SET shares = excluded.shares,"
                " cost = excluded.cost",
                (intent.leader, intent.asset, fmt(held), fmt(cost)),
            )
        else:
            conn.execute(
                "DELETE FROM ledger_positions WHERE leader = ? AND asset = ?",
                (intent.leader, intent.asset),
            )
        pnl = conn.execute(
            "SELECT realized, fees FROM ledger_pnl WHERE leader = ?", (intent.leader,)
        ).fetchone()
        total_realized, total_fees = (Decimal(pnl[0]), Decimal(pnl[1])) if pnl else (ZERO, ZERO)
        conn.execute(
            "INSERT INTO ledger_pnl(leader, realized, fees) VALUES (?, ?, ?)"
            " ON CONFLICT(leader) DO UPDATE SET realized = excluded.realized,"
            " fees = excluded.fees",
            (intent.leader, fmt(total_realized + realized), fmt(total_fees + fee)),
        )

    # --- resolution --------------------------------------------------------------------------
    def settle_resolved(self, leader: str, asset: str, payout: Decimal) -> Settlement | None:
        """Close the leader's position in a resolved token at its payout (1 per share for the
        winner, 0 for the loser): the position leaves the ledger, its PnL is realised. None
        when there is no position (settled already)."""
        with self.db.transaction() as conn:
            self._write_pending(conn)
            row = conn.execute(
                "SELECT shares, cost FROM ledger_positions WHERE leader = ? AND asset = ?",
                (leader, asset),
            ).fetchone()
            if row is None:
                return None
            shares, cost = Decimal(row[0]), Decimal(row[1])
            realized = shares * payout - cost
            conn.execute(
                "DELETE FROM ledger_positions WHERE leader = ? AND asset = ?", (leader, asset)
            )
            pnl = conn.execute(
                "SELECT realized, fees FROM ledger_pnl WHERE leader = ?", (leader,)
            ).fetchone()
            total, fees = (Decimal(pnl[0]), pnl[1]) if pnl else (ZERO, "0")
            conn.execute(
                "INSERT INTO ledger_pnl(leader, realized, fees) VALUES (?, ?, ?)"
                " ON CONFLICT(leader) DO UPDATE SET realized = excluded.realized",
                (leader, fmt(total + realized), fees),
            )
            conn.execute(
                "INSERT INTO ledger_settlements(leader, asset, shares, payout, realized, ts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (leader, asset, fmt(shares), fmt(payout), fmt(realized), self._clock()),
            )
            conn.execute("DELETE FROM ledger_marks WHERE asset = ?", (asset,))
        self._marks.pop(asset, None)
        return Settlement(leader, asset, shares, payout, realized)

    def condition_of(self, asset: str) -> str | None:
        """The market (condition id) of a token polycopy has traded."""
        self._settle_deferred()
        row = self.db.conn.execute(
            "SELECT condition_id FROM ledger_intents WHERE asset = ? LIMIT 1", (asset,)
        ).fetchone()
        return str(row[0]) if row else None

    def fills(self, intent_id: str | None = None) -> list[VenueFill]:
        self._settle_deferred()
        query = "SELECT venue_trade_id, order_hash, price, shares, fee, ts FROM ledger_fills"
        args: tuple[str, ...] = ()
        if intent_id is not None:
            query += " WHERE intent_id = ?"
            args = (intent_id,)
        rows = self.db.conn.execute(query + " ORDER BY recorded_at, venue_trade_id", args)
        return [
            VenueFill(r[0], r[1], Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), r[5]) for r in rows
        ]

    def positions(self, leader: str | None = None) -> list[Position]:
        self._settle_deferred()
        query = "SELECT leader, asset, shares, cost FROM ledger_positions"
        args: tuple[str, ...] = ()
        if leader is not None:
            query += " WHERE leader = ?"
            args = (leader,)
        return [
            Position(r[0], r[1], Decimal(r[2]), Decimal(r[3]))
            for r in self.db.conn.execute(query + " ORDER BY leader, asset", args)
        ]

    def marks(self) -> dict[str, Decimal]:
        self.flush()
        return {
            asset: Decimal(price)
            for asset, price in self.db.conn.execute("SELECT asset, price FROM ledger_marks")
        }

    def reserved(self, leader: str) -> Decimal:
        """Σ notional of the leader's open BUY intents: counted against a HARD budget."""
        return sum((n for owner, _, n in self.reservations() if owner == leader), ZERO)

    def reservations(self) -> Iterator[tuple[str, str, Decimal]]:
        """(leader, decision id, amount reserved) of every BUY intent not in a final state."""
        for intent in self.open_intents():
            if intent.side is Side.BUY:
                yield intent.leader, intent.decision_id, self.plan_of(intent).reserve

    def pnl(self, leader: str) -> LeaderPnl:
        self._settle_deferred()
        row = self.db.conn.execute(
            "SELECT realized, fees FROM ledger_pnl WHERE leader = ?", (leader,)
        ).fetchone()
        realized, fees = (Decimal(row[0]), Decimal(row[1])) if row else (ZERO, ZERO)
        marks = self.marks()
        cost = value = ZERO
        for position in self.positions(leader):
            cost += position.cost
            mark = marks.get(position.asset)
            value += position.shares * mark if mark is not None else position.cost
        return LeaderPnl(leader, realized, fees, cost, value)

    def leaders(self) -> list[str]:
        self._settle_deferred()
        rows = self.db.conn.execute(
            "SELECT leader FROM ledger_positions UNION SELECT leader FROM ledger_pnl"
            " UNION SELECT leader FROM ledger_intents"
        )
        return sorted(r[0] for r in rows)

    def load_into(self, book: AttributedBook) -> None:
        """Rebuild the in-memory attributed state at start-up: marks, positions with their
        cost basis, realised PnL, and reservations of open BUY intents."""
        self._settle_deferred()
        for asset, price in sorted(self.marks().items()):
            book.set_mark(asset, price)
        for position in self.positions():
            book.restore(position.leader, position.asset, position.shares, position.cost)
        for leader, realized in self.db.conn.execute("SELECT leader, realized FROM ledger_pnl"):
            book.restore_realized(leader, Decimal(realized))
        for leader, decision_id, notional in self.reservations():
            book.reserve(leader, decision_id, notional)

    # --- helpers --------------------------------------------------------------------------
    def _status(self, conn: sqlite3.Connection, intent_id: str) -> OrderStatus:
        row = conn.execute(
            "SELECT status FROM ledger_intents WHERE intent_id = ?", (intent_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no intent {intent_id}")
        return OrderStatus(row[0])


def _overfills(
    side: Side,
    fill: VenueFill,
    filled_shares: Decimal,
    filled_notional: Decimal,
    quantity_shares: Decimal,
    quantity_notional: Decimal,
) -> bool:
    if side is Side.BUY:  # sized in pUSD: the dust allowance is 0.01 share at the fill price
        return filled_notional + fill.notional > quantity_notional + DUST_SHARES * fill.price
    return filled_shares + fill.shares > quantity_shares + DUST_SHARES


_SELECT_INTENTS = (
    "SELECT intent_id, decision_id, leader, asset, condition_id, side, order_type, notional,"
    " shares, limit_price, status, created_at, order_hash, signed_at_ms, lookups, signed_order,"
    " fee_schedule, venue_order_id FROM ledger_intents"
)
_SELECT_OPEN_INTENTS = (
    _SELECT_INTENTS
    + " WHERE status IN ("
    + ",".join("?" for _ in OPEN_STATES)
    + ") ORDER BY created_at, intent_id"
)


def _intent(row: tuple[Any, ...]) -> OrderIntent:
    return OrderIntent(
        intent_id=row[0],
        decision_id=row[1],
        leader=row[2],
        asset=row[3],
        condition_id=row[4],
        side=Side(row[5]),
        order_type=row[6],
        notional=Decimal(row[7]),
        shares=Decimal(row[8]),
        limit_price=Decimal(row[9]),
        status=OrderStatus(row[10]),
        created_at=row[11],
        order_hash=row[12],
        signed_at_ms=row[13],
        lookups=row[14],
        signed_order=row[15],
        fees=_fees_from_json(row[16]),
        venue_order_id=row[17],
    )


def _fees_to_json(fees: FeeSchedule | None) -> str | None:
    if fees is None:
        return None
    data = {"rate": str(fees.rate), "exponent": str(fees.exponent), "taker_only": fees.taker_only}
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _fees_from_json(text: str | None) -> FeeSchedule | None:
    if text is None:
        return None
    data = json.loads(text)
    return FeeSchedule(Decimal(data["rate"]), Decimal(data["exponent"]), bool(data["taker_only"]))


def _next_status(current: OrderStatus, report: ExecutionReport) -> tuple[OrderStatus, bool]:
    """The state a report moves an intent in `current` to, by the transition table, and
    whether the move was refused (the intent then stays; a final state always stays)."""
    if current is OrderStatus.NEW and report.order_hash and report.status not in _UNSENT:
        current = OrderStatus.SIGNED  # executed in-process (paper): no separate POST
    if can_transition(current, report.status):
        return report.status, False
    return current, not current.final


def _decision_row(decision: Decision) -> tuple[Any, ...]:
    return (
        decision.decision_id,
        iso(decision.ts),
        decision.leader,
        decision.asset,
        decision.side.value,
        decision.outcome.value,
        ",".join(r.value for r in decision.reasons),
        decision.to_json(),  # the record, as JSON (`Decision.to_record` in one string)
    )


# --- plan codec: an open intent must be finishable after a restart ------------------------
def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def plan_to_json(plan: OrderPlan) -> str:
    ctx = plan.context
    data = {
        "context": {
            "decision_id": ctx.decision_id,
            "ts": ctx.ts.isoformat(),
            "event_ts": ctx.event_ts.isoformat() if ctx.event_ts else None,
            "leader": ctx.leader,
            "leader_name": ctx.leader_name,
            "asset": ctx.asset,
            "condition_id": ctx.condition_id,
            "side": ctx.side.value,
            "leader_price": _dec(ctx.leader_price),
            "leader_size": _dec(ctx.leader_size),
            "leader_notional": _dec(ctx.leader_notional),
            "mode": ctx.mode.value,
            "enforcement": ctx.enforcement.value if ctx.enforcement else None,
            "rate": _dec(ctx.rate),
            "leader_exposure": _dec(ctx.leader_exposure),
            "budget": _dec(ctx.budget),
            "target_notional": _dec(ctx.target_notional),
            "netted_ids": list(ctx.netted_ids),
            "exposure_age_s": ctx.exposure_age_s,
            "config_version": ctx.config_version,
        },
        "side": plan.side.value,
        "notional": str(plan.notional),
        "shares": str(plan.shares),
        "limit_price": str(plan.limit_price),
        "reference_price": str(plan.reference_price),
        "reasons": [r.value for r in plan.reasons],
        "budget_charge": _dec(plan.budget_charge),
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def plan_from_json(text: str) -> OrderPlan:
    data = json.loads(text)
    c = data["context"]
    context = DecisionContext(
        decision_id=c["decision_id"],
        ts=datetime.fromisoformat(c["ts"]),
        event_ts=datetime.fromisoformat(c["event_ts"]) if c["event_ts"] else None,
        leader=c["leader"],
        leader_name=c["leader_name"],
        asset=c["asset"],
        condition_id=c["condition_id"],
        side=Side(c["side"]),
        leader_price=_undec(c["leader_price"]),
        leader_size=_undec(c["leader_size"]),
        leader_notional=_undec(c["leader_notional"]),
        mode=Mode(c["mode"]),
        enforcement=Enforcement(c["enforcement"]) if c["enforcement"] else None,
        rate=_undec(c["rate"]),
        leader_exposure=_undec(c["leader_exposure"]),
        budget=_undec(c["budget"]),
        target_notional=_undec(c["target_notional"]),
        netted_ids=tuple(c["netted_ids"]),
        exposure_age_s=c["exposure_age_s"],
        config_version=c["config_version"],
    )
    return OrderPlan(
        context=context,
        side=Side(data["side"]),
        notional=Decimal(data["notional"]),
        shares=Decimal(data["shares"]),
        limit_price=Decimal(data["limit_price"]),
        reference_price=Decimal(data["reference_price"]),
        reasons=tuple(Reason(r) for r in data["reasons"]),
        budget_charge=_undec(data.get("budget_charge")),
    )
