"""Plain-text tables for the terminal: effective settings, replay summaries."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from polycopy.config import LoadedConfig
from polycopy.domain.money import fmt
from polycopy.domain.reasons import Mode
from polycopy.domain.settings import EffectiveLeaderConfig
from polycopy.replay import ReplayResult


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None
) -> str:
    """Columns padded to their widest cell; `right` holds the indexes of right-aligned ones."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def usd(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"${value.quantize(Decimal('0.01')):,}"


def pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{(value * 100).quantize(Decimal('0.1'))}%"


def rate_rule(cfg: EffectiveLeaderConfig) -> str:
    if cfg.mode is Mode.FIXED_RATE:
        note = " (master switch off)" if cfg.mode_fell_back else ""
        return f"fixed {fmt(cfg.fixed_copy_rate)}{note}"
    return f"B/E in [{fmt(cfg.r_min)}, {fmt(cfg.r_max)}]"


def effective_settings_table(config: LoadedConfig) -> str:
    settings = config.settings
    head = (
        f"config {config.path or '-'} (version {config.version}): mode {settings.mode}, "
        f"bankroll {usd(settings.bankroll_usdc)}, {len(config.leaders)} leader(s) followed"
    )
    rows = []
    for cfg in sorted(config.leaders.values(), key=lambda c: c.name):
        rails = cfg.rails
        dynamic = cfg.mode is Mode.BUDGETED_DYNAMIC
        rows.append(
            [
                cfg.name,
                cfg.address,
                cfg.mode.value,
                rate_rule(cfg),
                usd(cfg.budget_usdc) if dynamic else "-",
                cfg.enforcement.value if dynamic else "-",
                usd(rails.min_leader_trade_notional_usdc),
                f"{usd(rails.min_exec_notional_usdc)}–{usd(rails.max_exec_notional_usdc)}",
                pct(rails.max_trade_pct_bankroll),
                fmt(rails.max_price_per_share),
                f"ON {fmt(cfg.netting.netting_window_s)}s" if cfg.netting.enabled else "OFF",
            ]
        )
    body = table(
        [
            "leader",
            "address",
            "mode",
            "rate",
            "budget",
            "enforce",
            "min leader",
            "exec range",
            "max %bank",
            "max price",
            "netting",
        ],
        rows,
    )
    extra = [f"not followed (enabled: false): {a}" for a in config.disabled]
    return "\n".join([head, "", body, *extra])


def summary_table(result: ReplayResult) -> str:
    rows = []
    for s in result.leaders:
        data = s.to_json()
        top = sorted(s.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        rows.append(
            [
                s.name,
                s.mode,
                usd(s.budget),
                str(s.trades),
                str(data["executed"]),
                str(data["capped"]),
                str(data["skipped"]),
                str(data["deferred"]),
                str(data["failed"]),
                usd(s.exec_notional),
                usd(s.attributed_exposure),
                pct(s.utilization),
                ", ".join(f"{code} {n}" for code, n in top) or "-",
            ]
        )
    body = table(
        [
            "leader",
            "mode",
            "budget",
            "trades",
            "exec",
            "capped",
            "skipped",
            "deferred",
            "failed",
            "exec $",
            "exposure",
            "util",
            "top reasons",
        ],
        rows,
        right={2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
    )
    stats = result.stats
    ignored = sum(stats.non_trade.values())
    tail = (
        f"{result.decisions} decisions from {stats.rows} rows: {stats.trades} trades of followed "
        f"leaders ({result.duplicates} duplicates), {ignored} non-trade rows, "
        f"{stats.other_wallet} rows of other wallets, {stats.malformed} malformed"
    )
    return body + "\n" + tail
