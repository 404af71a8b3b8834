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
