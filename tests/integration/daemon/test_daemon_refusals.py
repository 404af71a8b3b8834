"""`polycopy run` refuses to start, exit 78 with the key path on stderr and not one request
sent, on an invalid config, a status server exposed without a token, live mode without a key
and a config file others may write (R21, R34, R36). Also: the systemd unit passes
`systemd-analyze verify` and scores ≤ 2.5 on `systemd-analyze security` (R39); the container
runs as a non-root user with the state directory on a volume."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polycopy.sim import SimConfig, SimServer

from .harness import DaemonProcess

REPO = Path(__file__).resolve().parents[3]
LEADER = "0x00000000000000000000000000000000000a11ce"


def unknown_key(d: DaemonProcess) -> None:
    d.config["rails"] = {**d.config["rails"], "max_exec_notional_usd": 5}


def bad_leader_budget(d: DaemonProcess) -> None:
    d.config["leaders"] = [
        {"address": LEADER, "sizing_mode_override": "BUDGETED_DYNAMIC"}  # no budget_usdc
    ]


def exposed_status(d: DaemonProcess) -> None:
    d.config["status"] = {"listen": f"0.0.0.0:{d.port}"}


def live_without_key(d: DaemonProcess) -> None:
    d.config["mode"] = "live"


def short_token(d: DaemonProcess) -> None:
    d.env["POLYCOPY_STATUS_TOKEN"] = "short"


def writable_by_group(d: DaemonProcess) -> None:
    d.config_path.chmod(0o664)


def writable_by_others(d: DaemonProcess) -> None:
    d.config_path.chmod(0o646)


CASES: list[tuple[str, Callable[[DaemonProcess], None], str]] = [
    ("unknown key", unknown_key, r"rails\.max_exec_notional_usd: unknown key"),
    ("budget missing", bad_leader_budget, r"leaders\[0\]\.budget_usdc"),
    ("0.0.0.0 without a token", exposed_status, r"status\.listen: 0\.0\.0\.0 is not loopback"),
    ("live without a key", live_without_key, r"live mode: .*POLYCOPY_PRIVATE_KEY"),
    ("short token", short_token, r"POLYCOPY_STATUS_TOKEN: must be at least 32"),
    ("config writable by group", writable_by_group, r"polycopy\.yaml: writable by group"),
    ("config writable by others", writable_by_others, r"polycopy\.yaml: writable by group"),
]


async def test_invalid_configurations_exit_78_before_any_request(tmp_path: Path) -> None:
    async with SimServer(SimConfig.instant()) as sim:
        daemons = []
        for i, (_, spoil, _) in enumerate(CASES):
            directory = tmp_path / f"case{i}"
            directory.mkdir()
            daemon = DaemonProcess(directory, sim, [LEADER])
            spoil(daemon)
            if daemon.config_path.stat().st_mode & 0o022 == 0:
                daemon.write_config()
            daemons.append(daemon)
        # all at once: each is an interpreter start, the slow part
        await asyncio.gather(*(d.start() for d in daemons))
        codes = await asyncio.gather(*(d.wait(timeout=60) for d in daemons))
        for (name, _, pattern), daemon, code in zip(CASES, daemons, codes, strict=True):
            stderr = daemon.stderr()
            assert code == 78, f"{name}: exit {code}\n{stderr}\n{daemon.stdout()}"
            assert stderr.startswith("polycopy: invalid configuration"), name
            assert re.search(pattern, stderr), f"{name}: {stderr!r}"
            assert "Traceback" not in stderr + daemon.stdout(), name
            assert not daemon.state_dir.exists(), f"{name}: the ledger was created"
        assert sim.requests() == []  # not one request reached the venue


def unit_with(polycopy: Path, directory: Path) -> Path:
    text = (REPO / "systemd" / "polycopy.service").read_text(encoding="utf-8")
    assert "/opt/polycopy/.venv/bin/polycopy" in text
    unit = directory / "polycopy.service"
    unit.write_text(text.replace("/opt/polycopy/.venv/bin/polycopy", str(polycopy)))
    return unit


INSTALLED = Path("/opt/polycopy/.venv/bin/polycopy")  # `make install` (CI runs it)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    if INSTALLED.exists():  # the file exactly as shipped, against the installed layout
        unit = REPO / "systemd" / "polycopy.service"
    else:  # this checkout's console script in place of /opt/polycopy's
        polycopy = Path(sys.executable).parent / "polycopy"
        assert polycopy.exists(), polycopy
        unit = unit_with(polycopy, tmp_path)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if "polycopy.service" in line or "Unknown" in line or "Failed" in line
    ]
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert problems == []

    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if security.returncode != 0 and "offline" in security.stderr:
        pytest.skip(f"systemd-analyze security --offline unsupported: {security.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert match, security.stdout + security.stderr
    assert float(match.group(1)) <= 2.5, security.stdout


def test_dockerfile_runs_unprivileged_with_a_state_volume() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    final = text[text.rindex("\nFROM ") :]  # the runtime stage
    users = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert users, "no USER in the runtime stage"
    assert users[-1].split(":")[0] not in {"root", "0"}
    volumes: list[Any] = re.findall(r"^VOLUME\s+(.+)$", final, re.MULTILINE)
    state = re.search(r"POLYCOPY_STATE_DIR=(\S+)", final)
    assert state, "the image does not set the state directory"
    assert any(state.group(1) in v for v in volumes), volumes
