"""`polycopy status`: the running daemon's `/status` rendered as a terminal dashboard —
budget allocation, exposure and utilization per leader, r_u and E_u with its age, and the
most recent decisions with their reasons."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from polycopy.report import table

BAR_WIDTH = 20


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _usd(value: Any) -> str:
    amount = _dec(value)
    return "-" if amount is None else f"${amount.quantize(Decimal('0.01')):,}"


def _pct(value: Any) -> str:
    ratio = _dec(value)
    return "-" if ratio is None else f"{(ratio * 100).quantize(Decimal('0.1'))}%"


def _bar(ratio: Any) -> str:
    value = _dec(ratio)
    if value is None:
        return ""
    filled = int(min(max(value, Decimal(0)), Decimal(1)) * BAR_WIDTH)
    over = "!" if value > 1 else ""
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]" + over


def _age(seconds: Any) -> str:
    if seconds is None:
        return "never"
    value = float(seconds)
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def _rate(value: Any) -> str:
    rate = _dec(value)
    if rate is None:
        return "-"
    return f"{rate:.6f}".rstrip("0").rstrip(".") if rate else "0"


def render(status: dict[str, Any]) -> str:
    queue = status.get("queue", {})
    ingest = status.get("ingest", {})
    head = [
        f"polycopy {status.get('mode', '?')} — trading {status.get('trading_state', '?')}"
        + (f" ({status['trading_reason']})" if status.get("trading_reason") else "")
        + f" — config {status.get('config_version', '?')} — up {_age(status.get('uptime_s'))}",
        f"bankroll {_usd(status.get('bankroll_usdc'))}   "
        f"queue {queue.get('depth', 0)}/{queue.get('maxsize', '?')}   "
        f"ingest {'healthy' if ingest.get('healthy') else 'UNHEALTHY'} "
        f"(last event {_age(ingest.get('last_event_age_s'))} ago)",
    ]
    leaders = status.get("leaders", [])
    rows = []
    for leader in leaders:
        counts = leader.get("outcomes", {})
        rows.append(
            [
                leader.get("name", "?"),
                leader.get("mode", "?"),
                _usd(leader.get("budget")),
                _usd(leader.get("attributed")),
                _pct(leader.get("utilization")),
                _bar(leader.get("utilization")),
                _rate(leader.get("rate")),
                _usd(leader.get("exposure")),
                _age(leader.get("exposure_age_s")),
                f"{counts.get('EXECUTED', 0)}/{counts.get('CAPPED', 0)}/{counts.get('SKIPPED', 0)}",
            ]
        )
    leader_table = table(
        [
            "leader",
            "mode",
            "budget B",
            "exposure A",
            "util",
            "",
            "rate r",
            "leader E",
            "E age",
            "exec/cap/skip",
        ],
        rows,
        right={2, 3, 4, 6, 7, 8},
    )
    total_budget = sum((_dec(x.get("budget")) or Decimal(0) for x in leaders), Decimal(0))
    total_held = sum((_dec(x.get("attributed")) or Decimal(0) for x in leaders), Decimal(0))
    allocation = f"budgets {_usd(total_budget)} allocated, {_usd(total_held)} held by copies"

    recent = status.get("recent_decisions", [])
    decision_rows = [
        [
            str(d.get("ts", ""))[11:19],
            d.get("leader_name", "?"),
            d.get("side", "?"),
            _usd(d.get("leader_notional")),
            _usd(d.get("exec_notional")),
            d.get("outcome", "?"),
            ", ".join(d.get("reasons", [])) or "-",
        ]
        for d in recent
    ]
    decisions = (
        table(
            ["time", "leader", "side", "leader $", "copied $", "outcome", "reasons"],
            decision_rows,
            right={3, 4},
        )
        if decision_rows
        else "(no decisions yet)"
    )
    return "\n".join([*head, "", leader_table, allocation, "", "recent decisions", decisions])
