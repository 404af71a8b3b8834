"""One structlog setup for the whole process: JSON lines on stdout (console on a TTY), ISO UTC
timestamps, tracebacks WITHOUT local variables, and secrets redacted whatever the level.

Redaction works three ways: by key name (`private_key`, `secret`, `passphrase`, `signature`,
`authorization`, `POLY_*` headers…), by value (every secret registered with `register_secret`,
anywhere inside any string), and by shape (a 0x + 64-hex value in free text: a private key looks
exactly like that). Fields that legitimately hold 64-hex ids (transaction hashes, condition
ids, order hashes) are named in `HEX_ID_FIELDS` and kept readable. The standard library's
loggers (aiohttp, httpx, the Polymarket SDK) go through the same chain.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
SECRET_KEY_PARTS = (
    "private_key",
    "privatekey",
    "secret",
    "passphrase",
    "password",
    "signature",
    "authorization",
    "api_key",
    "apikey",
    "poly_",
    "credential",
    "bearer",
    "status_token",
)
# Fields whose values are public 64-hex identifiers, not keys.
HEX_ID_FIELDS = frozenset(
    {
        "tx_hash",
        "transaction_hash",
        "transactionHash",
        "condition_id",
        "conditionId",
        "order_hash",
        "order_id",
        "orderID",
        "market",
        "intent_id",
        "decision_id",
        "trade_id",
    }
)
HEX64 = re.compile(r"0x[0-9a-fA-F]{64}")
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Make sure `value` (and its 0x-less / lower-case forms) never reaches a log line."""
    global _shortest
    if not value or len(value) < 8:
        return
    for form in {value, value.lower(), value.removeprefix("0x"), value.removeprefix("0x").lower()}:
        if len(form) >= 8:
            _secrets.add(form)
            _shortest = min(_shortest, len(form))


# A string shorter than this can hold neither a registered secret nor a 0x + 64-hex value,
# so most fields (prices, names, reason codes) skip the scans entirely.
_shortest = 66


def redact_text(text: str) -> str:
    if len(text) < _shortest:
        return text
    # longest first: the 0x-prefixed form before its bare form, or "0x[redacted]" is left
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return HEX64.sub(REDACTED, text)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def _clean(key: str, value: Any) -> Any:
    if _is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        if len(value) < _shortest:
            return value
        if key in HEX_ID_FIELDS:
            for secret in _secrets:
                if secret in value:
                    return REDACTED
            return value
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(key, v) for v in value]
    return value


def redact(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """structlog processor: runs last before rendering, on every event."""
    for key in list(event):
        event[key] = _clean(key, event[key])
    return event


class _NamedWriter(structlog.WriteLogger):
    """structlog's plain file writer, remembering the name it was created with."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriterFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriter:
        return _NamedWriter(self._file, str(args[0]) if args else "polycopy")


def _add_logger_name(logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    if "logger" not in event:
        event["logger"] = getattr(logger, "name", "polycopy")
    return event


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        ExceptionRenderer(ExceptionDictTransformer(show_locals=False, use_rich=False)),
        structlog.processors.UnicodeDecoder(),
        redact,
    ]


def configure_logging(
    level: str = "INFO", fmt: str | None = None, stream: TextIO | None = None
) -> None:
    """JSON lines on `stream` (stdout), or a readable console format when `fmt == "console"`
    (default: console on a TTY).

    polycopy's own events are rendered by structlog and written straight to the stream (the
    hot path: one `copy_decided` per leader trade); the standard library's loggers (aiohttp,
    the SDK) go through a logging handler with the same processors.
    """
    out = stream or sys.stdout
    if fmt is None:
        fmt = "console" if out.isatty() else "json"
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=_plain_exc)
    else:
        renderer = structlog.processors.JSONRenderer(default=str)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    global _fast
    _fast = (out, numeric) if fmt == "json" else None
    shared = _shared_processors()
    structlog.configure(
        processors=[_add_logger_name, *shared, renderer],
        logger_factory=_NamedWriterFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[_drop_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("aiohttp.access", "httpx", "httpcore", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, numeric))


# --- the hot path: one pre-rendered JSON record per decision ----------------------------------
_fast: tuple[TextIO, int] | None = None  # (stream, level) when JSON lines are configured


def emit_record(logger: str, event: str, record_json: str, level: int = logging.INFO) -> bool:
    """Write one log line whose fields are an already rendered JSON object (`record_json`,
    e.g. `Decision.to_json()`) plus the usual `event`, `logger`, `level`, `timestamp` and the
    bound context — without the per-field processor chain, which costs more than the decision
    it reports. Only for records of public data (ids, numbers, reason codes); the line is
    still scanned for every registered secret and goes the normal way if one is found.
    False when not written (console format, or the level filtered out): log it the usual way.
    """
    if _fast is None or not record_json.startswith("{") or len(record_json) < 3:
        return False
    stream, threshold = _fast
    if level < threshold:
        return True  # filtered out, as the normal path would
    if any(secret in record_json for secret in _secrets):
        return False
    context = structlog.contextvars.get_contextvars()
    tail = {
        **{k: _clean(k, v) for k, v in context.items()},
        "event": event,
        "logger": logger,
        "level": logging.getLevelName(level).lower(),
        "timestamp": _utc_now(),
    }
    stream.write(record_json[:-1] + "," + json.dumps(tail, default=str)[1:] + "\n")
    stream.flush()
    return True


def _utc_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _drop_meta(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    event.pop("_record", None)
    event.pop("_from_structlog", None)
    return event


def _plain_exc(sio: TextIO, exc_info: Any) -> None:
    # console mode: the exception as text, already redacted by the chain above
    structlog.dev.plain_traceback(sio, exc_info)


def bind(**values: Any) -> None:
    """Fields added to every following log line of this context (e.g. `mode`)."""
    structlog.contextvars.bind_contextvars(**values)


def get_logger(name: str = "polycopy") -> Any:
    return structlog.get_logger(name)


def scrub(mapping: MutableMapping[str, Any], keys: Iterable[str] = ()) -> dict[str, Any]:
    """A redacted copy of a mapping (for /status, error reports)."""
    return {k: _clean(k, v) for k, v in mapping.items() if k not in set(keys)}
