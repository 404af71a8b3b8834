"""Everything the simulated venue knows: markets and books, the wallets' fills and positions as
the Data API shows them, CLOB accounts, orders and trades.

Money, prices and shares are `Decimal`. Changes are announced to `StateListener`s (the
websocket streams), which decide what to send.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from polycopy.domain.events import LeaderTrade
from polycopy.domain.money import CENT, ONE, ZERO, fmt, to_decimal
from polycopy.ingest.decode import DecodeError, decode_trade
from polycopy.sim.book import Book
from polycopy.sim.settings import SimConfig

BUY, SELL = "BUY", "SELL"
# signature types whose funds sit in a wallet apart from the signer (reference §4.3): the
# simulator cannot derive a proxy's or Safe's address as the chain does (CREATE2), so it is
# linked to its signer explicitly or by the signer's first order that names it
WALLET_SIGNATURE_TYPES = (1, 2)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_COMPLEMENTS = {"Yes": "No", "No": "Yes", "Up": "Down", "Down": "Up"}


@dataclass(frozen=True, slots=True)
class Token:
    token_id: str
    outcome: str
    outcome_index: int
    synthetic: bool = False  # made up as the other side of a market a tape showed one side of


@dataclass(slots=True)
class Market:
    condition_id: str
    tokens: tuple[Token, Token]
    tick_size: Decimal = CENT
    min_order_size: Decimal = Decimal(5)
    neg_risk: bool = False
    title: str = ""
    slug: str = ""
    event_slug: str = ""
    icon: str = ""
    event_id: str = ""
    end_date: str = "2026-12-31"
    accepting_orders: bool = True
    closed: bool = False  # resolved: no order book any more
    winner: str | None = None  # the winning token once resolved
    fee_rate: Decimal = ZERO
    fee_exponent: Decimal = ZERO

    def token(self, token_id: str) -> Token:
        return self.tokens[0] if self.tokens[0].token_id == token_id else self.tokens[1]

    def other(self, token_id: str) -> Token:
        return self.tokens[1] if self.tokens[0].token_id == token_id else self.tokens[0]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str = ""
    pseudonym: str = ""
    bio: str = ""
    profile_image: str = ""
    profile_image_optimized: str = ""


NO_PROFILE = Profile()


@dataclass(frozen=True, slots=True)
class ActivityFill:
    """One fill of one wallet, as the Data API and RTDS show it."""

    seq: int
    wallet: str  # lower-case proxy wallet
    market: Market
    token: Token
    side: str
    price: Decimal
    size: Decimal
    timestamp: int  # epoch seconds
    tx_hash: str
    role: str  # taker | maker
    profile: Profile
    visible_at: float  # wall time from which the Data API shows it
    # feed (a leader trade) | clob (a fill of an order posted to this simulator) | crowd (a
    # firehose trade of another wallet) | counterparty (another wallet's maker side of a feed
    # or clob taker fill)
    origin: str

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.timestamp, self.seq)

    def identity(self) -> dict[str, Any]:
        """The fields a client's dedup key is made of (SPEC §2.8), for introspection."""
        return {
            "seq": self.seq,
            "proxyWallet": self.wallet,
            "transactionHash": self.tx_hash,
            "asset": self.token.token_id,
            "conditionId": self.market.condition_id,
            "side": self.side,
            "price": fmt(self.price),
            "size": fmt(self.size),
            "timestamp": self.timestamp,
            "role": self.role,
        }


@dataclass(slots=True)
class Holding:
    """A wallet's position in one token, with the cost basis the Data API reports."""

    market: Market
    token: Token
    size: Decimal = ZERO
    cost: Decimal = ZERO  # cost basis of `size`
    total_bought: Decimal = ZERO
    realized: Decimal = ZERO
    last_event_at: int = 0

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.size if self.size > 0 else ZERO

    def apply(self, side: str, price: Decimal, size: Decimal, timestamp: int) -> None:
        if side == BUY:
            self.cost += price * size
            self.size += size
            self.total_bought += size
        else:
            # a tape can sell shares bought before it starts: only what is known is sold
            sold = min(size, self.size)
            avg = self.avg_price
            self.realized += (price - avg) * sold
            self.cost -= avg * sold
            self.size -= sold
        self.last_event_at = timestamp


