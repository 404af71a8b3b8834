"""Where Polymarket's SDK sends its requests: one place that touches its internal
environment module (the SDK's minor version is pinned for that reason).

`environment_for` points the CLOB and Data API clients, and the websockets when given, at the
URLs given — the simulator in tests and rehearsals — and every other service the SDK knows
(Gamma, relayer, Polygon RPC, RFQ, perps, …) at a closed port on 127.0.0.1, so a client built
from it can never reach anything else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from polymarket._internal.environment import PRODUCTION_CONFIG, with_environment_config
from polymarket.environments import PRODUCTION, Environment

UNREACHABLE_HTTP = "http://127.0.0.1:9"  # the discard port: connection refused
UNREACHABLE_WS = "ws://127.0.0.1:9"


def environment_for(
    clob_url: str,
    data_url: str,
    *,
    rtds_url: str | None = None,
    clob_ws_url: str | None = None,
) -> Environment:
    """A production-shaped SDK environment (chain 137, real contract addresses) whose every URL
    is one of these or unreachable. `clob_ws_url` is the base that `/market` and `/user`
    hang off (as in polycopy's `endpoints.clob_ws_url`)."""
    chosen = {
        "clob_url": clob_url.rstrip("/"),
        "data_url": data_url.rstrip("/"),
    }
    if rtds_url:
        chosen["rtds_ws_url"] = rtds_url
    if clob_ws_url:
        base = clob_ws_url.rstrip("/")
        chosen["clob_market_ws_url"] = f"{base}/market"
        chosen["clob_user_ws_url"] = f"{base}/user"
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(PRODUCTION_CONFIG):
        if not field.name.endswith("_url"):
            continue
        default = getattr(PRODUCTION_CONFIG, field.name)
        unreachable = UNREACHABLE_WS if str(default).startswith("ws") else UNREACHABLE_HTTP
        changes[field.name] = chosen.get(field.name, unreachable)
    config = dataclasses.replace(PRODUCTION_CONFIG, **changes)
    return with_environment_config(PRODUCTION, config=config)
