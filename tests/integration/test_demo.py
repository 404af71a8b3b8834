"""`polycopy demo` end to end, as `make demo` runs it (shorter): the replay comparison, then
the real daemon against the simulator, ending with the daemon's dashboard."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_daemon_and_ends_with_its_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    proc = subprocess.run(
        [sys.executable, "-m", "polycopy", "demo", "--out-dir", str(out), "--seconds", "6"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    # the side-by-side comparison: the whale held to its budget
    assert "FIXED_RATE 0.01" in text
    match = re.search(
        r"The whale's share of copied exposure: ([\d.]+)% at a fixed rate, ([\d.]+)% with its "
        r"\$30\.00 budget \(([\d.]+)% used\)",
        text,
    )
    assert match, text[:3000]
    fixed_share, budgeted_share, used = (float(g) for g in match.groups())
    assert fixed_share > 50  # the whale dominates a fixed-rate copier ...
    assert budgeted_share < fixed_share / 2  # ... and is held to its budget with one
    assert used <= 100
    # the daemon ran, drained and stopped cleanly, and its dashboard closes the output
    assert "daemon stopped (exit 0)" in text
    tail = text[text.index("daemon stopped") :]
    for name in ("leader-a", "leader-b", "leader-c", "whale"):
        assert name in tail
    assert "recent decisions" in tail
    assert (out / "state" / "polycopy-paper.sqlite3").exists()
    log = (out / "daemon.log").read_text()
    assert '"event": "daemon_ready"' in log
    assert '"event": "copy_decided"' in log
