"""Named crash points for crash-consistency tests (reliability requirements R1, R6, R9).

`POLYCOPY_CRASH_AT=<name>` makes the process die with `os._exit(137)` the first time it
reaches that point, exactly as a `kill -9` would: no cleanup, no flush, no finally blocks.
`POLYCOPY_CRASH_AT=<name>:<n>` dies on the n-th visit instead. Unset, a call costs one
dictionary lookup.
"""

from __future__ import annotations

import os

_ENV = "POLYCOPY_CRASH_AT"
_visits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(_ENV)
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return name, int(count) if count.isdigit() else 1


_TARGET = _target()


def crash_point(name: str) -> None:
    if _TARGET is None or _TARGET[0] != name:
        return
    _visits[name] = _visits.get(name, 0) + 1
    if _visits[name] >= _TARGET[1]:
        os._exit(137)
