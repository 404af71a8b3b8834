"""The design's $200 example, offline: the same synthetic leader activity replayed twice —
every leader FIXED_RATE at 0.01, then Budgeted Dynamic with budgets 60/60/50/30 — so a
newcomer sees the whale's share of the exposure fall to its budget.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from polycopy.config import LoadedConfig, parse_config
from polycopy.replay import LeaderSummary, ReplayResult, replay
from polycopy.report import pct, table, usd
from polycopy.synth import PRACTICAL_EXAMPLE, ActivityGenerator, to_json_row

DEMO_HOURS = 2.0


def demo_config_data() -> dict[str, Any]:
    """The embedded demo configuration (also at config/demo.yaml)."""
    text = resources.files("polycopy").joinpath("defaults/demo.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def fixed_rate_baseline(data: dict[str, Any]) -> dict[str, Any]:
    """The same leaders and rails, every leader FIXED_RATE at 0.01: how today's bots copy."""
    baseline = dict(data)
    baseline["sizing"] = {
        **data.get("sizing", {}),
        "sizing_mode_default": "FIXED_RATE",
        "fixed_copy_rate_default": "0.01",
    }
    baseline["leaders"] = [{"address": x["address"], "name": x["name"]} for x in data["leaders"]]
    return baseline


def write_synthetic_tape(
    out_dir: Path, seed: int, hours: float = DEMO_HOURS
) -> tuple[Path, list[Path]]:
    """A seeded tape of the example's leaders plus one positions snapshot per leader."""
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = ActivityGenerator(seed)
    snapshots = []
    for profile in PRACTICAL_EXAMPLE:
        rows = [to_json_row(r) for r in generator.positions_snapshot(profile)]
        path = out_dir / f"positions-{profile.name}.json"
        path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        snapshots.append(path)
    trades = [to_json_row(r) for r in generator.take(hours * 3600)]
    tape = out_dir / "tape.json"
    tape.write_text(json.dumps(trades, indent=1) + "\n", encoding="utf-8")
    return tape, snapshots


def run_replay_demo(out_dir: Path, seed: int = 7) -> str:
    tape, snapshots = write_synthetic_tape(out_dir, seed)
    data = demo_config_data()
    runs: dict[str, tuple[LoadedConfig, ReplayResult]] = {}
    for label, cfg_data in (("fixed", fixed_rate_baseline(data)), ("budgeted", data)):
        config = parse_config(cfg_data, environ={})
        with (out_dir / f"decisions-{label}.jsonl").open("w", encoding="utf-8") as out:
            runs[label] = (config, replay(config, [tape], out, positions=snapshots))
    return side_by_side(runs["fixed"][1], runs["budgeted"][1], tape, out_dir)


def side_by_side(fixed: ReplayResult, budgeted: ReplayResult, tape: Path, out_dir: Path) -> str:
    total_fixed = sum((s.attributed_exposure for s in fixed.leaders), Decimal(0))
    total_budget = sum((s.attributed_exposure for s in budgeted.leaders), Decimal(0))
    by_leader = {s.leader: s for s in budgeted.leaders}
    rows = []
    for f in fixed.leaders:
        b = by_leader[f.leader]
        rows.append(
            [
                f.name,
                str(f.trades),
                _copied(f),
                usd(f.attributed_exposure),
                pct(_share(f, total_fixed)),
                "|",
                _copied(b),
                usd(b.attributed_exposure),
                pct(_share(b, total_budget)),
                usd(b.budget),
                pct(b.utilization),
            ]
        )
    rows.append(
        [
            "total",
            str(sum(s.trades for s in fixed.leaders)),
            "",
            usd(total_fixed),
            "",
            "|",
            "",
            usd(total_budget),
            "",
            usd(sum((s.budget or Decimal(0) for s in budgeted.leaders), Decimal(0))),
            "",
        ]
    )
    body = table(
        [
            "leader",
            "trades",
            "copied",
            "exposure",
            "share",
            "|",
            "copied",
            "exposure",
            "share",
            "budget",
            "util",
        ],
        rows,
        right={1, 2, 3, 4, 6, 7, 8, 9, 10},
    )
    whale_fixed = next((s for s in fixed.leaders if s.name == "whale"), None)
    whale_budget = by_leader.get(whale_fixed.leader) if whale_fixed else None
    lines = [
        "polycopy demo — the design's $200 example, replayed offline",
        f"synthetic tape: {tape} ({fixed.stats.trades} leader trades over {DEMO_HOURS:g} h)",
        "",
        "left: every leader FIXED_RATE 0.01    right: BUDGETED_DYNAMIC, HARD budgets 60/60/50/30",
        body,
    ]
    if whale_fixed and whale_budget:
        lines += [
            "",
            "The whale's share of copied exposure: "
            f"{pct(_share(whale_fixed, total_fixed))} at a fixed rate, "
            f"{pct(_share(whale_budget, total_budget))} with its {usd(whale_budget.budget)} "
            f"budget ({pct(whale_budget.utilization)} used).",
        ]
    lines += [
        "Decisions, one JSON line per leader trade with its reason codes: "
        f"{out_dir}/decisions-fixed.jsonl, {out_dir}/decisions-budgeted.jsonl",
    ]
    return "\n".join(lines)


def _copied(summary: LeaderSummary) -> str:
    data = summary.to_json()
    return str(data["executed"] + data["capped"])


def _share(summary: LeaderSummary, total: Decimal) -> Decimal | None:
    return summary.attributed_exposure / total if total else None
