"""Shared fixtures: where the recorded real payloads live (../shared/data beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"recorded payloads not found at {SHARED_DATA} (../shared must sit beside the repo)"
        )
    return SHARED_DATA
