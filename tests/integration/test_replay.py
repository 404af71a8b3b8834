"""Replay on the real recorded tapes in ../shared/data: invariants on every record,
byte-identical reruns, the command line and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from polycopy.cli import main
from polycopy.config import LoadedConfig, load_config, parse_config
from polycopy.domain.reasons import Outcome, Reason
from polycopy.replay import ReplayResult, replay

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
FIELDS = (
    "decision_id",
    "ts",
    "event_ts",
    "leader",
    "leader_name",
    "asset",
    "condition_id",
    "side",
    "leader_price",
    "leader_size",
    "leader_notional",
    "mode",
    "enforcement",
    "rate",
    "leader_exposure",
    "budget",
    "target_notional",
    "exec_notional",
    "exec_shares",
    "exec_price",
    "outcome",
    "reasons",
    "attributed_exposure",
    "headroom",
    "netted_ids",
)
GABAGOOL = "0x6031b6eed1c97e853c6e0f03ad3ce3529351f96d"
CRYING = "0x961afce6bd9aec79c5cf09d2d4dac2b434b23361"
OAT = "0xd0d6053c3c37e727402d84c14069780d360993aa"
DEEDDIT = "0x09b428f7c2b469786286214aa5c90dd9015f7320"


def run(
    config: LoadedConfig, tapes: list[Path], positions: list[Path] = ()
) -> tuple[str, ReplayResult]:  # type: ignore[assignment]
    out = io.StringIO()
    result = replay(config, tapes, out, positions=positions)
    return out.getvalue(), result


def check_records(text: str, config: LoadedConfig) -> list[dict[str, Any]]:
    """Every SPEC §4 field on every record, and the policy's invariants."""
    records = [json.loads(line) for line in text.splitlines()]
    held: dict[tuple[str, str], Decimal] = {}
    for r in records:
        assert set(FIELDS) <= set(r), set(FIELDS) - set(r)
        assert r["outcome"] in {o.value for o in Outcome}
        assert all(code in Reason.__members__ for code in r["reasons"])
        cfg = config.leaders[r["leader"]]
        shares = Decimal(r["exec_shares"])
        key = (r["leader"], r["asset"])
        if r["side"] == "BUY":
            held[key] = held.get(key, Decimal(0)) + shares
        else:
            assert shares <= held.get(key, Decimal(0))  # never sells what it does not hold
            held[key] = held.get(key, Decimal(0)) - shares
        if shares and r["side"] == "BUY":
            assert Decimal(r["exec_notional"]) <= cfg.rails.max_exec_notional_usdc
            if cfg.hard_budget:
                assert Decimal(r["attributed_exposure"]) <= Decimal(r["budget"])
        if r["mode"] == "BUDGETED_DYNAMIC" and r["rate"] is not None:
            assert cfg.r_min <= Decimal(r["rate"]) <= cfg.r_max
        if r["headroom"] is not None:
            assert Decimal(r["headroom"]) == Decimal(r["budget"]) - Decimal(
                r["attributed_exposure"]
            )
    return records


def schmidters(shared: Path) -> list[Path]:
    return sorted((shared / "activity").glob("Schmidters__*.csv"))


def test_two_leaders_sharing_markets(shared_data: Path) -> None:
    config = parse_config(
        {
            "sizing": {"sizing_mode_default": "BUDGETED_DYNAMIC"},
            "leaders": [
                {"address": GABAGOOL, "name": "gabagool22", "budget_usdc": 60},
                {"address": CRYING, "name": "CRYINGLITTLEBABY", "budget_usdc": 40},
            ],
        },
        environ={},
    )
    text, result = run(config, schmidters(shared_data))
    records = check_records(text, config)
    assert result.stats.malformed == 0
    assert {s.name: s.trades for s in result.leaders} == {
        "CRYINGLITTLEBABY": 1448,
        "gabagool22": 3085,
    }
    assert sum(result.stats.non_trade.values()) > 0  # MERGE/REDEEM rows counted, not copied
    shared_assets = {r["asset"] for r in records if r["leader"] == GABAGOOL} & {
        r["asset"] for r in records if r["leader"] == CRYING
    }
    assert shared_assets  # the two leaders trade the same tokens, kept apart by attribution
    assert any(r["outcome"] in ("EXECUTED", "CAPPED") for r in records)


