"""The ingest configuration keys: defaults, environment overrides, validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from polycopy.config import ConfigError, IngestSection, parse_config


def test_defaults_stay_below_the_venue_limits() -> None:
    ingest = IngestSection()
    assert ingest.ws_stall_s == 15
    assert ingest.ws_ping_interval_s == 5
    assert ingest.backfill_overlap_s == 120
    assert ingest.exposure_refresh_s == 30
    assert ingest.rest_rate_limit_per_10s < 1000  # Data API: 1000 per 10 s
    assert ingest.positions_rate_limit_per_10s < 150  # /positions: 150 per 10 s


def test_every_ingest_key_is_an_environment_override() -> None:
    environ = {
        "POLYCOPY_WS_STALL_S": "3",
        "POLYCOPY_REST_RATE_LIMIT_PER_10S": "200",
        "POLYCOPY_BACKFILL_OVERLAP_S": "300",
        "POLYCOPY_MAX_BACKFILL_AGE_S": "3600",
    }
    ingest = parse_config({}, environ=environ).settings.ingest
    assert ingest.ws_stall_s == Decimal(3)
    assert ingest.rest_rate_limit_per_10s == 200
    assert ingest.backfill_overlap_s == 300
    assert ingest.max_backfill_age_s == 3600


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ws_stall_s", 0),
        ("poll_interval_s", -1),
        ("queue_maxsize", 0),
        ("rest_max_attempts", 0),
        ("backfill_concurrency", 0),
        ("ws_stall", 3),
    ],
)
def test_bad_values_name_their_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"ingest": {key: value}}, environ={})
    assert f"ingest.{key}" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "most"),
    [
        ("rest_rate_limit_per_10s", 901, 900),  # venue: 1000 per 10 s
        ("rest_rate_limit_per_10s", 1_000_000, 900),
        ("positions_rate_limit_per_10s", 136, 135),  # venue: 150 per 10 s
    ],
)
def test_rate_limits_above_the_venue_are_refused_with_their_key(
    key: str, value: int, most: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"ingest": {key: value}}, environ={})
    assert f"ingest.{key}: {value} is above {most}" in str(caught.value)
    with pytest.raises(ConfigError) as from_env:  # an environment override is checked too
        parse_config({}, environ={f"POLYCOPY_{key.upper()}": str(value)})
    assert f"ingest.{key}" in str(from_env.value)
    ok = parse_config({"ingest": {key: most}}, environ={}).settings.ingest
    assert getattr(ok, key) == most


def test_the_simulator_on_loopback_has_no_venue_limit() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        cfg = parse_config(
            {"ingest": {"rest_rate_limit_per_10s": 100_000}, "endpoints": {"data_api_url": url}},
            environ={},
        )
        assert cfg.settings.ingest.rest_rate_limit_per_10s == 100_000
    with pytest.raises(ConfigError):
        parse_config(
            {
                "ingest": {"rest_rate_limit_per_10s": 100_000},
                "endpoints": {"data_api_url": "https://data-api.polymarket.com.evil.example"},
            },
            environ={},
        )
