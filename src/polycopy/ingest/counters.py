"""Ingest counters: plain attributes that the status page and a Prometheus exporter read.

Monotonic totals end in `_total`; gauges do not. Counters keyed by a label (a rejection
reason, a source) are `collections.Counter`s with a small, bounded set of keys.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IngestCounters:
    # RTDS websocket
    frames_total: int = 0  # every frame received, keepalives included
    frames_skipped_total: Counter[str] = field(default_factory=Counter)  # kind → count
    frames_rejected_total: Counter[str] = field(default_factory=Counter)  # reason → count
    ws_connects_total: int = 0
    ws_reconnects_total: int = 0
    ws_stalls_total: int = 0
    ws_errors_total: Counter[str] = field(default_factory=Counter)  # exception kind → count
    ws_connected: bool = False
    ws_auth_failed: bool = False  # the last upgrade was refused with 401/403 (retried slowly)
    ws_auth_failures_total: int = 0  # upgrades refused with 401/403
    ws_last_data_at: float | None = None  # monotonic time of the last data frame
    rtds_repeats_total: int = 0  # same fill twice on one RTDS stream → REST decides
    # REST
    http_requests_total: Counter[str] = field(default_factory=Counter)  # path → count
    http_retries_total: Counter[str] = field(default_factory=Counter)  # status/kind → count
    http_failures_total: Counter[str] = field(default_factory=Counter)  # path → gave up
    http_rate_limited_total: int = 0  # 429 answers
    rate_limit_waits_total: int = 0  # requests that waited for the client-side limiter
    backfills_total: int = 0
    rest_last_ok_at: float | None = None  # monotonic time of the last successful backfill
    backfill_failures_total: int = 0
    backfill_truncated_total: int = 0
    rows_rejected_total: Counter[str] = field(default_factory=Counter)  # reason → count
    rows_not_trade_total: int = 0
    rows_reused_total: int = 0  # rows a poll re-read and did not decode again
    history_skipped_total: int = 0  # trades from before a leader was followed
    # dedup, inbox, queue
    trades_received_total: Counter[str] = field(default_factory=Counter)  # source → new trades
    duplicates_total: Counter[str] = field(default_factory=Counter)  # source → duplicates
    too_old_total: int = 0  # trades older than the inbox keeps dedup memory for
    inbox_commits_total: int = 0
    queue_full_waits_total: int = 0
    queue_wait_seconds_total: float = 0.0
    pending_requeued_total: int = 0
    # exposure
    exposure_refreshes_total: int = 0
    exposure_failures_total: int = 0
    positions_fallbacks_total: int = 0  # /positions unusable (failed or malformed): /value
