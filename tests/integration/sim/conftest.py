from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from simkit import Trader

from polycopy.sim import SimConfig, SimServer
from polycopy.sim.state import Market

LEADER = "0x6031b6eed1c97e853c6e0f03ad3ce3529351f96d"
WHALE = "0x09b428f7c2b469786286214aa5c90dd9015f7320"


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig.instant()) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def market(sim: SimServer) -> Market:
    return sim.add_market(Decimal("0.50"))


@pytest.fixture
async def trader(sim: SimServer, session: aiohttp.ClientSession) -> Trader:
    return await Trader(session, sim.url).login()
