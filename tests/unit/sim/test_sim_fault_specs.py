"""Fault specs from JSON, matching, counting and seeded probability."""

from __future__ import annotations

from decimal import Decimal

import pytest

from polycopy.sim.faults import (
    Fault,
    Faults,
    PartialFill,
    RateLimit,
    Silence,
    Slow,
    TickSizeChange,
    check_fault,
    fault_from_json,
    fault_to_json,
)


def test_json_round_trip_and_decimal_fields() -> None:
    spec = fault_from_json({"fault": "partial_fill", "max_shares": "3.2", "times": 2})
    assert spec == PartialFill(max_shares=Decimal("3.2"), times=2)
    assert fault_to_json(spec)["max_shares"] == "3.2"
    assert fault_from_json(fault_to_json(spec)) == spec


@pytest.mark.parametrize(
    "body", [{"fault": "nope"}, {"fault": "slow", "delay": 1}, {"path": "/x"}, ["slow"]]
)
def test_bad_json_is_refused_with_a_reason(body: object) -> None:
    with pytest.raises(ValueError, match=r"fault|unknown|object"):
        fault_from_json(body)  # type: ignore[arg-type]


def test_paths_methods_times_and_prefixes() -> None:
    faults = Faults(seed=1)
    faults.arm(RateLimit(path="/v2/*", method="GET", times=2))
    assert faults.take_http("POST", "/v2/activity") is None
    assert faults.take_http("GET", "/activity") is None
    assert faults.take_http("GET", "/v2/activity") is not None
    assert faults.take_http("GET", "/v2/trades") is not None
    assert faults.take_http("GET", "/v2/trades") is None  # used up
    assert faults.http_armed is False


def test_probability_is_reproducible_for_a_seed() -> None:
    def draws(seed: int) -> list[bool]:
        faults = Faults(seed=seed)
        faults.arm(RateLimit(probability=0.3, times=None))
        return [faults.take_http("GET", "/x") is not None for _ in range(200)]

    assert draws(5) == draws(5)
    assert 30 < sum(draws(5)) < 90


def test_immediate_faults_are_applied_not_armed() -> None:
    applied: list[object] = []
    faults = Faults()
    faults.on_immediate(applied.append)
    faults.arm(TickSizeChange(token_id="1", tick_size=Decimal("0.001")))
    assert applied == [TickSizeChange(token_id="1", tick_size=Decimal("0.001"))]
    assert faults.listing() == []
    faults.arm(Silence(channel="rtds"))
    assert faults.silent("rtds") is True
    assert faults.silent("market") is False
    with pytest.raises(ValueError, match="channel"):
        faults.arm(Silence(channel="nowhere"))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (RateLimit(probability=1.5), "probability"),
        (RateLimit(times=0), "times"),
        (PartialFill(fraction=Decimal(0)), "fraction"),
        (PartialFill(max_shares=Decimal(-1)), "max_shares"),
        (TickSizeChange(token_id="1", tick_size=Decimal("0.02")), "tick_size"),
        (Silence(channel="nowhere"), "channel"),
    ],
)
def test_specs_that_cannot_fire_as_meant_are_refused(spec: Fault, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        check_fault(spec)
    with pytest.raises(ValueError, match=field):
        Faults().arm(spec)


def test_json_field_types_are_checked() -> None:
    with pytest.raises(ValueError, match="delay_s"):
        fault_from_json({"fault": "slow", "delay_s": "1"})
    with pytest.raises(ValueError, match="close"):
        fault_from_json({"fault": "accept_then_hang", "close": 1})
    assert fault_from_json({"fault": "slow", "delay_s": 1}) == Slow(delay_s=1)
    assert fault_from_json({"fault": "rate_limit", "times": None}) == RateLimit(times=None)