def test_volume_whale_uncommon_oat(shared_data: Path) -> None:
    config = parse_config(
        {"leaders": [{"address": OAT, "name": "Uncommon-Oat", "fixed_copy_rate": 0.05}]}, environ={}
    )
    text, result = run(
        config, [shared_data / "activity" / "sellersja01__polybotanalysis__trades_24h.json"]
    )
    records = check_records(text, config)
    assert len(records) == 3444
    assert result.stats.non_trade["REDEEM"] == 56
    outcomes = {r["outcome"] for r in records}
    assert {"SKIPPED", "EXECUTED"} <= outcomes
    sells = [r for r in records if r["side"] == "SELL" and r["outcome"] == "EXECUTED"]
    assert sells  # proportional exits were mirrored


def test_mega_whale_with_positions_snapshot(shared_data: Path) -> None:
    config = load_config(DEMO, environ={})
    text, result = run(
        config,
        [shared_data / "activity" / "edulabrador__polymarket-smart-money__activity_all.json"],
        [shared_data / "positions" / "edulabrador__polymarket-smart-money__positions.json"],
    )
    records = check_records(text, config)
    whale = next(s for s in result.leaders if s.name == "whale")
    assert whale.trades == 42
    flushes = sum(1 for r in records if "NETTING_FLUSH" in r["reasons"])
    assert len(records) == 42 + flushes  # one record per trade, one more per netting flush
    bought = [r for r in records if r["side"] == "BUY" and r["exec_shares"] != "0"]
    assert bought
    assert max(Decimal(r["attributed_exposure"]) for r in bought) <= Decimal("30")
    first = records[0]
    assert first["leader_exposure"] == "0"  # every snapshot position was resolved: E_u starts at 0
    assert Decimal(records[-1]["leader_exposure"]) > 1_000_000  # the tape's $75k–$581k buys


@pytest.mark.parametrize(
    "name",
    [p.name for p in sorted((REPO.parent / "shared" / "data" / "activity").glob("*"))],
)
def test_every_recorded_tape_replays_with_the_demo_config(shared_data: Path, name: str) -> None:
    config = load_config(DEMO, environ={})
    text, result = run(config, [shared_data / "activity" / name])
    check_records(text, config)
    assert result.stats.malformed == 0
    assert result.stats.rows == result.stats.trades + result.stats.other_wallet + sum(
        result.stats.non_trade.values()
    )


def _wallets(path: Path) -> set[str]:
    """Every wallet with a TRADE row in a recorded tape, read straight from the file."""
    if path.suffix == ".csv":
        import csv

        rows: list[dict[str, Any]] = list(csv.DictReader(path.read_text().splitlines()))
    else:
        data = json.loads(path.read_text())
        rows = data["data"] if isinstance(data, dict) else data
    return {
        str(r.get("proxyWallet") or r.get("proxy_wallet")).lower()
        for r in rows
        if r.get("type", "TRADE") == "TRADE"
    }


@pytest.mark.parametrize(
    "name",
    [p.name for p in sorted((REPO.parent / "shared" / "data" / "activity").glob("*"))],
)
def test_every_recorded_tape_decodes_when_its_wallets_are_followed(
    shared_data: Path, name: str
) -> None:
    """v1 and v2, /activity and /trades, JSON and CSV: every TRADE row of a followed wallet
    becomes exactly one decision, none is malformed."""
    path = shared_data / "activity" / name
    wallets = sorted(_wallets(path))
    if not wallets:  # a REDEEM-only capture: nothing to copy, every row counted as such
        _, result = run(load_config(DEMO, environ={}), [path])
        assert result.stats.rows == sum(result.stats.non_trade.values()) > 0
        return
    config = parse_config(
        {"leaders": [{"address": w, "name": f"w{i}"} for i, w in enumerate(wallets)]}, environ={}
    )
    text, result = run(config, [path])
    records = check_records(text, config)
    assert result.stats.malformed == 0
    assert result.stats.other_wallet == 0
    assert result.stats.trades > 0
    assert len(records) == result.stats.trades - result.duplicates


