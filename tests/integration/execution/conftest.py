from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sim_rig import one_certificate

from polycopy.sim import SimConfig, SimServer


@pytest.fixture(autouse=True)
def _cheap_tls_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The SDK builds eleven httpx clients per secure client, each loading the whole CA bundle
    (~50 ms apiece); every request here is plain http to 127.0.0.1, so one certificate will do."""
    monkeypatch.setenv("SSL_CERT_FILE", str(one_certificate(tmp_path_factory.mktemp("ca"))))


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig.instant()) as server:
        yield server
