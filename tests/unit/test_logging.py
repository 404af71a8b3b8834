"""Secrets never reach a log line: by key, by value, by shape; tracebacks carry no locals."""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest
import structlog

from polycopy.observability.logging import configure_logging, get_logger, register_secret


@pytest.fixture
def canary() -> str:
    key = "0x" + secrets.token_hex(32)
    register_secret(key)
    return key


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    configure_logging("DEBUG", "json", out)
    yield out
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_secret_keys_values_and_shapes_are_redacted(canary: str, stream: io.StringIO) -> None:
    log = get_logger("test")
    log.info(
        "order_submitted",
        private_key=canary,
        headers={"POLY_API_KEY": "abc", "x": canary},
        note=f"signed with {canary[2:]}",
        tx_hash="0x" + "ab" * 32,
    )
    unknown = "0x" + "cd" * 32
    log.warning("free_text", detail=f"looks like a key: {unknown}")
    text = stream.getvalue()
    assert canary not in text
    assert canary[2:] not in text
    first, second = _lines(stream)
    assert first["private_key"] == "[redacted]"
    assert first["headers"] == {"POLY_API_KEY": "[redacted]", "x": "[redacted]"}
    assert first["tx_hash"] == "0x" + "ab" * 32  # public ids stay readable
    assert unknown not in second["detail"]  # type: ignore[operator]


def test_tracebacks_have_no_locals(canary: str, stream: io.StringIO) -> None:
    log = get_logger("test")

    def sign(private_key: str) -> None:
        raise RuntimeError("venue said no")

    try:
        sign(canary)
    except RuntimeError:
        log.exception("order_failed")
    text = stream.getvalue()
    assert canary not in text
    [line] = _lines(stream)
    assert "venue said no" in json.dumps(line["exception"])
    frames = line["exception"][0]["frames"]  # type: ignore[index]
    assert frames
    assert all("locals" not in frame for frame in frames)


def test_standard_library_loggers_share_the_chain(canary: str, stream: io.StringIO) -> None:
    logging.getLogger("polymarket.sdk").error("request failed with key %s", canary)
    [line] = _lines(stream)
    assert canary not in json.dumps(line)
    assert line["level"] == "error"
    assert line["logger"] == "polymarket.sdk"


def test_a_pre_rendered_record_is_the_same_line_as_the_normal_path(
    canary: str, stream: io.StringIO
) -> None:
    """`emit_record` (the decision hot path) writes the fields the processor chain would,
    and a record holding a registered secret goes the normal, redacting way instead."""
    from polycopy.observability.logging import bind, emit_record

    bind(exec_mode="paper")
    record = {"decision_id": "ab" * 16, "exec_notional": "1.5", "reasons": ["EXEC_BELOW_MIN"]}
    assert emit_record("polycopy.daemon", "copy_decided", json.dumps(record))
    get_logger("polycopy.daemon").info("copy_decided", **record)
    fast, slow = _lines(stream)
    assert set(fast) == set(slow)
    for key in set(fast) - {"timestamp"}:
        assert fast[key] == slow[key], key
    assert str(fast["timestamp"]).endswith("Z")

    leaky = json.dumps({**record, "leader_name": f"named {canary}"})
    assert not emit_record("polycopy.daemon", "copy_decided", leaky)  # caller logs normally
    structlog.contextvars.clear_contextvars()


def test_a_pre_rendered_record_respects_the_level_and_the_console_format() -> None:
    from polycopy.observability.logging import emit_record

    out = io.StringIO()
    configure_logging("WARNING", "json", out)
    assert emit_record("polycopy.daemon", "copy_decided", '{"a":1}')  # filtered: nothing
    assert out.getvalue() == ""
    configure_logging("INFO", "console", out)
    assert not emit_record("polycopy.daemon", "copy_decided", '{"a":1}')
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
