"""polycopy: a copy-trading daemon for Polymarket with Budgeted Dynamic sizing."""

__version__ = "0.1.0"
