"""`polycopy resume --offline`: lifting a persisted halt with the daemon stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polycopy.cli import main
from polycopy.domain.killswitch import KillSwitch, TradingState
from polycopy.store.daemon_state import DaemonState
from polycopy.store.db import Database
from polycopy.store.ledger import ledger_path
from tests.builders import T0


def test_offline_resume_resets_the_ledgers_halt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    config = tmp_path / "polycopy.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(state_dir)}))
    db = Database(ledger_path(state_dir, "paper"))
    DaemonState(db).save_kill_switch(KillSwitch().trip(TradingState.HALTED, "daily loss", T0), T0)
    db.close()

    assert main(["resume", "--offline", "--config", str(config)]) == 0
    assert "was HALTED: daily loss" in capsys.readouterr().out
    db = Database(ledger_path(state_dir, "paper"))
    assert DaemonState(db).kill_switch().state is TradingState.ACTIVE
    db.close()


def test_commands_fail_clearly_without_a_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err
    config = tmp_path / "polycopy.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "none")}))
    assert main(["resume", "--offline", "--config", str(config)]) == 1
    assert "no ledger" in capsys.readouterr().err
