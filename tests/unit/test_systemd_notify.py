"""sd_notify datagrams: what systemd receives, and a socket nobody reads never stalls the
caller (the event loop) for more than a moment."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from polycopy.observability.systemd import SEND_TIMEOUT_S, Notifier


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()


def test_messages_and_watchdog_interval(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    assert notifier.watchdog_interval_s == pytest.approx(0.2)
    notifier.ready("copying 2 leaders")
    notifier.watchdog()
    notifier.reloading()
    notifier.stopping()
    got = [sock.recv(4096).decode() for _ in range(4)]
    assert got[0] == "READY=1\nSTATUS=copying 2 leaders"
    assert got[1] == "WATCHDOG=1"
    assert got[2].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert got[3] == "STOPPING=1"
    assert Notifier({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None
    assert not Notifier({}).enabled


def test_a_socket_nobody_reads_never_blocks(receiver: tuple[socket.socket, str]) -> None:
    _, path = receiver
    notifier = Notifier({"NOTIFY_SOCKET": path})
    slowest = 0.0
    for _ in range(14):  # the receive queue holds about ten
        began = time.monotonic()
        notifier.watchdog()
        slowest = max(slowest, time.monotonic() - began)
    assert slowest < SEND_TIMEOUT_S * 5
