"""The execution loop around an executor and the ledger: intent first, then the order, then
the fills — each step durable before the next, so that a crash anywhere is recoverable
(R1, R4, R5).

    execute(plan):  begin_intent ─► executor.execute ─► [sign, record_submission (fsync),
                    POST] ─► complete(plan, execution) ─► ledger.settle

An executor that sends nothing (paper, `sends_orders` false) skips `begin_intent`: its intent
is written by `settle`, in the transaction that records the fills and the decision.

`complete` is the sizing worker's `Copier.complete`: it applies the fill to the in-memory
attributed book and returns the decision record, which `settle` stores in the same
transaction as the fills. Start-up: `Ledger.load_into(copier.book)`, then `reconcile()`,
which resolves every non-final intent by asking the venue; `execute` refuses to run before it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog

from polycopy.crashpoints import crash_point
from polycopy.domain.events import Decision
from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import Execution, OrderPlan
from polycopy.execution.errors import (
    ExecutionError,
    NotReconciledError,
    ReconcileError,
    VenueError,
)
from polycopy.execution.port import ExecutionReport, Executor, OrderIntent, unknown
from polycopy.execution.states import OrderStatus
from polycopy.store.ledger import Ledger

log = structlog.get_logger("polycopy.execution")

Complete = Callable[[OrderPlan, Execution], Decision]


class DuplicateIntentError(ExecutionError):
    """The decision already has a settled intent: it is never sent again."""

    def __init__(self, intent: OrderIntent) -> None:
        super().__init__(f"decision {intent.decision_id} already executed ({intent.status})")
        self.intent = intent


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int
    resolved: list[Decision]
    still_open: list[OrderIntent]


class ExecutionService:
    def __init__(
        self,
        executor: Executor,
        ledger: Ledger,
        complete: Complete,
        *,
        order_type: str = "FAK",
    ) -> None:
        self.executor = executor
        self.ledger = ledger
        self._complete = complete
        self.order_type = order_type
        self.reconciled = False

    async def reconcile(self) -> ReconcileReport:
        """Resolve every non-final intent with the venue before any new order (R5).

        Raises `ReconcileError` when the venue cannot be asked: trading must not start.
        Intents the venue does not know yet stay open (UNKNOWN) with their reservations.
        """
        self.ledger.flush()
        open_intents = self.ledger.open_intents()
        resolved: list[Decision] = []
        still_open: list[OrderIntent] = []
        for intent in open_intents:
            try:
                decision = await self._resolve(intent)
            except VenueError as exc:
                raise ReconcileError(f"cannot reconcile intent {intent.intent_id}: {exc}") from exc
            if decision is None or decision.reasons[-1:] == (Reason.EXEC_UNKNOWN,):
                still_open.append(intent)
            else:
                resolved.append(decision)
        self.reconciled = True
        log.info(
            "reconciled",
            mode=self.executor.mode,
            checked=len(open_intents),
            resolved=len(resolved),
            still_open=len(still_open),
        )
        return ReconcileReport(len(open_intents), resolved, still_open)

    async def resolve_open(self, skip: Collection[str] = ()) -> list[Decision]:
        """Ask the venue again about intents left UNKNOWN/LIVE (call periodically). `skip`:
        intents whose order is being executed right now (their own task settles them)."""
        decisions = []
        for intent in self.ledger.open_intents():
            if intent.intent_id in skip:
                continue
            try:
                decision = await self._resolve(intent)
            except VenueError as exc:
                log.warning("order_resolve_failed", intent_id=intent.intent_id, error=str(exc))
                continue
            if decision is not None and decision.reasons[-1:] != (Reason.EXEC_UNKNOWN,):
                decisions.append(decision)
        return decisions

    async def execute(self, plan: OrderPlan) -> Decision:
        """Send `plan` at most once and return its decision record (already stored)."""
        intent = self.begin(plan)
        if intent.status is not OrderStatus.NEW:
            return await self.resume(intent)
        report = await self.run(plan, intent)
        return self.settle(plan, intent, report)

    # The three steps of `execute`, for a caller that runs orders concurrently: `begin` and
    # `settle` are synchronous (ledger writes, attributed state); `run` is the venue's part.
    def begin(self, plan: OrderPlan) -> OrderIntent:
        """The durable intent, committed before anything is sent (R1). A settled one raises
        DuplicateIntentError; an open one from before a restart is returned as it is (NEW
        means: go ahead and send)."""
        if not self.reconciled:
            raise NotReconciledError("start-up reconciliation has not run")
        if not self.executor.sends_orders:
            # nothing leaves the process (paper): the intent is written with what filled, in
            # one transaction; a crash before it leaves no trace and the trade is decided anew
            return self.ledger.new_intent(plan, self.order_type)
        intent = self.ledger.begin_intent(plan, self.order_type)
        if intent.status.final:
            raise DuplicateIntentError(intent)
        if intent.status is OrderStatus.NEW:
            crash_point("after_intent_commit")
        return intent

    async def resume(self, intent: OrderIntent) -> Decision:
        """An intent sent before a restart: ask, never resend."""
        decision = await self._resolve(intent)
        if decision is None:
            raise DuplicateIntentError(intent)
        return decision  # final, or EXEC_UNKNOWN until a later look-up

    async def run(self, plan: OrderPlan, intent: OrderIntent) -> ExecutionReport:
        report = await self.executor.execute(plan, intent, self.ledger)
        crash_point("after_response_before_fill_record")
        return report

    def settle(self, plan: OrderPlan, intent: OrderIntent, report: ExecutionReport) -> Decision:
        return self._settle(plan, intent, report)  # the ledger reads the intent's state itself

    async def _resolve(self, intent: OrderIntent) -> Decision | None:
        """Ask the venue; settle what it says. Returns the decision when one was written (a
        final one, or the first EXEC_UNKNOWN record of an intent that had none), else None."""
        report = await self.executor.resolve(intent)
        if report is None:
            intent = self.ledger.note_lookup(intent, "the venue does not know this order yet")
            if self.ledger.decision(intent.decision_id) is not None:
                return None  # no news: the decision already says EXEC_UNKNOWN
            report = unknown(intent.order_hash, "the venue does not know this order yet")
        elif not report.final and self.ledger.decision(intent.decision_id) is not None:
            return None  # no news: the decision already says EXEC_UNKNOWN
        plan = self.ledger.plan_of(intent)
        decision = self._settle(plan, intent, report)
        log.info(
            "order_resolved",
            intent_id=intent.intent_id,
            status=report.status,
            shares=report.execution.shares,
            detail=report.detail,
        )
        return decision

    def _settle(self, plan: OrderPlan, intent: OrderIntent, report: ExecutionReport) -> Decision:
        decision = self._complete(plan, report.execution)
        if self.executor.sends_orders:
            result = self.ledger.settle(intent, report, decision)
        else:  # paper: written with the next group commit (`Ledger.flush`)
            result = self.ledger.settle(intent, report, decision, unwritten=plan, deferred=True)
        crash_point("after_fill_record")
        for fill in result.applied:
            log.info(
                "fill_applied",
                intent_id=intent.intent_id,
                trade_id=fill.trade_id,
                shares=fill.shares,
                price=fill.price,
                fee=fill.fee,
            )
        log.debug(
            "order_settled",
            intent_id=intent.intent_id,
            decision_id=plan.decision_id,
            status=result.intent.status,
            outcome=decision.outcome,
            reasons=[r.value for r in decision.reasons],
            detail=report.detail,
        )
        return decision
