"""sd_notify without libsystemd: datagrams to $NOTIFY_SOCKET (READY, WATCHDOG, RELOADING,
STOPPING, STATUS). A no-op when not started by systemd."""

from __future__ import annotations

import os
import socket
import time

SEND_TIMEOUT_S = 0.1


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address:
            # a leading '@' names a Linux abstract-namespace socket
            self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval_s: float | None = (
            int(usec) / 1_000_000 / 2 if usec.isdigit() and mine else None
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # A datagram to a socket nobody reads blocks once its queue is full (ten datagrams
            # by default): never let that stall the event loop for more than a moment.
            sock.settimeout(SEND_TIMEOUT_S)
            try:
                sock.connect(self._address)
                sock.sendall(message.encode())
            except OSError:  # systemd gone, socket closed or not reading (timeout): drop it
                pass

    def ready(self, status: str = "") -> None:
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")
