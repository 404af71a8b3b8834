"""Faults the simulator injects on command, from Python or `POST /_sim/faults`.

Three families:
- HTTP (any route, by path or path prefix and method): 429 with Retry-After, any status
  (5xx, 425, 403 HTML…), slow responses, dropped connections, and accept-then-hang (the
  request is fully processed — an order is matched and recorded — but the response never
  comes, or the socket closes instead).
- Streams (`rtds`, `market`, `user` websockets): silence that still answers PING, malformed,
  truncated, duplicated and reordered frames, and a disconnect without a close frame (1006),
  optionally refusing new connections for a while.
- Venue state: forced order rejections, forced partial fills, tick-size changes.

Each armed fault fires `times` times (None: until cleared), each time with `probability`,
drawn from a generator seeded by the simulator's seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from polycopy.domain.money import ZERO, BadNumber, to_decimal
from polycopy.sim.wire import v2_error_body

CHANNELS = ("rtds", "market", "user")
# where a request's log entry lives while it is handled (faults and the order desk add to it)
RECORD = web.RequestKey("sim_record", dict)


@dataclass(frozen=True, kw_only=True)
class _Counted:
    times: int | None = 1
    probability: float = 1.0


# --- HTTP ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class HttpFault(_Counted):
    path: str = "*"  # exact path; a trailing * makes it a prefix; "*" alone: every route
    method: str = "*"

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method:
            return False
        if self.path == "*":
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


@dataclass(frozen=True, kw_only=True)
class RateLimit(HttpFault):
    """429 Too Many Requests with a Retry-After header."""

    retry_after_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class ErrorStatus(HttpFault):
    """Any status instead of the real answer: 500/502/503, 425 (engine restart), 403 HTML…"""

    status: int = 500
    body: str | None = None  # default: {"error": "<reason>"}
    content_type: str = "application/json"
    retry_after_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class Slow(HttpFault):
    delay_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Drop(HttpFault):
    """The connection is closed before the request is handled: nothing happened."""


@dataclass(frozen=True, kw_only=True)
class AcceptThenHang(HttpFault):
    """The request is handled (an order is matched and recorded) but never answered: the
    response hangs until the client gives up, or the socket is closed when `close`."""

    path: str = "/order"
    method: str = "POST"
    close: bool = False


# --- streams ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class StreamFault(_Counted):
    channel: str = "rtds"  # rtds | market | user


@dataclass(frozen=True, kw_only=True)
class Silence(StreamFault):
    """The socket stays open and answers PING, but no data frame goes out."""

    times: int | None = None  # frames withheld; None: until cleared


@dataclass(frozen=True, kw_only=True)
class Malformed(StreamFault):
    """A broken frame goes out before the next data frame: by default a copy of that frame
    with impossible values (price "1.5", size -3, side "HOLD"); `style="garbage"`: not JSON."""

    style: str = "bad_values"


@dataclass(frozen=True, kw_only=True)
class Truncated(StreamFault):
    """The next data frame goes out cut in half (its trade is lost to the stream)."""


@dataclass(frozen=True, kw_only=True)
class Duplicated(StreamFault):
    """The next data frame goes out twice."""


@dataclass(frozen=True, kw_only=True)
class Reordered(StreamFault):
    """The next data frame is held back and goes out after the one that follows it."""


@dataclass(frozen=True, kw_only=True)
class Disconnect(StreamFault):
    """Every open connection is dropped without a close frame (1006); new ones get 503 for
    `refuse_s` seconds."""

    refuse_s: float = 0.0


# --- venue state -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class OrderFault(_Counted):
    token_id: str | None = None  # None: any token


@dataclass(frozen=True, kw_only=True)
class RejectOrder(OrderFault):
    """The next order is refused with this venue error (status 200 puts it in `errorMsg`)."""

    error: str = "not enough balance / allowance"
    status: int = 400


@dataclass(frozen=True, kw_only=True)
class PartialFill(OrderFault):
    """The next order fills at most `fraction` of what it asks for, or `max_shares`."""

    fraction: Decimal = Decimal("0.5")
    max_shares: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class TickSizeChange:
    """Immediate: the token's market moves to a new tick; `tick_size_change` on /ws/market."""

    token_id: str
    tick_size: Decimal


Fault = HttpFault | StreamFault | OrderFault | TickSizeChange

KINDS: dict[str, type[Any]] = {
    "rate_limit": RateLimit,
    "status": ErrorStatus,
    "slow": Slow,
    "drop": Drop,
    "accept_then_hang": AcceptThenHang,
    "silence": Silence,
    "malformed": Malformed,
    "truncate": Truncated,
    "duplicate": Duplicated,
    "reorder": Reordered,
    "disconnect": Disconnect,
    "reject_order": RejectOrder,
    "partial_fill": PartialFill,
    "tick_size_change": TickSizeChange,
}
_NAMES = {cls: name for name, cls in KINDS.items()}


