"""`SimServer`: the simulated Polymarket on one loopback port, for tests, benchmarks, the demo
and `polycopy sim serve`.

    async with SimServer(SimConfig.instant()) as sim:
        market = sim.add_market(price=Decimal("0.50"))
        sim.emit_trade(LEADER, market.tokens[0].token_id, "BUY", Decimal("0.50"), Decimal(40))
        ...  # point a client at sim.url / sim.rtds_url; read sim.orders(), sim.requests()
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

from aiohttp import web

from polycopy.domain.events import LeaderTrade
from polycopy.domain.money import CENT, fmt
from polycopy.sim.app import build_app
from polycopy.sim.auth import KeyStore
from polycopy.sim.book import Book
from polycopy.sim.clob import ClobApi
from polycopy.sim.clob_ws import MarketHub, UserHub
from polycopy.sim.crowd import Crowd
from polycopy.sim.data_api import DataApi
from polycopy.sim.faults import Disconnect, Fault, Faults, TickSizeChange
from polycopy.sim.feed import Playback, Timed, generator_feed, tape_feed
from polycopy.sim.rtds import RtdsHub
from polycopy.sim.settings import SimConfig
from polycopy.sim.state import ActivityFill, Market, SimOrder, SimState, Token

_HOUSEKEEPING_S = 1.0


class SimServer:
    def __init__(
        self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or SimConfig()
        self.clock = clock
        self.state = SimState(self.config, clock, random.Random(self.config.seed))
        self.faults = Faults(self.config.seed)
        self.keys = KeyStore(self.config.seed)
        self.rtds = RtdsHub(self.state, self.faults, self.config)
        self.market_ws = MarketHub(self.state, self.faults, self.config)
        self.user_ws = UserHub(self.state, self.keys, self.faults, self.config)
        self.crowd = Crowd(self.state, self.config)
        # the crowd listens last: the maker side of a fill goes out after the fill itself
        self.state.listeners.extend((self.rtds, self.market_ws, self.user_ws, self.crowd))
        self.data_api = DataApi(self.state)
        self.clob = ClobApi(self.state, self.keys, self.faults, self.config, clock)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=self.config.request_log_size)
        self.faults.on_immediate(self._apply_now)
        self.port = 0
        self.skipped_rows = 0
        self._feed = self._prepare_feed()
        self._playback: Playback | None = None
        self._go = asyncio.Event()
        self._released = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> SimServer:
        self._runner = web.AppRunner(
            build_app(self, self._released), access_log=None, shutdown_timeout=2.0
        )
        await self._runner.setup()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.config.host, self.config.port))
        self.port = self._socket.getsockname()[1]
        await web.SockSite(self._runner, self._socket).start()
        self._spawn(self._housekeeping())
        if self.config.firehose_per_s > 0:
            self._spawn(self.crowd.run_firehose(self.config.firehose_per_s))
        if self._feed is not None:
            self._spawn(self._play(self._feed))
            if not self.config.paused:
                self.start_playback()
        return self

    async def stop(self) -> None:
        self._released.set()  # hanging responses end (their sockets close)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()
        await self.rtds.close_all()
        await self.market_ws.close_all()
        await self.user_ws.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, work: Any) -> None:
        self._tasks.append(asyncio.create_task(work))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            self.clob.expire_heartbeats()

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def rtds_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/rtds"

    @property
    def clob_ws_url(self) -> str:
        """Base of the CLOB websockets: `/market` and `/user` below it."""
        return f"ws://{self.config.host}:{self.port}/ws"

    def endpoints(self) -> dict[str, str]:
        """polycopy's `endpoints:` config section pointing at this simulator."""
        return {
            "data_api_url": self.url,
            "clob_url": self.url,
            "rtds_url": self.rtds_url,
            "clob_ws_url": self.clob_ws_url,
        }

    def banner(self) -> str:
        lines = [f"polycopy sim: serving on {self.url}", "endpoints:"]
        lines += [f"  {key}: {value}" for key, value in self.endpoints().items()]
        if self.config.paused and self._feed is not None:
            lines.append(f"# paused: POST {self.url}/_sim/start to begin playback")
        return "\n".join(lines)

    # --- leader activity -----------------------------------------------------------------------
    def _prepare_feed(self) -> Iterator[Timed] | None:
        if self.config.tapes:
            return tape_feed(self.state, self.config.tapes)
        if self.config.generate_seed is not None:
            return generator_feed(
                self.state, self.config.generate_seed, self.config.generator_markets
            )
        return None

    def start_playback(self) -> None:
        """Begin playing the tape or generator (what `POST /_sim/start` does)."""
        self._go.set()

    async def _play(self, feed: Iterator[Timed]) -> None:
        await self._go.wait()
        self._playback = Playback(feed, self.config.speed, self._emit_batch)
        await self._playback.run()

    def emit_many(self, rows: Iterable[Mapping[str, Any]]) -> list[ActivityFill]:
        """Leader trades from activity rows, all timed now (fast path for bulk emission)."""
        fills = []
        for row in rows:
            try:
                fills.append(self.state.record_row(row))
            except ValueError:
                self.skipped_rows += 1
        return fills

    def _emit_batch(self, batch: list[tuple[Mapping[str, Any], LeaderTrade | None]]) -> None:
        for row, trade in batch:
            try:
                self.state.record_row(row, trade=trade)
            except ValueError:
                self.skipped_rows += 1

    def emit_row(self, row: Mapping[str, Any]) -> ActivityFill:
        return self.state.record_row(row)

    def emit_trade(
        self,
        wallet: str,
        token_id: str,
        side: str,
        price: Decimal,
        size: Decimal,
        *,
        tx_hash: str | None = None,
        role: str = "taker",
        timestamp: int | None = None,
    ) -> ActivityFill:
        """One leader trade now: Data API (after its lag), RTDS (after its lag), books move."""
        market = self.state.market_of(token_id)
        if market is None:
            raise KeyError(f"unknown token {token_id}")
        return self.state.record_fill(
            wallet,
            market.token(token_id),
            side,
            price,
            size,
            tx_hash or self.state.random_hex(32),
            role=role,
            timestamp=timestamp,
        )

    # --- venue state ---------------------------------------------------------------------------
    def add_market(
        self,
        price: Decimal = Decimal("0.5"),
        *,
        tick_size: Decimal = CENT,
        neg_risk: bool = False,
        title: str = "",
        min_order_size: Decimal = Decimal(5),
    ) -> Market:
        return self.state.new_market(
            price,
            tick_size=tick_size,
            neg_risk=neg_risk,
            title=title,
            min_order_size=min_order_size,
        )

    def resolve_market(self, winning_token_id: str) -> Market:
        """Resolve the market of this token in its favour (see `SimState.resolve`)."""
        return self.state.resolve(winning_token_id)

    def token(self, token_id: str) -> Token:
        market = self.state.market_of(token_id)
        if market is None:
            raise KeyError(f"unknown token {token_id}")
        return market.token(token_id)

    def set_book(
        self,
        token_id: str,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
    ) -> Book:
        """Exact levels (price, size); the book is pinned: leader trades no longer move it."""
        return self.state.set_book(token_id, bids, asks)

    def set_balance(
        self,
        address: str,
        *,
        collateral: Decimal | None = None,
        token_id: str | None = None,
        shares: Decimal | None = None,
        allowance: Decimal | None = None,
        approved: bool | None = None,
    ) -> None:
        """A CLOB account's pUSD, token shares, pUSD allowance or token approval."""
        account = self.state.account(address)
        if collateral is not None:
            account.collateral = collateral
        if token_id is not None and shares is not None:
            account.tokens[token_id] = shares
        if allowance is not None:
            account.collateral_allowance = allowance
        if approved is not None:
            account.tokens_approved = approved

    def link_wallet(self, signer: str, wallet: str, signature_type: int) -> None:
        """Make `wallet` `signer`'s proxy (signature type 1) or Safe (2): the maker its orders
        must name, and the account they debit and `GET /balance-allowance` reports. Without
        a link, the signer's first such order that passes the signature checks makes it."""
        self.state.link_wallet(signer, wallet, signature_type)

    def on_order_arrival(self, hook: Callable[[str, Any], None]) -> None:
        """Call `hook(order_hash, body)` for every order posted, before it is processed."""
        self.clob.arrival_hooks.append(hook)

    def change_tick(self, token_id: str, tick_size: Decimal) -> None:
        self.state.change_tick(token_id, tick_size)

    def _apply_now(self, spec: Fault) -> None:
        if isinstance(spec, TickSizeChange):
            self.state.change_tick(spec.token_id, spec.tick_size)
        elif isinstance(spec, Disconnect):
            hub = {"rtds": self.rtds, "market": self.market_ws, "user": self.user_ws}
            hub[spec.channel].disconnect_all()

    # --- introspection -------------------------------------------------------------------------
    def requests(
        self, *, path: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        """Every request received (but `/_sim/` ones), oldest first."""
        return [
            r
            for r in self.request_log
            if (path is None or r["path"] == path)
            and (method is None or r["method"] == method.upper())
        ]

    def trades(self, *, wallet: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Every leader trade emitted so far, with its identity fields."""
        wanted = wallet.lower() if wallet else None
        return [
            f.identity()
            for f in self.state.fills
            if f.seq > since and (wanted is None or f.wallet == wanted)
        ]

    def order(self, order_hash: str) -> SimOrder | None:
        return self.state.orders.get(order_hash)

    def orders(self, *, order_hash: str | None = None) -> list[dict[str, Any]]:
        """Every order received, by hash: the signer recovered from its signature, token, side,
        amounts, status, fills, and how often it was posted (`received`) and accepted."""
        fills: dict[str, list[dict[str, str]]] = {}
        for t in self.state.clob_trades:
            fills.setdefault(t.taker_order_id, []).append(
                {"trade_id": t.trade_id, "price": fmt(t.price), "size": fmt(t.size)}
            )
        return [
            {
                "order_hash": o.order_hash,
                "signer": o.recovered_signer,  # recovered from the signature
                "order_signer": o.signer,  # what the order says
                "maker": o.maker,
                "signature_type": o.signature_type,
                "owner": o.owner,
                "token_id": o.token_id,
                "side": o.side,
                "order_type": o.order_type,
                "maker_amount": str(o.maker_amount),
                "taker_amount": str(o.taker_amount),
                "price": fmt(o.price),
                "status": o.status,
                "error": o.error,
                "size_matched": fmt(o.size_matched),
                "cash_matched": fmt(o.cash_matched),
                "fills": fills.get(o.order_hash, []),
                "received": o.received,
                "accepted": o.accepted,
                "created_at": o.created_at,
            }
            for o in self.state.orders.values()
            if order_hash is None or o.order_hash == order_hash
        ]

    def markets(self) -> list[dict[str, Any]]:
        return [
            {
                "condition_id": m.condition_id,
                "title": m.title,
                "tick_size": str(m.tick_size),
                "neg_risk": m.neg_risk,
                "tokens": [
                    {
                        "token_id": t.token_id,
                        "outcome": t.outcome,
                        "mark": str(self.state.mark(t.token_id)),
                    }
                    for t in m.tokens
                ],
            }
            for m in self.state.markets.values()
        ]

    def status(self) -> dict[str, Any]:
        playback = self._playback
        return {
            "url": self.url,
            "feed": "tape"
            if self.config.tapes
            else ("generator" if self.config.generate_seed is not None else None),
            "started": self._go.is_set(),
            "finished": bool(playback and playback.finished),
            "emitted": playback.emitted if playback else 0,
            "leader_trades": len(self.state.fills),
            "skipped_rows": self.skipped_rows,
            "orders": len(self.state.orders),
            "requests": len(self.request_log),
            "rtds_connections": len(self.rtds.subscribers),
        }


async def serve(config: SimConfig, announce: Callable[[str], None]) -> None:
    """Run until SIGINT or SIGTERM (`polycopy sim serve`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SimServer(config) as sim:
            announce(sim.banner())
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
