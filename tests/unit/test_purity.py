"""The pure core imports only the standard library (STYLE.md: pure core, I/O shell)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "polycopy"
PURE = [*sorted((SRC / "domain").glob("*.py")), SRC / "ingest" / "decode.py"]
FORBIDDEN = {
    "aiohttp",
    "websockets",
    "structlog",
    "tenacity",
    "asyncio",
    "time",
    "random",
    "os",
    "logging",
    "sqlite3",
    "socket",
    "pydantic",
    "pydantic_settings",
    "yaml",
    "polymarket",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_pure_module_has_no_io_imports(path: Path) -> None:
    bad = _imports(path) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_pure_module_reads_no_clock(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for call in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time("):
        assert call not in text, f"{path.name} reads the clock via {call}"
