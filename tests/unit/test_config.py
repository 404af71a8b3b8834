"""Configuration (SPEC §3): inheritance, environment overrides, every validation rule."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from polycopy.cli import EXIT_CONFIG, main
from polycopy.config import (
    ConfigError,
    immutable_changes,
    load_config,
    parse_config,
    restart_required_changes,
)
from polycopy.domain.reasons import Enforcement, Mode

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20


def test_example_and_demo_configs_are_valid() -> None:
    repo = Path(__file__).resolve().parents[2]
    for name in ("polycopy.example.yaml", "demo.yaml"):
        loaded = load_config(repo / "config" / name, environ={})
        assert loaded.leaders, name


def test_inheritance_and_overrides() -> None:
    cfg = parse_config(
        {
            "sizing": {
                "sizing_mode_default": "FIXED_RATE",
                "fixed_copy_rate_default": 0.01,
                "budget_enforcement_default": "SOFT",
            },
            "rails": {"max_exec_notional_usdc": 25},
            "leaders": [
                {
                    "address": A.upper().replace("0X", "0x"),
                    "name": "whale",
                    "sizing_mode_override": "BUDGETED_DYNAMIC",
                    "budget_usdc": 30,
                    "budget_enforcement": "HARD",
                    "rails": {"max_exec_notional_usdc": 5},
                    "netting": {"small_trade_netting_mode": True, "netting_window_s": 3},
                },
                {"address": B, "name": "small"},
            ],
        },
        environ={},
    )
    whale, small = cfg.leaders[A], cfg.leaders[B]
    assert whale.mode is Mode.BUDGETED_DYNAMIC
    assert whale.enforcement is Enforcement.HARD
    assert whale.rails.max_exec_notional_usdc == Decimal("5")
    assert whale.netting.enabled
    assert whale.netting.netting_window_s == Decimal("3")
    assert small.mode is Mode.FIXED_RATE
    assert small.fixed_copy_rate == Decimal("0.01")
    assert small.rails.max_exec_notional_usdc == Decimal("25")
    assert small.enforcement is Enforcement.SOFT
    assert whale.config_version == cfg.version


def test_bare_on_off_mean_the_same_as_quoted_words() -> None:
    text = (
        "netting:\n  small_trade_netting_mode: ON\n"
        f"leaders:\n  - address: '{A}'\n    netting: {{small_trade_netting_mode: OFF}}\n"
    )
    cfg = parse_config(yaml.safe_load(text), environ={})
    quoted = parse_config(
        {
            "netting": {"small_trade_netting_mode": "ON"},
            "leaders": [{"address": A, "netting": {"small_trade_netting_mode": "OFF"}}],
        },
        environ={},
    )
    assert cfg.settings.netting.small_trade_netting_mode.value == "ON"
    assert cfg.leaders[A].netting.enabled is False
    assert cfg.version == quoted.version


def test_master_switch_off_falls_back_with_a_reason_flag() -> None:
    cfg = parse_config(
        {
            "sizing": {"budgeted_dynamic_enabled": False},
            "leaders": [{"address": A, "sizing_mode_override": "BUDGETED_DYNAMIC"}],
        },
        environ={},
    )
    assert cfg.leaders[A].mode is Mode.FIXED_RATE
    assert cfg.leaders[A].mode_fell_back


def test_environment_overrides_the_file() -> None:
    env = {
        "POLYCOPY_SIZING_MODE_DEFAULT": "BUDGETED_DYNAMIC",
        "POLYCOPY_FIXED_COPY_RATE_DEFAULT": "0.02",
        "POLYCOPY_BUDGETED_DYNAMIC_ENABLED": "false",
        "POLYCOPY_BUDGET_R_MIN_DEFAULT": "0.001",
        "POLYCOPY_BUDGET_R_MAX_DEFAULT": "0.2",
        "POLYCOPY_BUDGET_ENFORCEMENT_DEFAULT": "SOFT",
        "POLYCOPY_MIN_EXEC_NOTIONAL_USDC": "2",
        "POLYCOPY_MODE": "paper",
        "POLYCOPY_BANKROLL_USDC": "500",
        "POLYCOPY_SMALL_TRADE_NETTING_MODE": "ON",
        "POLYCOPY_STATUS_LISTEN": "127.0.0.1:9999",
        "POLYCOPY_PRIVATE_KEY": "not a config key and never read here",
    }
    cfg = parse_config({"bankroll_usdc": 100, "rails": {"min_exec_notional_usdc": 1}}, environ=env)
    s = cfg.settings
    assert s.sizing.sizing_mode_default is Mode.BUDGETED_DYNAMIC
    assert s.sizing.fixed_copy_rate_default == Decimal("0.02")
    assert s.sizing.budgeted_dynamic_enabled is False
    assert s.sizing.budget_r_min_default == Decimal("0.001")
    assert s.sizing.budget_r_max_default == Decimal("0.2")
    assert s.sizing.budget_enforcement_default is Enforcement.SOFT
    assert s.rails.min_exec_notional_usdc == Decimal("2")
    assert s.mode == "paper"
    assert s.bankroll_usdc == Decimal("500")
    assert s.netting.small_trade_netting_mode == "ON"
    assert s.status.listen == "127.0.0.1:9999"


def test_budgets_above_bankroll_warn_but_load() -> None:
    cfg = parse_config(
        {
            "bankroll_usdc": 50,
            "sizing": {"sizing_mode_default": "BUDGETED_DYNAMIC"},
            "leaders": [{"address": A, "budget_usdc": 40}, {"address": B, "budget_usdc": 40}],
        },
        environ={},
    )
    assert any("budgets add up to 80" in w for w in cfg.warnings)


def test_reload_classifies_changes() -> None:
    old = parse_config({}, environ={}).settings
    new = parse_config(
        {
            "mode": "live",
            "rails": {"min_exec_notional_usdc": 2},
            "ingest": {"poll_interval_s": 3, "max_event_age_s": 5},
        },
        environ={},
    ).settings
    assert immutable_changes(old, new) == ["mode"]
    # rails and max_event_age_s apply at once; the poll interval needs a restart
    assert restart_required_changes(old, new) == ["ingest.poll_interval_s"]


LEADER_OK: dict[str, Any] = {"address": A}
INVALID = [
    ({"leaders": [{"address": A, "budgte_usdc": 1}]}, "leaders[0].budgte_usdc: unknown key"),
    ({"sizing": {"fixed_copy_rate_default": "lots"}}, "sizing.fixed_copy_rate_default"),
    ({"bankroll_usdc": -1}, "bankroll_usdc"),
    ({"rails": {"max_exec_notional_usdc": -5}}, "rails.max_exec_notional_usdc"),
    ({"leaders": [{"address": A, "budget_usdc": -3}]}, "leaders[0].budget_usdc"),
    ({"sizing": {"fixed_copy_rate_default": -0.1}}, "sizing.fixed_copy_rate_default"),
    ({"leaders": [{"address": A, "budget_r_max": -0.1}]}, "leaders[0].budget_r_max"),
    (
        {"sizing": {"budget_r_min_default": 0.5, "budget_r_max_default": 0.1}},
        "sizing.budget_r_min_default",
    ),
    ({"leaders": [{"address": A, "budget_r_min": 0.2}]}, "leaders[0].budget_r_min"),
    ({"rails": {"min_exec_notional_usdc": 30}}, "rails.min_exec_notional_usdc"),
    (
        {"leaders": [{"address": A, "rails": {"min_exec_notional_usdc": 50}}]},
        "leaders[0].rails.min_exec_notional_usdc",
    ),
    ({"rails": {"max_price_per_share": 1}}, "rails.max_price_per_share"),
    ({"rails": {"max_price_per_share": 0}}, "rails.max_price_per_share"),
    (
        {"leaders": [{"address": A, "rails": {"max_price_per_share": 1.2}}]},
        "leaders[0].rails.max_price_per_share",
    ),
    ({"rails": {"max_trade_pct_bankroll": 0}}, "rails.max_trade_pct_bankroll"),
    ({"rails": {"max_trade_pct_bankroll": 1.5}}, "rails.max_trade_pct_bankroll"),
    ({"leaders": [{"address": "0x1234"}]}, "leaders[0].address"),
    (
        {"leaders": [{"address": A}, {"address": A.upper().replace("0X", "0x")}]},
        "leaders[1].address: duplicate",
    ),
    (
        {"sizing": {"sizing_mode_default": "BUDGETED_DYNAMIC"}, "leaders": [LEADER_OK]},
        "leaders[0].budget_usdc: required",
    ),
    (
        {"leaders": [{"address": A, "sizing_mode_override": "BUDGETED_DYNAMIC"}]},
        "leaders[0].budget_usdc: required",
    ),
    ({"sizing": {"sizing_mode_default": "SOMETIMES"}}, "sizing.sizing_mode_default"),
    ({"mode": "yolo"}, "mode"),
    ({"unknown_top": 1}, "unknown_top: unknown key"),
    ({"leaders": {"address": A}}, "leaders"),
    ({"sizing": {"budget_r_max_default": "NaN"}}, "sizing.budget_r_max_default"),
]


@pytest.mark.parametrize(("data", "expected"), INVALID, ids=[e for _, e in INVALID])
def test_invalid_configs_name_the_key_path(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ={})
    assert any(p.startswith(expected) or expected in p for p in info.value.problems), (
        info.value.problems
    )


def test_type_errors_and_broken_rules_are_reported_in_one_run() -> None:
    data = {
        "bankroll_usdc": -1,
        "rails": {"max_price_per_share": 2, "min_exec_notional_usdc": "x"},
        "leaders": [{"address": "0x1"}, {**LEADER_OK, "fixed_copy_rate": "lots"}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ={})
    problems = info.value.problems
    assert problems[0].startswith("bankroll_usdc:")
    assert any(p.startswith("rails.min_exec_notional_usdc:") for p in problems)
    assert any(p.startswith("leaders[1].fixed_copy_rate:") for p in problems)
    # the rules, checked on the rest of the file
    assert any(p.startswith("rails.max_price_per_share: must be inside (0, 1)") for p in problems)
    assert any(p.startswith("leaders[0].address: not a 0x-prefixed") for p in problems)
    # a rule about a key in error would be a guess: min_exec ≤ max_exec is not reported
    assert not any("greater than max_exec" in p for p in problems)


def test_bad_environment_values_and_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="POLYCOPY_MAX_EXEC_NOTINAL_USDC: unknown environment"):
        parse_config({}, environ={"POLYCOPY_MAX_EXEC_NOTINAL_USDC": "5"})
    with pytest.raises(ConfigError, match=r"rails\.max_exec_notional_usdc"):
        parse_config({}, environ={"POLYCOPY_MAX_EXEC_NOTIONAL_USDC": "five"})


def test_master_switch_off_does_not_require_budgets() -> None:
    parse_config(
        {
            "sizing": {
                "sizing_mode_default": "BUDGETED_DYNAMIC",
                "budgeted_dynamic_enabled": False,
            },
            "leaders": [LEADER_OK],
        },
        environ={},
    )


# --- the command ------------------------------------------------------------------------------
def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "polycopy.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["check-config", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("data", "expected"), INVALID, ids=[e for _, e in INVALID])
def test_check_config_exits_78_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], expected: str
) -> None:
    code, out, err = _check(tmp_path, yaml.safe_dump(data), capsys)
    assert code == EXIT_CONFIG
    assert expected.split(":")[0] in err
    assert "Traceback" not in err
    assert out == ""


def test_check_config_reports_broken_yaml_and_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _check(tmp_path, "leaders: [\n  - address: x\n", capsys)
    assert code == EXIT_CONFIG
    assert "line" in err
    assert main(["check-config", "--config", str(tmp_path / "nope.yaml")]) == EXIT_CONFIG
    assert "file not found" in capsys.readouterr().err


def test_check_config_prints_each_leaders_effective_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = yaml.safe_dump(
        {
            "leaders": [
                {
                    "address": A,
                    "name": "whale",
                    "sizing_mode_override": "BUDGETED_DYNAMIC",
                    "budget_usdc": 30,
                    "rails": {"max_exec_notional_usdc": 5},
                },
                {"address": B, "name": "small"},
            ]
        }
    )
    code, out, _ = _check(tmp_path, text, capsys)
    assert code == 0
    whale = next(line for line in out.splitlines() if line.startswith("whale"))
    assert "BUDGETED_DYNAMIC" in whale
    assert "B/E in [0, 0.05]" in whale
    assert "$30.00" in whale
    assert "HARD" in whale
    assert "$5.00" in whale
    small = next(line for line in out.splitlines() if line.startswith("small"))
    assert "FIXED_RATE" in small
    assert "fixed 0.01" in small


def test_example_config_and_readme_cover_every_key() -> None:
    from polycopy.config import SECTIONS, TOP_LEVEL_KEYS, LeaderSection
    from polycopy.domain.reasons import Reason

    repo = Path(__file__).resolve().parents[2]
    example = yaml.safe_load((repo / "config" / "polycopy.example.yaml").read_text())
    example_text = (repo / "config" / "polycopy.example.yaml").read_text()
    readme = (repo / "README.md").read_text()
    for key in TOP_LEVEL_KEYS:
        assert key in example, key
        assert f"`{key}`" in readme, key
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            assert key in (example.get(section) or {}), f"{section}.{key} missing from the example"
            assert key in readme, f"{section}.{key} missing from the README"
    for key in LeaderSection.model_fields:
        assert key in example_text, f"leaders[].{key} missing from the example"
        assert f"`{key}`" in readme, f"leaders[].{key} missing from the README"
    for reason in Reason:
        assert f"`{reason.value}`" in readme, f"reason {reason.value} not documented"
