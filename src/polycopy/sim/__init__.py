"""A faithful local stand-in for the parts of Polymarket polycopy uses (SPEC §8)."""

from polycopy.sim.faults import (
    AcceptThenHang,
    Disconnect,
    Drop,
    Duplicated,
    ErrorStatus,
    Faults,
    Malformed,
    PartialFill,
    RateLimit,
    RejectOrder,
    Reordered,
    Silence,
    Slow,
    TickSizeChange,
    Truncated,
)
from polycopy.sim.server import SimServer
from polycopy.sim.settings import SimConfig

__all__ = [
    "AcceptThenHang",
    "Disconnect",
    "Drop",
    "Duplicated",
    "ErrorStatus",
    "Faults",
    "Malformed",
    "PartialFill",
    "RateLimit",
    "RejectOrder",
    "Reordered",
    "Silence",
    "SimConfig",
    "SimServer",
    "Slow",
    "TickSizeChange",
    "Truncated",
]