@dataclass(slots=True)
class Account:
    """A CLOB account: pUSD and outcome tokens, in shares, with its exchange approvals."""

    collateral: Decimal
    tokens: dict[str, Decimal] = field(default_factory=dict)
    collateral_allowance: Decimal = Decimal(10) ** 12
    tokens_approved: bool = True


@dataclass(frozen=True, slots=True)
class MakerFill:
    order_id: str
    maker_address: str
    price: Decimal
    shares: Decimal


@dataclass(slots=True)
class ClobTrade:
    trade_id: str
    taker_order_id: str
    owner: str  # API key
    maker_address: str  # the taker's funder address
    market: Market
    token: Token
    side: str
    size: Decimal
    price: Decimal  # size-weighted over the levels taken
    match_time: float
    tx_hash: str
    makers: tuple[MakerFill, ...]
    status: str = "CONFIRMED"


@dataclass(slots=True)
class SimOrder:
    order_hash: str
    owner: str
    maker: str
    signer: str
    token_id: str
    side: str
    order_type: str
    maker_amount: int
    taker_amount: int
    price: Decimal  # the limit the amounts imply, as the venue reads it (see clob.py)
    original_size: Decimal  # shares
    expiration: int
    created_at: float
    status: str  # live | matched | killed | canceled | rejected
    error: str = ""
    recovered_signer: str = ""  # whose key made the signature ("" if none could be recovered)
    signature_type: int = 0
    size_matched: Decimal = ZERO
    cash_matched: Decimal = ZERO
    trade_ids: list[str] = field(default_factory=list)
    received: int = 1  # POSTs carrying this hash
    accepted: int = 0  # of which the venue accepted


class StateListener:
    """Told about every change; the websocket streams override what they publish."""

    def fill_recorded(self, fill: ActivityFill) -> None:
        return None

    def book_changed(self, market: Market, book: Book) -> None:
        return None

    def tick_changed(self, market: Market, old: Decimal, new: Decimal) -> None:
        return None

    def order_changed(self, order: SimOrder, kind: str) -> None:
        return None

    def clob_traded(self, trade: ClobTrade, order: SimOrder) -> None:
        return None


