"""The real daemon (`python -m polycopy run`) as a subprocess against an in-process simulator.

`DaemonProcess` writes the YAML config, starts and signals the process, keeps each run's
stdout (JSON log lines) and stderr in files, and reads `/status`, `/healthz`, `/metrics` and
the SQLite ledger (read-only). `NotifySocket` stands in for systemd's `$NOTIFY_SOCKET`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from polycopy.domain.events import Side, trade_identity
from polycopy.sim import SimServer

TOKEN = "test-status-token-" + "x" * 24  # ≥ 32 characters


async def eventually(
    condition: Callable[[], Any],
    timeout: float = 10.0,  # noqa: ASYNC109 - the project's documented helper signature
    interval: float = 0.05,
) -> Any:
    """Poll `condition` (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        await asyncio.sleep(interval)


def metric(text: str, sample: str) -> float:
    """The value of one sample (`name` or `name{labels}`) in a Prometheus text page."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    raise AssertionError(f"{sample} not in /metrics")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """The test's environment without any POLYCOPY_* or systemd variable of its own."""
    drop = ("POLYCOPY_", "NOTIFY_SOCKET", "WATCHDOG_", "CREDENTIALS_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["POLYCOPY_LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def trade_ids(fills: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Decision ids the daemon must produce for the simulator's emitted fills (SPEC §2.8):
    each fill's identity, identical-looking fills numbered in time order."""
    seen: dict[tuple[str, ...], int] = {}
    out: dict[str, Mapping[str, Any]] = {}
    for f in sorted(fills, key=lambda f: (f["timestamp"], f["seq"])):
        key = (f["proxyWallet"], f["transactionHash"], f["asset"], f["side"], f["price"], f["size"])
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        ident = trade_identity(
            f["proxyWallet"],
            f["transactionHash"],
            f["asset"],
            Side(f["side"]),
            Decimal(f["price"]),
            Decimal(f["size"]),
            occurrence,
        )
        out[ident] = f
    return out


def base_config(
    sim: SimServer, state_dir: Path, port: int, leaders: Iterable[str]
) -> dict[str, Any]:
    """Quick timings, FIXED_RATE sizing without netting: one decision per leader trade."""
    return {
        "mode": "paper",
        "bankroll_usdc": 1000,
        "state_dir": str(state_dir),
        "sizing": {"sizing_mode_default": "FIXED_RATE", "fixed_copy_rate_default": 0.05},
        "rails": {
            "min_exec_notional_usdc": 1,
            "max_exec_notional_usdc": 25,
            "max_trade_pct_bankroll": 0.1,
            "max_price_per_share": 0.99,
        },
        "endpoints": sim.endpoints(),
        "status": {"listen": f"127.0.0.1:{port}"},
        "ingest": {
            "poll_interval_s": 1,
            "ws_stall_s": 30,
            "ws_ping_interval_s": 0.5,
            "ws_backoff_initial_s": 0.05,
            "ws_backoff_max_s": 0.5,
            "exposure_refresh_s": 30,
            "rest_backoff_initial_s": 0.05,
            "rest_backoff_max_s": 0.2,
            "rest_rate_limit_per_10s": 100_000,
            "positions_rate_limit_per_10s": 100_000,
        },
        "execution": {"fill_wait_s": 2, "order_timeout_s": 2, "unknown_close_after_s": 0},
        "daemon": {
            "shutdown_timeout_s": 10,
            "ingest_stale_s": 30,
            "mark_refresh_s": 1,
            "resolve_interval_s": 0.5,
        },
        "leaders": [{"address": a, "name": f"leader-{i}"} for i, a in enumerate(leaders)],
    }


class NotifySocket:
    """systemd's side of sd_notify: an AF_UNIX datagram socket the daemon writes to."""

    def __init__(self) -> None:
        # a short path (sun_path holds 108 bytes; pytest's tmp_path can be longer)
        self._dir = tempfile.mkdtemp(prefix="pc-notify-")
        self.path = str(Path(self._dir) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []  # (monotonic time, datagram)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def kinds(self, since: int = 0) -> list[str]:
        """Each datagram's first assignment (`READY=1`, `WATCHDOG=1`…), in order."""
        return [m.split("\n", 1)[0] for _, m in self.messages[since:]]

    def count(self, kind: str, since: int = 0) -> int:
        return self.kinds(since).count(kind)

    def close(self) -> None:
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(self._dir)


class DaemonProcess:
    """One daemon configuration in `directory`, started as many times as a test needs."""

    def __init__(
        self,
        directory: Path,
        sim: SimServer,
        leaders: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        **sections: Any,
    ) -> None:
        self.dir = directory
        self.sim = sim
        self.port = free_port()
        self.state_dir = directory / "state"
        self.config_path = directory / "polycopy.yaml"
        self.config = base_config(sim, self.state_dir, self.port, leaders)
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(self.config.get(key), dict):
                self.config[key] = {**self.config[key], **value}
            else:
                self.config[key] = value
        self.env = {**base_env(), **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0
        self.token: str | None = self.env.get("POLYCOPY_STATUS_TOKEN")
        self.write_config()

    # --- config -----------------------------------------------------------------------------
    def write_config(
        self, config: Mapping[str, Any] | None = None, text: str | None = None
    ) -> None:
        """Write the config file (0600), atomically: a SIGHUP never reads half a file."""
        body = text if text is not None else yaml.safe_dump(dict(config or self.config))
        temp = self.config_path.with_suffix(".tmp")
        temp.write_text(body, encoding="utf-8")
        temp.chmod(0o600)
        os.replace(temp, self.config_path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"  # whatever `status.listen` spells it

    @property
    def db_path(self) -> Path:
        return self.state_dir / f"polycopy-{self.config['mode']}.sqlite3"

    # --- process ----------------------------------------------------------------------------
    def stdout_path(self, run: int | None = None) -> Path:
        return self.dir / f"stdout-{run or self.runs}.log"

    def stderr_path(self, run: int | None = None) -> Path:
        return self.dir / f"stderr-{run or self.runs}.log"

    async def start(self, **env: str) -> asyncio.subprocess.Process:
        assert self.proc is None or self.proc.returncode is not None, "already running"
        self.runs += 1
        with self.stdout_path().open("wb") as out, self.stderr_path().open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "polycopy",
                "run",
                "--config",
                str(self.config_path),
                env={**self.env, **env},
                stdout=out,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
            )
        return self.proc

    async def started(self, timeout: float = 20) -> None:  # noqa: ASYNC109
        """Until the daemon logged `daemon_ready` (reconciled, ingest running)."""
        run = self.runs

        def ready() -> bool:
            self.assert_running()
            return any(e.get("event") == "daemon_ready" for e in self.events(run))

        await eventually(ready, timeout)

    def assert_running(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(
                f"daemon exited {self.proc.returncode}\nstderr: {self.stderr()}\n"
                f"stdout tail: {self.stdout()[-3000:]}"
            )

    async def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait(self, timeout: float = 30) -> int:  # noqa: ASYNC109
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    # --- outputs ------------------------------------------------------------------------------
    def stdout(self, run: int | None = None) -> str:
        path = self.stdout_path(run)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stderr(self, run: int | None = None) -> str:
        path = self.stderr_path(run)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def events(self, run: int | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines of one run (default: the current one), or of every run (0)."""
        runs = range(1, self.runs + 1) if run == 0 else [run or self.runs]
        out = []
        for r in runs:
            for line in self.stdout(r).splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if name is None or event.get("event") == name:
                    out.append(event)
        return out

    # --- HTTP ---------------------------------------------------------------------------------
    async def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(
                method,
                self.base_url + path,
                headers=headers,
                json=body if body is not None or method != "POST" else {},
            ) as resp,
        ):
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def status(self) -> dict[str, Any]:
        code, body = await self.request("GET", "/status", token=self.token)
        assert code == 200, (code, body)
        return dict(body)

    # --- ledger (read-only) -------------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def decisions(self) -> dict[str, tuple[str, str, str]]:
        """decision_id → (side, outcome, reasons JSON)."""
        rows = self.query("SELECT decision_id, side, outcome, reasons FROM ledger_decisions")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def follow_since(self) -> int:
        values = {r[0] for r in self.query("SELECT follow_since FROM ingest_cursor")}
        assert len(values) == 1, values
        return int(values.pop())


def one_certificate(directory: Path) -> Path:
    """A CA bundle of one certificate (the first of certifi's) for `SSL_CERT_FILE`: the SDK
    loads the bundle into each of its HTTP clients, and every request here is plain http."""
    import certifi

    text = Path(certifi.where()).read_text(encoding="ascii")
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    path = directory / "one-ca.pem"
    path.write_text(text[start:end] + "\n", encoding="ascii")
    return path
