"""Live execution through Polymarket's official SDK (`polymarket-client`, CLOB V2, pUSD).

For each plan: read the market's rules, re-align the bound to its tick, compute the integer
amounts ourselves (`amounts.py`), optionally check the book (R29: nothing fillable within the
bound → no POST), sign through the SDK's signer in a worker thread, check that the signed
amounts are ours, commit the signed order, its hash and the market's fee schedule
(`SubmissionJournal`), then POST it.

The POST (R3, R4):
- 429 (rate limited before processing): the *same* signed order is sent again, with capped
  jittered backoff (tenacity), at most `order_resend_max` times. Never re-signed.
- a definitive refusal (a 4xx, or a 200 whose `errorMsg` is a known error string): REJECTED,
  or no fill for an unmatched FAK/FOK (its reason read from the book the way paper reads
  it); an invalid-tick refusal also drops the cached market rules.
- anything ambiguous (timeout, transport error, 5xx, 425, malformed answer, "Duplicated", a
  200 that is neither accepted nor a known error): look the order up by its hash; if the
  venue does not know it yet, the intent is UNKNOWN (`EXEC_UNKNOWN`, reservation kept) until
  a later look-up resolves it.

Accepted means success && errorMsg == "" && orderID != "" && status ∈ {live, matched,
delayed} (the SDK's `AcceptedOrder`). Fills come from `/data/trades` (taker_order_id == our
hash), identified by trade id, read in a window around the signing time. An order is closed
only when its fills are provably all known (`_resolve_hash`); the SDK's auto-approve path
(`place_*_order`) is never used.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, TypeVar

import structlog
from eth_account import Account
from polymarket.clients.async_secure import AsyncSecureClient
from polymarket.errors import (
    PolymarketError,
    RateLimitError,
    RequestRejectedError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)
from polymarket.models.clob.account import ClobTrade, OpenOrder
from polymarket.models.clob.order_response import AcceptedOrder, OrderResponse
from polymarket.models.clob.orders import SignedOrder

from polycopy.config import EndpointsSection
from polycopy.crashpoints import crash_point
from polycopy.domain.events import Side
from polycopy.domain.money import USDC_UNIT, ZERO
from polycopy.domain.reasons import Reason
from polycopy.domain.sizing import OrderPlan
from polycopy.execution.amounts import OrderAmounts, align_limit, check_signed, order_amounts
from polycopy.execution.book_walk import NO_FEES, FeeSchedule, walk
from polycopy.execution.clob_http import ClobHttp, VenueNotFound
from polycopy.execution.errors import (
    AmbiguousSubmitError,
    AmountError,
    ErrorClass,
    InvariantError,
    PermanentVenueError,
    RejectKind,
    TransientVenueError,
    VenueError,
    classify,
)
from polycopy.execution.market_stream import BookSource, MarketStream
from polycopy.execution.markets import MarketCatalog, MarketInfo
from polycopy.execution.port import (
    ExecutionReport,
    OrderIntent,
    SignedSubmission,
    SubmissionJournal,
    VenueFill,
    not_sent,
    rejected,
    summarize,
    unknown,
)
from polycopy.execution.retry import RetryPolicy, retrying
from polycopy.execution.sdk_env import environment_for
from polycopy.execution.sdk_orders import sign_market_order, signed_payload
from polycopy.execution.settings import ExecutionSettings
from polycopy.execution.states import OrderStatus
from polycopy.secrets import Credentials, register_secret, scrub

log = structlog.get_logger("polycopy.live")

T = TypeVar("T")
BUY_COMPLETE_TOLERANCE = Decimal("0.0001")  # pUSD left unspent by a fully matched BUY
MATCHED_TOLERANCE = Decimal("0.0001")  # shares: size_matched beyond the visible fills by more
TRADE_LOOKBACK_S = 300  # trades are looked for from this long before signing (clock skew)
SETTLING = frozenset({"MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED", "RETRYING"})


@dataclass(frozen=True, slots=True)
class TradeScan:
    """Our fills of one order, and whether the listing was read to its end."""

    fills: tuple[VenueFill, ...]
    exhaustive: bool
    pages: int


def signing_backend() -> str:
    """The ECDSA backend eth-keys signs with (`CoinCurveECCBackend` is ~10× faster)."""
    from eth_keys.backends import get_backend

    return type(get_backend()).__name__


class LiveExecutor:
    def __init__(
        self,
        client: AsyncSecureClient,
        http: ClobHttp,
        catalog: MarketCatalog,
        settings: ExecutionSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        random_fn: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        signing_threads: int = 2,
        books: BookSource | None = None,
    ) -> None:
        self._client = client
        self._http = http
        self._books: BookSource = books or http  # for the pre-check; a MarketStream is live
        self.market_stream = books if isinstance(books, MarketStream) else None
        self._catalog = catalog
        self._settings = settings or ExecutionSettings()
        self._clock = clock
        self._random = random_fn
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(
            max_workers=signing_threads, thread_name_prefix="polycopy-sign"
        )
        self.posts = 0  # POST /order attempts made by this executor
        self.alerts = 0  # order-id mismatches and orders whose fills stay missing
        self.sends_orders = True

    @classmethod
    async def create(
        cls,
        credentials: Credentials,
        endpoints: EndpointsSection,
        settings: ExecutionSettings | None = None,
        *,
        market_stream: bool = False,
        **kwargs: Any,
    ) -> LiveExecutor:
        """Build the SDK's secure client (derives L2 API credentials) for `credentials`.
        With `market_stream`, books for the pre-check come from a `MarketStream` on
        `endpoints.clob_ws_url` (the caller runs `executor.market_stream.run()`).

        Only live mode calls this; paper never constructs a secure client.
        """
        settings = settings or ExecutionSettings()
        backend = signing_backend()
        if backend.startswith("CoinCurve"):
            log.info("signing_backend_checked", backend=backend)
        else:
            log.warning("signing_backend_checked", backend=backend, fast=False)
        key = credentials.private_key.get_secret_value()
        try:
            wallet = credentials.wallet or Account.from_key(key).address
        except Exception:  # eth-account's message could echo input: say nothing of it
            raise InvariantError("the private key is not usable") from None
        environment = environment_for(endpoints.clob_url, data_url=endpoints.data_api_url)
        try:
            client = await asyncio.wait_for(
                AsyncSecureClient.create(private_key=key, wallet=wallet, environment=environment),
                timeout=settings.http_timeout_s * 4,
            )
        except (PolymarketError, TimeoutError) as exc:
            raise VenueError(
                f"cannot create the CLOB client: {type(exc).__name__}: {scrub(str(exc))}"
            ) from None
        register_secret(client.credentials.secret)
        register_secret(client.credentials.passphrase)
        http = ClobHttp(
            endpoints.clob_url, timeout_s=settings.http_timeout_s, policy=settings.get_policy
        )
        catalog = MarketCatalog(http, ttl_s=settings.market_cache_ttl_s)
        if market_stream:
            kwargs["books"] = MarketStream(endpoints.clob_ws_url, http, catalog)
        log.info("live_executor_ready", signer=client.signer, wallet=client.wallet)
        return cls(client, http, catalog, settings, **kwargs)

    @property
    def mode(self) -> str:
        return "live"

    @property
    def catalog(self) -> MarketCatalog:
        return self._catalog

    @property
    def signer(self) -> str:
        return str(self._client.signer)

    async def close(self) -> None:
        try:
            await self._client.close()
        finally:
            await self._http.close()
            self._pool.shutdown(wait=False)

    # --- execute --------------------------------------------------------------------------
    async def execute(
        self, plan: OrderPlan, intent: OrderIntent, journal: SubmissionJournal
    ) -> ExecutionReport:
        settings = self._settings
        try:
            market = await self._catalog.get(plan.asset, plan.context.condition_id)
        except VenueNotFound as exc:
            return not_sent(Reason.EXEC_NO_LIQUIDITY, str(exc))
        except VenueError as exc:
            return rejected(None, f"market rules unavailable: {exc}", OrderStatus.ABANDONED)
        try:
            limit = align_limit(plan.side, plan.limit_price, market.tick_size)
            amounts = order_amounts(plan.side, plan.notional, plan.shares, limit)
        except AmountError as exc:
            return not_sent(Reason.MARKET_MIN_ORDER_SIZE, str(exc))
        value = amounts.maker if plan.side is Side.BUY else amounts.maker * limit
        if value < market.min_order_notional:
            return not_sent(
                Reason.MARKET_MIN_ORDER_SIZE, f"${value} < ${market.min_order_notional}"
            )
        # The book check and the signature are independent: run them side by side. Signing
        # has no effect until the signed order is journaled, so a refusal just drops it.
        precheck = (
            asyncio.ensure_future(self._precheck(plan, amounts, market, intent.order_type == "FOK"))
            if settings.book_precheck
            else None
        )
        loop = asyncio.get_running_loop()
        try:
            signed, order_hash = await loop.run_in_executor(
                self._pool,
                functools.partial(
                    sign_market_order,
                    self._client,
                    token_id=plan.asset,
                    side=plan.side.value,
                    maker_amount=amounts.maker_amount,
                    taker_amount=amounts.taker_amount,
                    neg_risk=market.neg_risk,
                    order_type=intent.order_type,
                ),
            )
        except BaseException:
            if precheck is not None:
                precheck.cancel()
            raise
        if precheck is not None:
            refusal = await precheck
            if refusal is not None:
                return refusal
        check_signed(amounts, signed.side, signed.maker_amount, signed.taker_amount)
        intent = journal.record_submission(
            intent,
            SignedSubmission(order_hash, signed_payload(signed), signed.timestamp, market.fees),
        )
        crash_point("after_commit_before_post")
        log.info(
            "order_submitted",
            intent_id=intent.intent_id,
            order_hash=order_hash,
            side=plan.side.value,
            asset=plan.asset,
            maker_amount=amounts.maker_amount,
            taker_amount=amounts.taker_amount,
            limit=limit,
        )
        return await self._submit(intent, signed, order_hash, amounts, market, journal)

    async def _precheck(
        self, plan: OrderPlan, amounts: OrderAmounts, market: MarketInfo, fok: bool
    ) -> ExecutionReport | None:
        try:
            book = await self._books.book(plan.asset)
        except VenueNotFound as exc:
            return not_sent(Reason.EXEC_NO_LIQUIDITY, str(exc))
        except VenueError as exc:  # the venue will decide; a failed read must not block
            log.warning("book_precheck_skipped", asset=plan.asset, error=str(exc))
            return None
        result = walk(
            book,
            plan.side,
            limit=amounts.limit_price,
            notional=amounts.maker if plan.side is Side.BUY else ZERO,
            shares=amounts.maker if plan.side is Side.SELL else ZERO,
            fok=fok,
            fees=market.fees,
        )
        if result.fills:
            return None
        return not_sent(result.reason or Reason.EXEC_NO_LIQUIDITY, "book precheck: no POST")

    async def _submit(
        self,
        intent: OrderIntent,
        signed: SignedOrder,
        order_hash: str,
        amounts: OrderAmounts,
        market: MarketInfo,
        journal: SubmissionJournal,
    ) -> ExecutionReport:
        settings = self._settings
        policy = RetryPolicy(
            retries=settings.order_resend_max,
            base_s=settings.get_policy.base_s,
            cap_s=settings.get_policy.cap_s,
            deadline_s=settings.get_policy.deadline_s,
        )
        try:
            response = await self._post_with_resends(signed, policy)
        except TransientVenueError as exc:
            return rejected(order_hash, f"not accepted (rate limited): {exc.message}")
        except PermanentVenueError as exc:
            if exc.kind is RejectKind.TICK:
                self._catalog.invalidate(intent.asset)
            if exc.kind is RejectKind.UNFILLED:
                reason = await self._unfilled_reason(intent.asset, amounts, market)
                log.info(
                    "order_unfilled", intent_id=intent.intent_id, reason=reason, detail=exc.message
                )
                return ExecutionReport(
                    OrderStatus.CANCELED,
                    summarize((), False, reason),
                    order_hash=order_hash,
                    detail=exc.message,
                )
            log.warning("order_rejected", intent_id=intent.intent_id, detail=exc.message)
            return rejected(order_hash, exc.message)
        except AmbiguousSubmitError as exc:
            log.warning("order_submit_ambiguous", intent_id=intent.intent_id, detail=exc.message)
            report = await self._look_up(intent, order_hash, order_hash, amounts.maker, market)
            return report if report is not None else unknown(order_hash, exc.message)
        return await self._accepted(intent, order_hash, amounts, market, response, journal)

    async def _unfilled_reason(
        self, asset: str, amounts: OrderAmounts, market: MarketInfo
    ) -> Reason:
        """Why the venue killed a marketable order, in paper's words: the same walk of the
        book as paper (read again now) says EXEC_SLIPPAGE_LIMIT when liquidity exists but only
        beyond the bound, EXEC_NO_LIQUIDITY when there is not enough at any price."""
        try:
            book = await self._http.book(asset)
        except VenueError:
            return Reason.EXEC_NO_LIQUIDITY
        result = walk(
            book,
            amounts.side,
            limit=amounts.limit_price,
            notional=amounts.maker if amounts.side is Side.BUY else ZERO,
            shares=amounts.maker if amounts.side is Side.SELL else ZERO,
            fok=True,
            fees=market.fees,
        )
        if result.fills:  # it would fill now: the book moved after the venue matched nothing
            return Reason.EXEC_NO_LIQUIDITY
        return result.reason or Reason.EXEC_NO_LIQUIDITY

    async def _post_with_resends(self, signed: SignedOrder, policy: RetryPolicy) -> AcceptedOrder:
        """POST, and on a provable non-acceptance (429) the *same* signed order again."""
        async for attempt in retrying(policy, random_fn=self._random, sleep=self._sleep):
            with attempt:
                return await self._post(signed)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _post(self, signed: SignedOrder) -> AcceptedOrder:
        """One POST /order of the signed order; venue answers translated to our tree."""
        self.posts += 1
        try:
            outcome: OrderResponse | Exception = await asyncio.wait_for(
                self._client.post_order(signed), timeout=self._settings.order_timeout_s
            )
        except Exception as exc:  # translated below, once past the crash point
            outcome = exc
        # The POST has gone out (and may have been acted on); nothing of its answer, or of its
        # absence, has been looked at or recorded yet.
        crash_point("after_post_before_response")
        if isinstance(outcome, Exception):
            error = _post_error(outcome, self._settings.order_timeout_s)
            if error is outcome:
                raise outcome
            raise error from None
        if isinstance(outcome, AcceptedOrder):
            return outcome
        raise _translate(None, outcome.message, outcome.code, None)

    async def _accepted(
        self,
        intent: OrderIntent,
        order_hash: str,
        amounts: OrderAmounts,
        market: MarketInfo,
        response: AcceptedOrder,
        journal: SubmissionJournal,
    ) -> ExecutionReport:
        lookup_id = order_hash
        if response.order_id.lower() != order_hash.lower():
            # Our hash is the EIP-712 digest the venue itself computes; a different id means
            # one of the two changed its idea of an order's identity. The venue's id is the
            # one its look-ups and trades (`taker_order_id`) use, so it is journaled and used
            # for this order from now on (a restart too); our hash stays the ledger's key.
            self.alerts += 1
            log.error(
                "order_id_mismatch",
                intent_id=intent.intent_id,
                ours=order_hash,
                venue=response.order_id,
            )
            intent = journal.record_venue_order_id(intent, response.order_id)
            lookup_id = response.order_id
        if response.status != "matched":  # live / delayed: ask a few times
            report = await self._look_up(intent, order_hash, lookup_id, amounts.maker, market)
            if report is not None:
                return report
            return unknown(order_hash, f"accepted ({response.status}); not matched yet")
        # matched: wait (a bounded time) until the venue shows every fill of the order
        expected = frozenset(response.trade_ids)
        deadline = time.monotonic() + self._settings.fill_wait_s
        delay = 0.05
        report = None
        while True:
            try:
                found = await self._resolve_hash(
                    intent,
                    order_hash,
                    lookup_id,
                    amounts.maker,
                    market.fees,
                    allow_expire=False,
                    expected=expected,
                )
            except VenueError as exc:
                log.warning("fills_lookup_failed", intent_id=intent.intent_id, error=str(exc))
                found = None
            report = found or report
            if report is not None and report.final:
                return report
            if time.monotonic() >= deadline:
                break
            await self._sleep(delay)
            delay = min(delay * 2, 0.5)
        if report is not None:
            return report
        return unknown(order_hash, "accepted (matched); its fills are not visible yet")

    # --- resolution by look-up -------------------------------------------------------------
    async def _look_up(
        self,
        intent: OrderIntent,
        order_hash: str,
        lookup_id: str,
        maker: Decimal,
        market: MarketInfo,
    ) -> ExecutionReport | None:
        """Right after an ambiguous or unmatched answer: ask a few times. Returns a final
        report as soon as there is one, else the last open one; None if the venue knew
        nothing each time."""
        last: ExecutionReport | None = None
        for attempt in range(self._settings.unknown_lookup_attempts):
            try:
                report = await self._resolve_hash(
                    intent, order_hash, lookup_id, maker, market.fees, allow_expire=False
                )
            except VenueError as exc:
                log.warning("order_lookup_failed", intent_id=intent.intent_id, error=str(exc))
                report = None
            if report is not None and report.final:
                return report
            last = report or last
            if attempt + 1 < self._settings.unknown_lookup_attempts:
                await self._sleep(0.1 * (attempt + 1))
        return last

    async def resolve(self, intent: OrderIntent) -> ExecutionReport | None:
        if intent.order_hash is None or intent.signed_order is None:
            # NEW: committed, never signed, so never sent
            return rejected(None, "never sent (stopped before signing)", OrderStatus.ABANDONED)
        maker = _signed_amount(intent.signed_order, "makerAmount")
        fees = intent.fees if intent.fees is not None else await self._fees_now(intent)
        lookup_id = intent.venue_order_id or intent.order_hash
        return await self._resolve_hash(
            intent, intent.order_hash, lookup_id, maker, fees, allow_expire=True
        )

    async def _fees_now(self, intent: OrderIntent) -> FeeSchedule:
        """The market's fee schedule, for an intent signed before fees were journaled with it
        (after a restart the catalog is empty, so it is read, never assumed zero)."""
        try:
            market = await self._catalog.get(intent.asset, intent.condition_id)
        except VenueNotFound as exc:  # the market is gone: nothing to read the fees from
            log.warning("fees_unknown", intent_id=intent.intent_id, error=str(exc))
            return NO_FEES
        return market.fees

    async def _resolve_hash(
        self,
        intent: OrderIntent,
        order_hash: str,
        lookup_id: str,
        maker: Decimal,
        fees: FeeSchedule,
        *,
        allow_expire: bool,
        expected: frozenset[str] = frozenset(),
    ) -> ExecutionReport | None:
        """What the venue knows of one order (`lookup_id`; `order_hash` keys the ledger).

        An order is closed only on proof that every fill is known: the fills use up what it
        offered, or they include every trade its POST answer named (`expected`; a FAK/FOK
        trades only at placement), or they account for the venue's `size_matched`. Short of
        that it stays UNKNOWN with its reservation — never closed with fewer fills than the
        venue matched, never "no fill" from a truncated trade listing. Returns None when the
        venue knows nothing of the order; with `allow_expire`, an order never seen after the
        close window and `unknown_close_lookups` empty look-ups is EXPIRED (R4).
        """
        scan = await self._trades_for(intent, lookup_id, fees)
        fills = scan.fills
        if _complete_by(intent.side, maker, fills):
            return ExecutionReport(OrderStatus.FILLED, summarize(fills, True), fills, order_hash)
        if not scan.exhaustive:
            return self._fills_pending(
                intent,
                order_hash,
                f"trade look-up stopped at its bound of {scan.pages} pages; fills may be missing",
            )
        seen = {f.trade_id for f in fills}
        if expected and expected <= seen:
            return ExecutionReport(
                OrderStatus.CANCELED, summarize(fills, False), fills, order_hash, "order matched"
            )
        order = await self._get_order(lookup_id)
        if order is None:
            if fills:  # trades, but no order to read its matched size from (yet)
                return self._fills_pending(
                    intent, order_hash, "the venue shows trades of the order but not the order"
                )
            return self._never_seen(intent, order_hash, allow_expire)
        status = _order_status(order)
        matched = _matched_shares(order, intent.signed_order)
        visible = sum((f.shares for f in fills), ZERO)
        if matched - visible > MATCHED_TOLERANCE or (status == "matched" and not fills):
            return self._fills_pending(
                intent,
                order_hash,
                f"order {status}: the venue matched {matched} shares, its trades show {visible}",
            )
        if status in ("live", "delayed", "unmatched"):
            return unknown(order_hash, f"order {status}", OrderStatus.LIVE)
        if status == "invalid" and not fills:
            return rejected(order_hash, "the venue marked the order invalid")
        detail = f"order {status}"
        return ExecutionReport(
            OrderStatus.CANCELED, summarize(fills, False), fills, order_hash, detail
        )

    def _never_seen(
        self, intent: OrderIntent, order_hash: str, allow_expire: bool
    ) -> ExecutionReport | None:
        """The venue knows nothing of the order. It is closed without the venue's word only
        when both guards hold: the close window since signing has passed, and this is the
        `unknown_close_lookups`-th look-up in a row to find nothing (R4)."""
        age = self._clock() - (intent.signed_at_ms or 0) / 1000
        empty = intent.lookups + 1
        if (
            allow_expire
            and age >= self._settings.unknown_close_after_s
            and empty >= self._settings.unknown_close_lookups
        ):
            return rejected(
                order_hash,
                f"the venue never received it ({age:.0f}s, {empty} look-ups found nothing)",
                OrderStatus.EXPIRED,
            )
        return None

    def _fills_pending(self, intent: OrderIntent, order_hash: str, detail: str) -> ExecutionReport:
        """The order traded, but not all of its fills are known: it stays UNKNOWN (with its
        reservation). Past `fills_missing_alert_s` after signing, each such look-up alerts."""
        age = self._clock() - (intent.signed_at_ms or 0) / 1000
        if age >= self._settings.fills_missing_alert_s:
            self.alerts += 1
            log.error(
                "order_fills_missing",
                intent_id=intent.intent_id,
                order_hash=order_hash,
                age_s=round(age),
                detail=detail,
            )
        return unknown(order_hash, detail)

    async def _get_order(self, order_hash: str) -> OpenOrder | None:
        async def once() -> OpenOrder | None:
            try:
                return await self._sdk(self._client.get_order(order_id=order_hash))
            except VenueNotFound:
                return None

        async for attempt in retrying(self._settings.get_policy, sleep=self._sleep):
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _trades_for(
        self, intent: OrderIntent, lookup_id: str, fees: FeeSchedule
    ) -> TradeScan:
        """Our fills of the order `lookup_id` (trades where it was the taker, or a maker).

        The listing is bounded by construction: this account's trades of the order's token
        (a token belongs to one market), matched in a window around the signing time (a
        FAK/FOK trades only when it is received; /data/trades cannot filter by order).
        `trade_pages_max` pages at most; a listing that goes on is reported as not
        exhaustive, never as "no more fills"."""
        after = before = None
        if intent.signed_at_ms:
            signed_s = intent.signed_at_ms // 1000
            after = str(signed_s - TRADE_LOOKBACK_S)
            before = str(signed_s + int(self._settings.trade_window_s))
        pages_max = self._settings.trade_pages_max

        async def once() -> TradeScan:
            fills: list[VenueFill] = []
            pages = 0
            paginator = self._client.list_account_trades(
                asset_id=intent.asset, after=after, before=before
            )
            iterator = paginator.__aiter__()
            while True:
                try:
                    page = await self._sdk(iterator.__anext__())
                except StopAsyncIteration:
                    return TradeScan(tuple(fills), True, pages)
                pages += 1
                for trade in page.items:
                    fill = fill_from_trade(trade, lookup_id, fees)
                    if fill is not None:
                        fills.append(fill)
                if page.limit_reached or (page.has_more and pages >= pages_max):
                    log.warning(
                        "trade_lookup_incomplete",
                        intent_id=intent.intent_id,
                        pages=pages,
                        limit_reached=page.limit_reached,
                    )
                    return TradeScan(tuple(fills), False, pages)
                if not page.has_more:
                    return TradeScan(tuple(fills), True, pages)

        async for attempt in retrying(self._settings.get_policy, sleep=self._sleep):
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sdk(self, call: Awaitable[T]) -> T:
        """An SDK read with our timeout, its errors translated (transient ones retried)."""
        try:
            return await asyncio.wait_for(call, timeout=self._settings.http_timeout_s)
        except TimeoutError:
            raise TransientVenueError("no answer in time") from None
        except RateLimitError as exc:
            raise TransientVenueError(
                "rate limited", status=429, retry_after=exc.retry_after
            ) from None
        except RequestRejectedError as exc:
            message = scrub(str(exc))
            if exc.status == 404:
                raise VenueNotFound(message) from None
            if exc.status in (408, 425) or exc.status >= 500:
                raise TransientVenueError(
                    message, status=exc.status, retry_after=exc.retry_after
                ) from None
            raise PermanentVenueError(message, kind=RejectKind.OTHER, status=exc.status) from None
        except TransportError as exc:
            raise TransientVenueError(f"transport: {scrub(str(exc))}") from None
        except UnexpectedResponseError as exc:
            raise PermanentVenueError(
                f"unexpected answer: {scrub(str(exc))}", kind=RejectKind.OTHER
            ) from None


def _translate(
    status: int | None, message: str, code: str | None, retry_after: float | None
) -> VenueError:
    verdict = classify(status, message, code)
    if verdict.error_class is ErrorClass.TRANSIENT:
        return TransientVenueError(message, status=status, code=code, retry_after=retry_after)
    if verdict.error_class is ErrorClass.AMBIGUOUS:
        return AmbiguousSubmitError(message, status=status, code=code)
    kind = RejectKind.UNFILLED if verdict.error_class is ErrorClass.UNFILLED else verdict.kind
    return PermanentVenueError(message, kind=kind, status=status, code=code)


def _post_error(exc: Exception, timeout_s: float) -> Exception:
    """A failed POST /order in our tree (`exc` itself when it is not a venue answer)."""
    if isinstance(exc, TimeoutError):
        return AmbiguousSubmitError(f"no answer within {timeout_s}s")
    if isinstance(exc, RateLimitError):
        return TransientVenueError("rate limited", status=429, retry_after=exc.retry_after)
    if isinstance(exc, RequestRejectedError):
        return _translate(exc.status, scrub(str(exc)), exc.code, exc.retry_after)
    if isinstance(exc, TransportError | UnexpectedResponseError):
        return AmbiguousSubmitError(f"{type(exc).__name__}: {scrub(str(exc))}")
    if isinstance(exc, UserInputError):  # the SDK refused our own order: our bug
        return InvariantError(f"SDK refused the signed order: {exc}")
    return exc


def _order_status(order: OpenOrder) -> str:
    status = order.status.lower()
    return status.removeprefix("order_status_")


def _signed_amount(signed_order: str | None, key: str) -> Decimal:
    """An amount of the journaled signed order, in units (the wire has 10^-6 base units)."""
    if signed_order is None:
        return ZERO
    value = json.loads(signed_order).get(key)
    return Decimal(int(value)) / 10**6 if value is not None else ZERO


def _matched_shares(order: OpenOrder, signed_order: str | None) -> Decimal:
    """The order's `size_matched` in shares. The docs show 6-decimal fixed point, the venue
    and the SDK decimal shares (reference §4.9): `original_size` — about our order's share
    amount (BUY: the shares asked for at the bound, SELL: the shares offered) — tells which."""
    shares = _signed_amount(signed_order, "takerAmount" if order.side == "BUY" else "makerAmount")
    if shares > 0 and order.original_size > shares * 1000:
        return order.size_matched / 10**6
    return order.size_matched


def _complete(amounts: OrderAmounts, fills: tuple[VenueFill, ...]) -> bool:
    return _complete_by(amounts.side, amounts.maker, fills)


def _complete_by(side: Side, maker: Decimal, fills: tuple[VenueFill, ...]) -> bool:
    """Whether the fills used up what the order gave (BUY: its pUSD; SELL: its shares)."""
    if not fills:
        return False
    if side is Side.BUY:
        return maker - sum((f.notional for f in fills), ZERO) < BUY_COMPLETE_TOLERANCE
    return maker - sum((f.shares for f in fills), ZERO) < USDC_UNIT


def fill_from_trade(trade: ClobTrade, order_hash: str, fees: FeeSchedule) -> VenueFill | None:
    """Our part of one venue trade, or None when the trade is not ours (or failed)."""
    if trade.status not in SETTLING:
        return None
    ours = order_hash.lower()
    ts = trade.matched_at.timestamp()
    if trade.taker_order_id.lower() == ours:
        shares = trade.size
        price = trade.price
        matched = sum((m.matched_amount for m in trade.maker_orders), ZERO)
        if trade.maker_orders and matched == shares and shares > 0:
            price = sum((m.matched_amount * m.price for m in trade.maker_orders), ZERO) / shares
        fee = fees.fee(shares, price).quantize(USDC_UNIT, rounding=ROUND_CEILING)
        return VenueFill(trade.id, order_hash, price, shares, fee, ts)
    for maker in trade.maker_orders:
        if maker.order_id.lower() == ours:  # makers pay no fee
            return VenueFill(trade.id, order_hash, maker.price, maker.matched_amount, ZERO, ts)
    return None
