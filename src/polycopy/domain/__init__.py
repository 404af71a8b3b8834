"""The pure core: no I/O, no clock, no logging. Only the standard library."""
