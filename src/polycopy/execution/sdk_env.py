"""The one place that touches `polymarket-client`'s internal environment module.

The SDK takes every URL from an `Environment`; production is `polymarket.environments
.PRODUCTION`. Pointing it elsewhere (the simulator, a dress rehearsal) goes through
`polymarket._internal.environment`, which is internal — hence the pinned minor version
(`polymarket-client>=0.14,<0.15`) and this single wrapper.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from polymarket._internal.environment import (
    PRODUCTION_CONFIG,
    get_environment_config,
    with_environment_config,
)
from polymarket.environments import PRODUCTION, Environment

PRODUCTION_CLOB_URL = "https://clob.polymarket.com"


def environment_for(
    clob_url: str,
    *,
    data_url: str | None = None,
    clob_ws_url: str | None = None,
    rtds_url: str | None = None,
    **overrides: Any,
) -> Environment:
    """An SDK environment whose CLOB (and optionally Data API and websocket) URLs are ours.

    Production URLs give back `PRODUCTION` itself. Every other endpoint of the environment
    (relayer, RPC, gamma) is pointed at `clob_url` too, so that a misrouted call reaches the
    given host, never production.
    """
    clob = clob_url.rstrip("/")
    if clob == PRODUCTION_CLOB_URL and data_url is None and not overrides:
        return PRODUCTION
    ws_base = (clob_ws_url or clob.replace("http", "ws", 1) + "/ws").rstrip("/")
    changes: dict[str, Any] = {
        "clob_url": clob,
        "data_url": (data_url or clob).rstrip("/"),
        "gamma_url": clob,
        "relayer_url": clob,
        "rfq_url": clob,
        "rpc_url": clob,
        "builder_gateway_url": clob,
        "collateral_return_url": clob,
        "perps_url": clob,
        "clob_market_ws_url": ws_base + "/market",
        "clob_user_ws_url": ws_base + "/user",
        "rtds_ws_url": rtds_url or clob.replace("http", "ws", 1) + "/rtds",
    }
    changes.update(overrides)
    config = dataclasses.replace(PRODUCTION_CONFIG, **changes)
    return with_environment_config(PRODUCTION, config=config)


def chain_id(environment: Environment) -> int:
    return int(get_environment_config(environment).chain_id)


def exchange_address(environment: Environment, *, neg_risk: bool) -> str:
    config = get_environment_config(environment)
    return str(config.neg_risk_exchange if neg_risk else config.standard_exchange)