def fault_from_json(data: dict[str, Any]) -> Fault:
    """`{"fault": "<kind>", ...fields}` → a fault spec; ValueError names what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    fields = dict(data)
    kind = fields.pop("fault", None)
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"fault: expected one of {sorted(KINDS)}, got {kind!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"{kind}: unknown field(s) {unknown}; known: {sorted(known)}")
    for name, value in fields.items():
        declared = str(known[name].type)
        if value is None and "None" in declared:
            continue
        if "Decimal" in declared:
            try:
                fields[name] = to_decimal(value)
            except BadNumber as exc:
                raise ValueError(f"{kind}.{name}: {exc}") from None
            continue
        allowed = {part.strip() for part in declared.split("|")}
        if not any(_is_json(value, t) for t in allowed):
            raise ValueError(f"{kind}.{name}: expected {declared}, got {value!r}")
    try:
        spec: Fault = cls(**fields)
    except TypeError as exc:
        raise ValueError(f"{kind}: {exc}") from None
    return spec


def _is_json(value: Any, declared: str) -> bool:
    if declared == "bool" or isinstance(value, bool):
        return declared == "bool" and isinstance(value, bool)
    if declared == "float":
        return isinstance(value, int | float)
    return (declared == "int" and isinstance(value, int)) or (
        declared == "str" and isinstance(value, str)
    )


VALID_TICKS = frozenset(Decimal(t) for t in ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001"))


def check_fault(spec: Fault) -> None:
    """Refuse a spec that could never fire as meant (ValueError names the field)."""
    kind = _NAMES[type(spec)]
    problems: list[str] = []
    if isinstance(spec, _Counted):
        if spec.times is not None and (isinstance(spec.times, bool) or spec.times < 1):
            problems.append("times: expected a count of at least 1, or null")
        if not 0.0 <= spec.probability <= 1.0:
            problems.append("probability: expected a number from 0 to 1")
    if isinstance(spec, StreamFault) and spec.channel not in CHANNELS:
        problems.append(f"channel: expected one of {CHANNELS}, got {spec.channel!r}")
    if isinstance(spec, ErrorStatus) and not 100 <= spec.status <= 599:
        problems.append("status: expected an HTTP status")
    if isinstance(spec, RejectOrder) and spec.status != 200 and not 400 <= spec.status <= 599:
        problems.append("status: expected 200 (errorMsg) or an HTTP error status")
    for name in ("retry_after_s", "delay_s", "refuse_s"):
        value = getattr(spec, name, None)
        if value is not None and not value >= 0:
            problems.append(f"{name}: must not be negative")
    if isinstance(spec, Malformed) and spec.style not in ("bad_values", "garbage"):
        problems.append("style: expected bad_values or garbage")
    if isinstance(spec, PartialFill):
        if not ZERO < spec.fraction <= 1:
            problems.append("fraction: expected more than 0 and at most 1")
        if spec.max_shares is not None and spec.max_shares <= 0:
            problems.append("max_shares: expected more than 0")
    if isinstance(spec, TickSizeChange) and spec.tick_size not in VALID_TICKS:
        ticks = ", ".join(sorted(str(t) for t in VALID_TICKS))
        problems.append(f"tick_size: expected one of {ticks}")
    if problems:
        raise ValueError(f"{kind}: " + "; ".join(problems))


def fault_to_json(spec: Fault) -> dict[str, Any]:
    body = {"fault": _NAMES[type(spec)]}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        body[f.name] = str(value) if isinstance(value, Decimal) else value
    return body


@dataclass(slots=True)
class ArmedFault:
    fault_id: int
    spec: Fault
    remaining: int | None
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.fault_id,
            "remaining": self.remaining,
            "fired": self.fired,
            **fault_to_json(self.spec),
        }


F = TypeVar("F")


class Faults:
    """The armed faults. Typed specs in, consumed by the HTTP middleware, the streams and the
    order desk; every firing is logged for introspection."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(f"faults-{seed}")
        self._armed: list[ArmedFault] = []
        self._ids = itertools.count(1)
        self._refuse_until: dict[str, float] = {}
        self._immediate: list[Callable[[Fault], None]] = []
        self.fired: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.http_armed = False  # fast paths: nothing to look at on most requests and frames
        self.stream_armed = False

    def on_immediate(self, apply: Callable[[Fault], None]) -> None:
        """Who applies faults that act at once (tick changes, disconnects)."""
        self._immediate.append(apply)

    def arm(self, spec: Fault) -> int:
        check_fault(spec)
        fault_id = next(self._ids)
        if isinstance(spec, TickSizeChange | Disconnect):
            if isinstance(spec, Disconnect) and spec.refuse_s > 0:
                self._refuse_until[spec.channel] = time.monotonic() + spec.refuse_s
            for apply in self._immediate:
                apply(spec)
            self._log(fault_id, spec, "")
            return fault_id
        self._armed.append(ArmedFault(fault_id, spec, spec.times))
        self._refresh()
        return fault_id

    def clear(self, fault_id: int | None = None) -> int:
        """Disarm one fault, or all of them (and end any refusal window). Returns how many."""
        before = len(self._armed)
        if fault_id is None:
            self._armed.clear()
            self._refuse_until.clear()
        else:
            self._armed = [a for a in self._armed if a.fault_id != fault_id]
        self._refresh()
        return before - len(self._armed)

    def listing(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self._armed]

    def refusing(self, channel: str) -> bool:
        until = self._refuse_until.get(channel)
        return until is not None and time.monotonic() < until

    # --- consumption ---------------------------------------------------------------------------
    def take_http(self, method: str, path: str) -> HttpFault | None:
        return self._take(HttpFault, lambda s: s.matches(method, path), path)

    def silent(self, channel: str) -> bool:
        """A data frame on `channel` is withheld (consumes one of a counted silence)."""
        return self._take(Silence, lambda s: s.channel == channel, channel) is not None

    def take_stream(self, channel: str) -> StreamFault | None:
        return self._take(
            StreamFault,
            lambda s: s.channel == channel and not isinstance(s, Silence | Disconnect),
            channel,
        )

    def take_order(self, kind: type[F], token_id: str) -> F | None:
        return self._take(kind, lambda s: s.token_id in (None, token_id), token_id)

    def _take(self, kind: type[F], match: Callable[[Any], bool], where: str) -> F | None:
        for armed in self._armed:
            spec = armed.spec
            if not isinstance(spec, kind) or not match(spec):
                continue
            assert isinstance(spec, _Counted)
            if spec.probability < 1.0 and self._rng.random() >= spec.probability:
                continue
            armed.fired += 1
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining <= 0:
                    self._armed.remove(armed)
                    self._refresh()
            self._log(armed.fault_id, spec, where)
            return spec
        return None

    def _refresh(self) -> None:
        self.http_armed = any(isinstance(a.spec, HttpFault) for a in self._armed)
        self.stream_armed = any(isinstance(a.spec, StreamFault) for a in self._armed)

    def _log(self, fault_id: int, spec: Fault, where: str) -> None:
        self.fired.append(
            {"id": fault_id, "fault": _NAMES[type(spec)], "at": time.time(), "where": where}
        )