class SimState:
    def __init__(self, config: SimConfig, clock: Callable[[], float], rng: random.Random) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng
        self.listeners: list[StateListener] = []
        self.markets: dict[str, Market] = {}
        self._market_of_token: dict[str, Market] = {}
        self.books: dict[str, Book] = {}
        self.fills: list[ActivityFill] = []  # leader trades (origin feed), in emission order
        self._by_wallet: dict[str, list[ActivityFill]] = {}
        # other wallets' fills (crowd, counterparty): only the latest, oldest first
        self._others: deque[ActivityFill] = deque()
        self._others_by_wallet: dict[str, deque[ActivityFill]] = {}
        self._holdings: dict[str, dict[str, Holding]] = {}
        self._unsettled: deque[ActivityFill] = deque()
        self._profiles: dict[str, Profile] = {}
        self.leaders: set[str] = set()
        self.accounts: dict[str, Account] = {}
        # (signer, signature type 1 proxy | 2 Safe) → the wallet that holds its funds
        self.wallets: dict[tuple[str, int], str] = {}
        self.orders: dict[str, SimOrder] = {}
        self.clob_trades: list[ClobTrade] = []
        self._seq = 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- markets and books ----------------------------------------------------------------
    def add_market(self, market: Market, price: Decimal) -> Market:
        """Register a market and seed its two books around `price` (of token 0)."""
        self.markets[market.condition_id] = market
        for token, p in zip(market.tokens, (price, ONE - price), strict=True):
            self._market_of_token[token.token_id] = market
            book = Book(
                token.token_id,
                market.condition_id,
                market.tick_size,
                self.config.book_depth,
                self.now_ms(),
            )
            book.seed(p, self.now_ms())
            self.books[token.token_id] = book
        return market

    def new_market(
        self,
        price: Decimal = Decimal("0.5"),
        *,
        tick_size: Decimal = CENT,
        neg_risk: bool = False,
        title: str = "",
        outcomes: tuple[str, str] = ("Yes", "No"),
        min_order_size: Decimal = Decimal(5),
    ) -> Market:
        """A fresh binary market with random ids (from the seeded generator)."""
        index = len(self.markets)
        condition_id = self.random_hex(32)
        tokens = (
            Token(str(self.rng.getrandbits(252)), outcomes[0], 0),
            Token(str(self.rng.getrandbits(252)), outcomes[1], 1),
        )
        slug = f"sim-market-{index:03d}"
        market = Market(
            condition_id,
            tokens,
            tick_size=tick_size,
            neg_risk=neg_risk,
            min_order_size=min_order_size,
            title=title or f"Simulated market {index}?",
            slug=slug,
            event_slug=slug,
            icon=f"https://example.invalid/{slug}.png",
            event_id=str(10_000 + index),
        )
        return self.add_market(market, price)

    def market_of(self, token_id: str) -> Market | None:
        return self._market_of_token.get(token_id)

    def mark(self, token_id: str) -> Decimal:
        """Current price of a token: 1 or 0 once its market resolved, else its book's mid,
        else 0.5."""
        market = self._market_of_token.get(token_id)
        if market is not None and market.winner is not None:
            return Decimal(1) if market.winner == token_id else ZERO
        book = self.books.get(token_id)
        if book is not None:
            mid = book.mid()
            if mid is not None:
                return mid
        return Decimal("0.5")

    def set_book(
        self,
        token_id: str,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
    ) -> Book:
        book = self.books[token_id]
        book.replace(bids, asks, self.now_ms())
        self._announce_book(book)
        return book

    def change_tick(self, token_id: str, tick: Decimal) -> Market:
        """A market's tick changes (both tokens); `tick_size_change` goes out on /ws/market."""
        market = self._market_of_token.get(token_id) or self.markets[token_id]
        old = market.tick_size
        market.tick_size = tick
        for token in market.tokens:
            self.books[token.token_id].retick(tick, self.now_ms())
        for listener in self.listeners:
            listener.tick_changed(market, old, tick)
        for token in market.tokens:
            self._announce_book(self.books[token.token_id])
        return market

    def resolve(self, token_id: str) -> Market:
        """The market of `token_id` resolves with it as the winner: closed, no book, every
        position in it worth 1 (winner) or 0, redeemable."""
        market = self._market_of_token[token_id]
        market.closed = True
        market.accepting_orders = False
        market.winner = token_id
        return market

    def _announce_book(self, book: Book) -> None:
        market = self._market_of_token[book.token_id]
        for listener in self.listeners:
            listener.book_changed(market, book)

    # --- wallets' fills --------------------------------------------------------------------
    def record_row(
        self,
        row: Mapping[str, Any],
        *,
        trade: LeaderTrade | None = None,
        timestamp: int | None = None,
    ) -> ActivityFill:
        """A leader trade from an activity-shaped row (tape, generator, test), timed now.

        The row's identity fields (wallet, tx hash, token, side, price, size) are kept; its
        timestamp is replaced by the current time unless `timestamp` is given. `trade` is the
        row already decoded (tapes decode once, at load).
        """
        if trade is None:
            trade = self._decode(row)
        market = self.market_for_row(row, trade.asset, trade.price)
        wallet = trade.leader
        if wallet not in self._profiles:
            self._profiles[wallet] = _profile_of(row)
        role = str(row.get("_role") or "")
        if not role:
            role = "maker" if self.rng.random() < self.config.maker_share else "taker"
        return self.record_fill(
            wallet,
            market.token(trade.asset),
            trade.side.value,
            trade.price,
            trade.size,
            trade.tx_hash,
            role=role,
            origin="feed",
            timestamp=timestamp,
        )

    def _decode(self, row: Mapping[str, Any]) -> LeaderTrade:
        """Decode a row strictly; a missing timestamp or tx hash is made up (test rows)."""
        if not row.get("timestamp") or not (
            row.get("transactionHash") or row.get("transaction_hash")
        ):
            filled = dict(row)
            if not filled.get("timestamp"):
                filled["timestamp"] = int(self.clock())
            if not (filled.get("transactionHash") or filled.get("transaction_hash")):
                filled["transactionHash"] = self.random_hex(32)
            row = filled
        try:
            return decode_trade(row)
        except DecodeError as exc:
            raise ValueError(f"not a trade row: {exc}") from None

    def record_fill(
        self,
        wallet: str,
        token: Token,
        side: str,
        price: Decimal,
        size: Decimal,
        tx_hash: str,
        *,
        role: str = "taker",
        origin: str = "feed",
        timestamp: int | None = None,
    ) -> ActivityFill:
        wallet = wallet.lower()
        market = self._market_of_token[token.token_id]
        now = self.clock()
        self._seq += 1
        fill = ActivityFill(
            seq=self._seq,
            wallet=wallet,
            market=market,
            token=token,
            side=side,
            price=price,
            size=size,
            timestamp=int(now) if timestamp is None else timestamp,
            tx_hash=tx_hash,
            role=role,
            profile=self._profiles.get(wallet, NO_PROFILE),
            visible_at=now + self.config.data_api_lag_s,
            origin=origin,
        )
        rows = self._by_wallet.setdefault(wallet, [])
        if not rows or rows[-1].sort_key <= fill.sort_key:
            rows.append(fill)
        else:
            bisect.insort(rows, fill, key=lambda f: f.sort_key)
        if self.config.data_api_lag_s > 0:
            self._unsettled.append(fill)  # positions move when the Data API shows the fill
        else:
            self._settle_fill(fill)
        if origin == "feed":
            self.leaders.add(wallet)
            self.fills.append(fill)
            self._move_books(fill)
        for listener in self.listeners:
            listener.fill_recorded(fill)
        return fill

    def _move_books(self, fill: ActivityFill) -> None:
        # a maker fill means someone else took: the taker's side is the opposite one
        taker_side = fill.side if fill.role == "taker" else (SELL if fill.side == BUY else BUY)
        mirrored = SELL if taker_side == BUY else BUY
        now_ms = self.now_ms()
        for token_id, side, price in (
            (fill.token.token_id, taker_side, fill.price),
            (fill.market.other(fill.token.token_id).token_id, mirrored, ONE - fill.price),
        ):
            book = self.books[token_id]
            if book.follow_trade(side, price, fill.size, now_ms):
                self._announce_book(book)

    def record_other_fill(
        self,
        wallet: str,
        profile: Profile,
        token: Token,
        side: str,
        price: Decimal,
        size: Decimal,
        tx_hash: str,
        *,
        role: str,
        origin: str,
        timestamp: int | None = None,
    ) -> ActivityFill:
        """A fill of a wallet nobody follows: shown by the trade feeds and RTDS, kept only
        among the latest `other_fills_kept`, moving neither books nor positions."""
        now = self.clock()
        self._seq += 1
        fill = ActivityFill(
            seq=self._seq,
            wallet=wallet.lower(),
            market=self._market_of_token[token.token_id],
            token=token,
            side=side,
            price=price,
            size=size,
            timestamp=int(now) if timestamp is None else timestamp,
            tx_hash=tx_hash,
            role=role,
            profile=profile,
            visible_at=now + self.config.data_api_lag_s,
            origin=origin,
        )
        self._others.append(fill)
        self._others_by_wallet.setdefault(fill.wallet, deque()).append(fill)
        while len(self._others) > self.config.other_fills_kept:
            oldest = self._others.popleft()
            theirs = self._others_by_wallet[oldest.wallet]
            theirs.popleft()
            if not theirs:
                del self._others_by_wallet[oldest.wallet]
        for listener in self.listeners:
            listener.fill_recorded(fill)
        return fill

    def fills_of(self, wallet: str) -> list[ActivityFill]:
        """The wallet's fills the Data API can show now, oldest first."""
        key = wallet.lower()
        rows = self._by_wallet.get(key, [])
        others = self._others_by_wallet.get(key)
        if others:  # a wallet nobody follows (its fills can come out of time order)
            rows = sorted((*rows, *others), key=lambda f: f.sort_key)
        now = self.clock()
        if rows and rows[-1].visible_at <= now:
            return rows
        return [f for f in rows if f.visible_at <= now]

    def all_fills(self) -> list[ActivityFill]:
        now = self.clock()
        visible = [f for rows in self._by_wallet.values() for f in rows if f.visible_at <= now]
        visible += [f for f in self._others if f.visible_at <= now]
        visible.sort(key=lambda f: f.sort_key)
        return visible

    def _settle_fill(self, fill: ActivityFill) -> None:
        self.holding(fill.wallet, fill.token.token_id).apply(
            fill.side, fill.price, fill.size, fill.timestamp
        )

    def _settle(self) -> None:
        now = self.clock()
        pending = self._unsettled
        while pending and pending[0].visible_at <= now:
            self._settle_fill(pending.popleft())

    def holding(self, wallet: str, token_id: str) -> Holding:
        held = self._holdings.setdefault(wallet.lower(), {})
        holding = held.get(token_id)
        if holding is None:
            market = self._market_of_token[token_id]
            holding = held[token_id] = Holding(market, market.token(token_id))
        return holding

    def holdings_of(self, wallet: str) -> list[Holding]:
        """The wallet's positions as the Data API shows them now."""
        self._settle()
        return list(self._holdings.get(wallet.lower(), {}).values())

    def profile_of(self, wallet: str) -> Profile:
        return self._profiles.get(wallet.lower(), NO_PROFILE)

    def set_profile(self, wallet: str, profile: Profile) -> None:
        self._profiles[wallet.lower()] = profile

    def set_position(
        self, wallet: str, token_id: str, size: Decimal, avg_price: Decimal, *, at: int = 0
    ) -> Holding:
        """Put a position straight into the Data API's view (e.g. one held before the tape)."""
        self._settle()
        holding = self.holding(wallet, token_id)
        holding.size = size
        holding.cost = size * avg_price
        holding.total_bought = max(holding.total_bought, size)
        holding.last_event_at = at or int(self.clock())
        return holding

    # --- tape rows -------------------------------------------------------------------------
    def market_for_row(self, row: Mapping[str, Any], token_id: str, price: Decimal) -> Market:
        """The market of a row's token, created (with its other side) if it is new."""
        market = self._market_of_token.get(token_id)
        if market is not None:
            return market
        condition_id = str(row.get("conditionId") or row.get("condition_id") or "").lower()
        index = _outcome_index(row)
        outcome = str(row.get("outcome") or ("Yes" if index == 0 else "No"))
        token = Token(token_id, outcome, index)
        known = self.markets.get(condition_id)
        if known is not None:
            return self._adopt_token(known, token)
        other = Token(
            _complement_id(token_id),
            _COMPLEMENTS.get(outcome, f"Not {outcome}"),
            1 - index,
            synthetic=True,
        )
        tokens = (token, other) if index == 0 else (other, token)
        slug = str(row.get("slug") or f"market-{condition_id[2:10]}")
        market = Market(
            condition_id or self.random_hex(32),
            tokens,
            title=str(row.get("title") or slug),
            slug=slug,
            event_slug=str(row.get("eventSlug") or row.get("event_slug") or slug),
            icon=str(row.get("icon") or ""),
            event_id=str(row.get("eventId") or ""),
        )
        p = min(max(price, CENT), ONE - CENT)
        return self.add_market(market, p if index == 0 else ONE - p)

    def _adopt_token(self, market: Market, token: Token) -> Market:
        """A second real token of a market replaces the side that was made up for it."""
        slot = next((i for i, t in enumerate(market.tokens) if t.synthetic), None)
        if slot is None:
            raise ValueError(f"token {token.token_id} is not in market {market.condition_id}")
        old = market.tokens[slot]
        placed = Token(token.token_id, token.outcome, slot)
        market.tokens = (placed, market.tokens[1]) if slot == 0 else (market.tokens[0], placed)
        book = self.books.pop(old.token_id)
        book.token_id = token.token_id
        self.books[token.token_id] = book
        del self._market_of_token[old.token_id]
        self._market_of_token[token.token_id] = market
        return market

    # --- CLOB accounts, orders, trades -------------------------------------------------------
    def account(self, address: str) -> Account:
        key = address.lower()
        account = self.accounts.get(key)
        if account is None:
            account = self.accounts[key] = self.fresh_account()
        return account

    def fresh_account(self) -> Account:
        """What an account nobody funded holds."""
        return Account(collateral=self.config.default_collateral)

    def link_wallet(self, signer: str, wallet: str, signature_type: int) -> None:
        """`wallet` is `signer`'s proxy (type 1) or Safe (type 2): its orders' maker, whose
        account they debit and whose balance `GET /balance-allowance` reports."""
        if signature_type not in WALLET_SIGNATURE_TYPES:
            raise ValueError(f"signature_type: expected one of {WALLET_SIGNATURE_TYPES}")
        for name, address in (("signer", signer), ("wallet", wallet)):
            if not _ADDRESS.match(address):
                raise ValueError(f"{name}: not an address: {address!r}")
        self.wallets[(signer.lower(), signature_type)] = wallet.lower()

    def wallet_of(self, signer: str, signature_type: int) -> str | None:
        """The address whose funds an order of `signer` under `signature_type` moves: the
        signer itself for an EOA (type 0), its linked proxy or Safe otherwise (None: none is
        known yet)."""
        if signature_type == 0:
            return signer.lower()
        return self.wallets.get((signer.lower(), signature_type))

    def record_order(self, order: SimOrder) -> None:
        self.orders[order.order_hash] = order

    def random_hex(self, n_bytes: int) -> str:
        return "0x" + f"{self.rng.getrandbits(8 * n_bytes):0{2 * n_bytes}x}"

    def random_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def announce_order(self, order: SimOrder, kind: str) -> None:
        for listener in self.listeners:
            listener.order_changed(order, kind)

    def announce_trade(self, trade: ClobTrade, order: SimOrder, book: Book) -> None:
        self.clob_trades.append(trade)
        for listener in self.listeners:
            listener.clob_traded(trade, order)
        self._announce_book(book)


def _profile_of(row: Mapping[str, Any]) -> Profile:
    def get(*keys: str) -> str:
        for key in keys:
            value = row.get(key)
            if isinstance(value, str):
                return value
        return ""

    return Profile(
        name=get("name"),
        pseudonym=get("pseudonym"),
        bio=get("bio"),
        profile_image=get("profileImage", "profile_image"),
        profile_image_optimized=get("profileImageOptimized", "profile_image_optimized"),
    )


def _outcome_index(row: Mapping[str, Any]) -> int:
    raw = row.get("outcomeIndex", row.get("outcome_index"))
    try:
        index = int(to_decimal(raw)) if raw not in (None, "") else 0
    except ValueError:
        index = 0
    return index if index in (0, 1) else 0


def _complement_id(token_id: str) -> str:
    digest = hashlib.sha256(f"complement:{token_id}".encode()).digest()
    return str(int.from_bytes(digest[:31], "big"))
