"""Run every benchmark in bench/ once with its default settings (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name in {"run.py"} or script.name.startswith("_"):
            continue
        print(f"== {script.name}", flush=True)
        failed |= subprocess.call([sys.executable, str(script)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
