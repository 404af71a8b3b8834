"""Execution settings as plain values (built from the `execution:` config section)."""

from __future__ import annotations

from dataclasses import dataclass, field

from polycopy.config import ExecutionSection
from polycopy.execution.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    order_type: str = "FAK"
    http_timeout_s: float = 5.0
    order_timeout_s: float = 10.0
    get_policy: RetryPolicy = field(default_factory=RetryPolicy)
    order_resend_max: int = 2
    unknown_lookup_attempts: int = 3
    unknown_close_after_s: float = 120.0
    fill_wait_s: float = 5.0
    book_precheck: bool = True
    book_stream: bool = True
    market_cache_ttl_s: float = 300.0
    # R4: an order the venue has never heard of is closed (EXPIRED) only once it is older
    # than `unknown_close_after_s` AND this many look-ups in a row found nothing
    unknown_close_lookups: int = 3
    # an order the venue reports matched whose trades do not (yet) account for its matched
    # size stays UNKNOWN; from this long after signing on, every such look-up is an alert
    fills_missing_alert_s: float = 300.0
    # trades of an order are looked for in [signed − 300 s, signed + trade_window_s], at
    # most `trade_pages_max` pages; a longer listing counts as incomplete (stays UNKNOWN)
    trade_window_s: float = 900.0
    trade_pages_max: int = 20

    @property
    def fok(self) -> bool:
        return self.order_type == "FOK"

    @classmethod
    def from_config(cls, section: ExecutionSection) -> ExecutionSettings:
        return cls(
            order_type=section.order_type.value,
            http_timeout_s=float(section.venue_http_timeout_s),
            order_timeout_s=float(section.order_timeout_s),
            get_policy=RetryPolicy(
                retries=section.venue_get_retries,
                cap_s=float(section.venue_backoff_max_s),
                deadline_s=float(section.venue_retry_deadline_s),
            ),
            order_resend_max=section.order_resend_max,
            unknown_lookup_attempts=section.unknown_lookup_attempts,
            unknown_close_after_s=float(section.unknown_close_after_s),
            fill_wait_s=float(section.fill_wait_s),
            book_precheck=section.book_precheck,
            book_stream=section.book_stream,
            market_cache_ttl_s=float(section.market_cache_ttl_s),
            unknown_close_lookups=section.unknown_close_lookups,
            fills_missing_alert_s=float(section.fills_missing_alert_s),
            trade_window_s=float(section.trade_window_s),
            trade_pages_max=section.trade_pages_max,
        )
