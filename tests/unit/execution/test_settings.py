"""The `execution:` config keys: defaults, YAML, `POLYCOPY_<KEY>` overrides, validation."""

from __future__ import annotations

import pytest

from polycopy.config import ConfigError, parse_config
from polycopy.execution.settings import ExecutionSettings


def test_defaults() -> None:
    settings = ExecutionSettings.from_config(parse_config({}).settings.execution)
    assert settings == ExecutionSettings()
    assert settings.order_type == "FAK"
    assert not settings.fok


def test_yaml_and_environment_overrides() -> None:
    loaded = parse_config(
        {"execution": {"order_type": "fok", "order_timeout_s": 3, "book_precheck": False}},
        environ={"POLYCOPY_UNKNOWN_CLOSE_AFTER_S": "30", "POLYCOPY_VENUE_GET_RETRIES": "2"},
    )
    settings = ExecutionSettings.from_config(loaded.settings.execution)
    assert settings.fok
    assert settings.order_timeout_s == 3.0
    assert not settings.book_precheck
    assert settings.unknown_close_after_s == 30.0
    assert settings.get_policy.retries == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [("order_type", "GTC"), ("order_timeout_s", -1), ("venue_get_retries", 99), ("typo_s", 1)],
)
def test_bad_values_name_their_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"execution.{key}"):
        parse_config({"execution": {key: value}})