def test_positions_of_unfollowed_or_repeated_wallets_are_reported(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = shared_data / "positions" / "jm709__pscanner__positions.json"
    kch = json.loads(snapshot.read_text())[0]["proxyWallet"].lower()
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"leaders": [{"address": kch, "name": "kch"}]}))
    tape = shared_data / "activity" / "jm709__pscanner__activity.json"
    other = shared_data / "positions" / "Polymarket__py-sdk__data_v2_positions.json"
    args = ["replay", "--config", str(config), "--tape", str(tape), "--out", str(tmp_path / "o")]
    for positions in (snapshot, snapshot, other):
        args += ["--positions", str(positions)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"more positions of {kch}: added to the earlier ones" in err
    assert "not a followed leader" in err


def test_an_unwritable_output_is_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "d.jsonl"  # a directory that is a file
    tape = REPO.parent / "shared" / "data" / "activity" / "jm709__pscanner__activity.json"
    args = ["replay", "--config", str(DEMO), "--tape", str(tape), "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "cannot write the decisions" in err
    assert "Traceback" not in err


def test_same_input_gives_byte_identical_output(shared_data: Path, tmp_path: Path) -> None:
    tapes = [str(p) for p in schmidters(shared_data)[:6]] + [
        str(shared_data / "activity" / "sellersja01__polybotanalysis__trades_raw.json")
    ]
    outputs = []
    for n in range(2):
        out, summary = tmp_path / f"d{n}.jsonl", tmp_path / f"s{n}.json"
        args = ["replay", "--config", str(DEMO), "--out", str(out), "--summary-json", str(summary)]
        for tape in tapes:
            args += ["--tape", tape]
        assert main(args) == 0
        outputs.append((out.read_bytes(), summary.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count(b"\n") > 100
    summary = json.loads(outputs[0][1])
    keys = {
        "leader",
        "name",
        "mode",
        "budget",
        "trades",
        "executed",
        "capped",
        "skipped",
        "deferred",
        "failed",
        "exec_notional",
        "attributed_exposure",
        "utilization",
        "reasons",
    }
    assert all(keys <= set(s) for s in summary["leaders"])


def test_replay_command_as_a_process(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    tape = shared_data / "activity" / "sellersja01__polybotanalysis__trades_raw.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "polycopy",
            "replay",
            "--config",
            str(DEMO),
            "--tape",
            str(tape),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "leader-c" in proc.stdout
    assert "decisions from 500 rows" in proc.stdout
    assert len(out.read_text().splitlines()) == 500


def test_bad_rows_are_reported_and_do_not_abort(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {
        "proxyWallet": OAT,
        "timestamp": 1773718931,
        "conditionId": "0x" + "9f" * 32,
        "type": "TRADE",
        "size": 100,
        "transactionHash": "0x" + "c5" * 32,
        "price": 0.4,
        "asset": "8504",
        "side": "BUY",
    }
    rows = [
        good,
        {**good, "price": "NaN"},
        {**good, "side": "HODL"},
        {**good, "size": -1},
        {**good, "transactionHash": "0x" + "c6" * 32},
    ]
    tape = tmp_path / "t.json"
    tape.write_text(json.dumps(rows, indent=1))
    code = main(
        ["replay", "--config", str(DEMO), "--tape", str(tape), "--out", str(tmp_path / "o.jsonl")]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert err.count(f"{tape}:") == 3
    assert "price" in err
    assert "side" in err
    assert "size" in err
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2


def test_missing_tape_is_a_runtime_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "replay",
            "--config",
            str(DEMO),
            "--tape",
            str(tmp_path / "none.json"),
            "--out",
            str(tmp_path / "o.jsonl"),
        ]
    )
    assert code == 1
    assert "file not found" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["replay", "--config", str(DEMO)])
    assert info.value.code == 2
