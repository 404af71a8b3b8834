"""Dependencies come from the hashed lock only (R35): what is installed is what is pinned."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)")


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_every_pin_has_a_hash_and_no_url_sources() -> None:
    for name in ("requirements.lock", "requirements-runtime.lock"):
        text = (REPO / name).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
        for block in blocks[1:]:
            assert "--hash=sha256:" in block, block.splitlines()[0]
        assert "git+" not in text
        assert "://" not in text.replace("https://", "")
        assert "--extra-index-url" not in text
        assert "--find-links" not in text


def test_installed_versions_match_the_lock() -> None:
    pins = _pins("requirements.lock")
    assert len(pins) > 40
    for name, version in pins.items():
        if name in {"pip"}:
            continue
        assert metadata.version(name) == version, name


def test_runtime_lock_is_a_subset_of_the_full_lock() -> None:
    full, runtime = _pins("requirements.lock"), _pins("requirements-runtime.lock")
    assert "polymarket-client" in runtime
    assert "pytest" not in runtime
    for name, version in runtime.items():
        assert full.get(name) == version, name
