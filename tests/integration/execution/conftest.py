from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sim_rig import one_certificate

from polycopy.sim import SimConfig, SimServer

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Workaround for the simulator at aed8a96: it stores `request["sim_record"]` under a str key,
    # and aiohttp's NotAppKeyWarning then turns its first request into a 500 under
    # warnings-as-errors. Fixed on the sim branch (web.RequestKey); drop after the next merge.
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(
                pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
            )


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