# --- HTTP middleware -------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_fault_middleware(faults: Faults, released: asyncio.Event) -> Any:
    """Applies armed HTTP faults to every route but the simulator's own `/_sim/` ones.

    `released` is set when the server stops, so hanging responses end then (by closing).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not faults.http_armed or request.path.startswith("/_sim/"):
            return await handler(request)
        fault = faults.take_http(request.method, request.path)
        if fault is None:
            return await handler(request)
        record = request.get(RECORD)
        if record is not None:
            record["fault"] = _NAMES[type(fault)]
        v2 = request.path.startswith("/v2/")
        if isinstance(fault, RateLimit):
            headers = {"Retry-After": f"{fault.retry_after_s:g}"}
            return _error_response(429, "Too Many Requests", headers, v2=v2)
        if isinstance(fault, ErrorStatus):
            return _status_response(fault, v2=v2)
        if isinstance(fault, Slow):
            await asyncio.sleep(fault.delay_s)
            return await handler(request)
        if isinstance(fault, Drop):
            _abort(request)
            return web.Response(status=500)
        if isinstance(fault, AcceptThenHang):
            response = await handler(request)
            if not fault.close:
                await released.wait()
            _abort(request)
            return response
        return await handler(request)

    return middleware


def _status_response(fault: ErrorStatus, *, v2: bool) -> web.Response:
    headers = {}
    if fault.retry_after_s is not None:
        headers["Retry-After"] = f"{fault.retry_after_s:g}"
    elif v2 and fault.status == 503:
        headers["Retry-After"] = "1"  # v2 sends one with every 429 and 503 (reference §1.6)
    if fault.body is not None:  # a page from something in front of the API: as given
        return web.Response(
            status=fault.status, text=fault.body, content_type=fault.content_type, headers=headers
        )
    reason = web.Response(status=fault.status).reason or "error"
    return _error_response(fault.status, reason, headers, v2=v2)


def _error_response(
    status: int, message: str, headers: dict[str, str], *, v2: bool
) -> web.Response:
    """`{"error"}` as v1 and the CLOB answer; the v2 Data API's shape and trace header on
    `/v2/` routes."""
    if not v2:
        return web.json_response({"error": message}, status=status, headers=headers)
    trace = uuid.uuid4().hex
    body = v2_error_body(status, message, trace)
    return web.json_response(body, status=status, headers={**headers, "x-trace-id": trace})


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
