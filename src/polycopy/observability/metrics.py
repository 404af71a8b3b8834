"""Prometheus metrics of one daemon (its own registry, rendered by the status server)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from polycopy.domain.events import Decision

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.refresh: Callable[[], None] | None = None
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "polycopy_decisions", "Decisions by outcome.", ["outcome"], registry=r
        )
        self.reasons = Counter(
            "polycopy_decision_reasons",
            "Reason codes attached to decisions.",
            ["reason"],
            registry=r,
        )
        self.revisions = Counter(
            "polycopy_decision_revisions",
            "Decisions of unknown outcome resolved later, by earlier and final outcome.",
            ["earlier", "outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "polycopy_queue_depth", "Leader trades waiting for the sizing worker.", registry=r
        )
        self.queue_full_waits = Counter(
            "polycopy_queue_full_waits", "Times the ingester waited on a full queue.", registry=r
        )
        self.queue_wait = Histogram(
            "polycopy_queue_wait_seconds",
            "From a leader trade received to the sizing worker taking it (inbox and queue).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.detection_to_order = Histogram(
            "polycopy_detection_to_order_seconds",
            "From the leader trade received to the copy order sent (or filled, in paper mode).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest_lag = Histogram(
            "polycopy_ingest_lag_seconds",
            "From the leader trade's venue time to its receipt.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.ws_reconnects = Counter(
            "polycopy_ws_reconnects", "RTDS websocket reconnections.", registry=r
        )
        self.ws_auth_failures = Counter(
            "polycopy_ws_auth_failures",
            "RTDS websocket upgrades refused with 401/403 (retried with a long backoff).",
            registry=r,
        )
        self.ws_auth_failed = Gauge(
            "polycopy_ws_auth_failed", "1 while the last RTDS upgrade was refused.", registry=r
        )
        self.positions_fallbacks = Counter(
            "polycopy_positions_fallbacks",
            "Exposure refreshes that fell back from /positions to /value.",
            registry=r,
        )
        self.last_event_age = Gauge(
            "polycopy_last_event_age_seconds",
            "Seconds since the last frame or poll answer.",
            registry=r,
        )
        self.leader_exposure = Gauge(
            "polycopy_leader_exposure_usdc", "E_u: the leader's exposure.", ["leader"], registry=r
        )
        self.leader_exposure_age = Gauge(
            "polycopy_leader_exposure_age_seconds", "Age of E_u.", ["leader"], registry=r
        )
        self.leader_rate = Gauge(
            "polycopy_leader_rate", "r_u: the copy rate last used.", ["leader"], registry=r
        )
        self.leader_attributed = Gauge(
            "polycopy_leader_attributed_usdc",
            "A_u: value held for the leader's copies.",
            ["leader"],
            registry=r,
        )
        self.leader_budget = Gauge(
            "polycopy_leader_budget_usdc", "B_u (BUDGETED_DYNAMIC leaders).", ["leader"], registry=r
        )
        self.leader_utilization = Gauge(
            "polycopy_leader_utilization", "A_u / B_u.", ["leader"], registry=r
        )
        self.trading_state = Gauge(
            "polycopy_trading_state", "1 for the current kill-switch state.", ["state"], registry=r
        )
        self.submit_unknown = Gauge(
            "polycopy_submit_unknown", "Orders whose outcome is not known yet.", registry=r
        )
        self.alerts = Counter(
            "polycopy_execution_alerts",
            "Execution and ledger alerts (order id mismatch, fills missing, fill after close,"
            " conflicting fill): each also logged as an error.",
            registry=r,
        )
        self.config_reloads = Counter(
            "polycopy_config_reloads", "Configuration reloads by result.", ["result"], registry=r
        )
        self.config_info = Gauge(
            "polycopy_config_version_info",
            "The configuration version in force.",
            ["version"],
            registry=r,
        )

    def record_decision(self, decision: Decision) -> None:
        self.decisions.labels(decision.outcome.value).inc()
        for reason in decision.reasons:
            self.reasons.labels(reason.value).inc()

    def record_revision(self, earlier: Decision, revised: Decision) -> None:
        """An EXEC_UNKNOWN decision the venue answered later: counted apart, so that
        `polycopy_decisions_total` keeps one count per leader trade."""
        self.revisions.labels(earlier.outcome.value, revised.outcome.value).inc()

    def per_leader_gauges(self) -> tuple[Gauge, ...]:
        return (
            self.leader_exposure,
            self.leader_exposure_age,
            self.leader_rate,
            self.leader_attributed,
            self.leader_budget,
            self.leader_utilization,
        )

    def set_config_version(self, version: str) -> None:
        self.config_info.clear()
        self.config_info.labels(version).set(1)

    def set_trading_state(self, state: str, all_states: tuple[str, ...]) -> None:
        for name in all_states:
            self.trading_state.labels(name).set(1 if name == state else 0)

    def render(self) -> bytes:
        if self.refresh is not None:
            self.refresh()  # gauges the owner keeps elsewhere, read at scrape time
        return generate_latest(self.registry)
