"""The KuCoin adapter's requests: the port's ``VenueClient`` over the signed, budgeted REST
(``KucoinRestTransport``), for the spot symbols the service follows.

Orders go to the HF API's synchronous endpoints, ``POST /api/v1/hf/orders/sync`` for one and
``/hf/orders/multi/sync`` for up to 5 of one symbol (the venue's batch holds limit orders of
one trading pair): they answer after matching, so a place says at once whether the order rests
(``Resting``), took liquidity (``Filled``, its average price read back from the order's
``dealFunds``; the limit price, a bound, when that read fails), or was canceled by the engine
on arrival (a post-only order that would have taken, an IOC that found nothing): ``Rejected``,
as the port's post-only contract wants. The asynchronous ``/hf/orders`` would answer only an
order id and leave all of that to the user stream. Batches of several symbols are sent
concurrently, one request per symbol and chunk, results in request order; a place that one
request carries is sent from the caller's task (no task spawned). Orders, cancels and alters go
on the transport's order lane (``rest``: kept-alive connections, the request written by hand).
``send_place`` is the one-order place in two halves (the port's optional ``SendsPlaceNow``):
written at once, without waiting and in no task's name, when a lane connection is free and the
budget needs no wait (``place_ready``), its result awaited later, in any task, by the same
rules as ``place``'s.

``modify`` is ``/hf/orders/alter``: the venue cancels the order and places a new one with the
new price and size, under a NEW order id and the same client id, so the answer is
``Resting(new id)`` (whether the new order filled at once the venue does not say: the user
stream reports it). ``cancel`` is one ``DELETE`` per order (by order id, or by client id).

What a lost answer means (the port's rules): a place or alter whose answer does not come
(``RequestTimeout``, ``KucoinUnavailable``) may have acted: ``OrderFateUnknown`` with
``lands_by_ms``, the time the request was signed plus ``landing_window_ms`` (one never written,
``KucoinNotSent``, did not: it is refused like a rate-limited one, below): the venue refuses
a request whose ``KC-API-TIMESTAMP`` is more than 5 s from its clock (``MAX_CLOCK_SKEW_MS``),
so it can arrive no later than 5 s of the venue's clock after it was signed, which is at most
another 5 s of ours (a clock further off has every request refused), plus an allowance from
the gateway to the matching engine. An answer that does not parse is ``OrderFateUnknown``
without a bound (it was answered). A request refused whole (``KucoinError``, ``RateLimited``)
raises when it carried every order of the call, else is each of its orders' ``Rejected``;
an order refused by the venue inside a batch, or one that cannot be put on the symbol's grid,
is ``Rejected``. A cancel whose answer is lost raises ``RequestTimeout``.

The order reads need the symbol: the client remembers the symbol of the orders it placed,
listed or read (``_symbols``, bounded) and otherwise asks each followed symbol in turn.
``fills_since`` reads ``/hf/fills`` for each followed symbol (the venue lists them newest first:
it pages back with ``lastId`` to the first fill at ``time_ms``) and answers the oldest
``fills_page``. ``account_state`` is stamped the millisecond before its read left (the answer
carries no time): every fill up to then is in it, and a fill of an order placed after its
answer is newer, even in the answer's own millisecond. Reads raise ``VenueError`` or
``MalformedAnswer``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, Final, TypeVar

import trio
from loguru import logger

from mm import clock, randomness
from mm.model import (
    AccountState,
    Balance,
    CancelOrder,
    CancelResult,
    Fill,
    Filled,
    Instrument,
    ModifyOrder,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    RateLimitState,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import (
    MalformedAnswer,
    OrderCapabilities,
    OrderFateUnknown,
    PendingPlace,
    RateLimited,
    RequestTimeout,
    UnknownInstrument,
    VenueError,
)
from mm.venues.kucoin import account, order_answers
from mm.venues.kucoin.answers import KucoinError
from mm.venues.kucoin.budget import ORDER_POOL
from mm.venues.kucoin.codec import CodecError, parse_level2_snapshot
from mm.venues.kucoin.deadman import KucoinDeadMansSwitch
from mm.venues.kucoin.ids import order_id, venue_oid
from mm.venues.kucoin.instruments import (
    FeeRates,
    SymbolSpec,
    fee_rate,
    parse_symbols,
    parse_trade_fees,
)
from mm.venues.kucoin.level2 import Snapshot
from mm.venues.kucoin.rest import KucoinNotSent, KucoinRestTransport, KucoinUnavailable
from mm.venues.kucoin.signing import MAX_CLOCK_SKEW_MS
from mm.venues.kucoin.ws_protocol import Bullet, parse_bullet

__all__ = ["CAPABILITIES", "FILLS_PAGE", "MAX_BATCH", "KucoinClient"]

_T = TypeVar("_T")

MAX_BATCH: Final = 5  # /hf/orders/multi: at most 5 orders, of one symbol
FILLS_PAGE: Final = 100  # /hf/fills: at most 100 a request
MAX_FEE_SYMBOLS: Final = 10  # /trade-fees: at most 10 symbols a request
MAX_FILL_PAGES: Final = 100  # /hf/fills pages read back for one symbol (10,000 fills)
NOT_FOUND: Final = "400100"  # the order reads' "order not exist."
REMEMBERED: Final = 10_000  # order and client ids whose symbol is kept
CLIENT_ID_PREFIX: Final = "mm-"
_OWN_ID: Final = re.compile(r"mm-[0-9a-f]{32}")
ENGINE_ALLOWANCE_MS: Final = 1_000
EARLIEST_START_MS: Final = 1_000_000_000_000  # /hf/fills' startAt must be above it (the spec)

CAPABILITIES = OrderCapabilities(
    modify=True,  # /hf/orders/alter: cancel-replace, a new order id
    max_batch=MAX_BATCH,
    post_only=True,
    ioc=True,
    market_by_quote=True,  # a market order sized by funds (``market_by_funds``)
    test_orders=True,  # /hf/orders/test
)

_LOST: Final = (RequestTimeout, KucoinUnavailable)
PLACE: Final = "/api/v1/hf/orders/sync"  # one order, answered when the engine has matched it


class KucoinClient:
    """The port's ``VenueClient`` for KuCoin spot (see the module)."""

    fills_page: Final = FILLS_PAGE

    def __init__(
        self,
        rest: KucoinRestTransport,
        symbols: Sequence[str],
        *,
        value_currency: str = "USDT",
        now_ms: Callable[[], int] = clock.wall_ms,
        engine_allowance_ms: int = ENGINE_ALLOWANCE_MS,
        fee_rates: bool = True,
    ) -> None:
        """``fee_rates`` False: ``instruments`` reads the public listing only, no fee rate (a
        signed read), so ``fee`` knows none: ``mm check``'s probe, whose venue_reachable asks
        whether the venue answers and lists the symbols, and leaves the key to venue_access."""
        if not symbols:
            raise ValueError("a KuCoin client follows at least one symbol")
        self.rest = rest
        self.symbols = tuple(symbols)
        self.value_currency = value_currency
        self.now_ms = now_ms
        self.landing_window_ms = 2 * MAX_CLOCK_SKEW_MS + engine_allowance_ms
        self.fee_rates = fee_rates
        self._specs: dict[str, SymbolSpec] = {}
        self._fees: dict[str, FeeRates] = {}
        self._symbols: OrderedDict[str, str] = OrderedDict()  # oid or cloid -> symbol
        self._switch = KucoinDeadMansSwitch(rest, now_ms)

    # --- the port's order side -------------------------------------------------------------

    @property
    def capabilities(self) -> OrderCapabilities:
        return CAPABILITIES

    @property
    def dead_mans_switch(self) -> KucoinDeadMansSwitch:
        return self._switch

    def new_client_id(self) -> str:
        """``mm-`` and 32 hex digits: 35 characters of the venue's alphabet (at most 40), 128
        random bits (``mm.randomness``: 0.3 us, as ``os.urandom`` was; ``uuid.uuid4().hex`` took
        2 to 9 us a leg)."""
        return CLIENT_ID_PREFIX + randomness.hex_id(128)

    def is_own_client_id(self, client_id: str | None) -> bool:
        return client_id is not None and _OWN_ID.fullmatch(client_id) is not None

    # --- reference data ----------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        """Every symbol the venue lists, and the account's fee rates of the followed ones (none
        without ``fee_rates``)."""
        specs = await self._read(parse_symbols, "GET", "/api/v2/symbols", signed=False)
        listed = {spec.instrument.symbol: spec for spec in specs}
        fees: dict[str, FeeRates] = {}
        followed = [symbol for symbol in self.symbols if symbol in listed and self.fee_rates]
        for start in range(0, len(followed), MAX_FEE_SYMBOLS):
            chunk = ",".join(followed[start : start + MAX_FEE_SYMBOLS])
            fees |= await self._read(
                parse_trade_fees, "GET", "/api/v1/trade-fees", query={"symbols": chunk}
            )
        self._specs, self._fees = listed, fees
        return [spec.instrument for spec in specs]

    def instrument(self, symbol: str) -> Instrument:
        return self.spec(symbol).instrument

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's rules as last read (``UnknownInstrument`` when not listed, or not read)."""
        found = self._specs.get(symbol)
        if found is None:
            raise UnknownInstrument(f"{symbol} is not listed (symbols read: {bool(self._specs)})")
        return found

    def fee(self, symbol: str, *, taker: bool) -> tuple[float, str]:
        """The rate a fill of the followed ``symbol`` pays (the account's rate times the
        symbol's coefficient), and the currency it is paid in."""
        spec = self.spec(symbol)
        rates = self._fees.get(symbol)
        if rates is None:
            raise UnknownInstrument(f"no fee rates read for {symbol} (not followed?)")
        return fee_rate(spec, rates, taker=taker), spec.fee_currency

    def taker_fee(self, symbol: str) -> Decimal:
        """The taker rate of the followed ``symbol`` as a fraction of its quote (the port's
        ``SpotTerms``): ``UnknownInstrument`` when its fee is paid in another currency."""
        spec = self.spec(symbol)
        rates = self._fees.get(symbol)
        if rates is None:
            raise UnknownInstrument(f"no fee rates read for {symbol} (not followed?)")
        quote = spec.instrument.quote
        if spec.fee_currency != quote:
            raise UnknownInstrument(
                f"{symbol} pays its fee in {spec.fee_currency}, not its quote {quote}"
            )
        return rates.taker * spec.taker_coefficient

    def funds_increment(self, symbol: str) -> Decimal:
        """``quoteIncrement``: a market buy's funds are a whole number of it."""
        return self.spec(symbol).quote_increment

    # --- account reads -----------------------------------------------------------------------

    async def balances(self) -> tuple[Balance, ...]:
        """The trade (spot) account's balances, one per currency."""
        return await self._read(
            account.parse_balances, "GET", "/api/v1/accounts", query={"type": "trade"}
        )

    async def account_state(self) -> AccountState:
        """The balances as of the last millisecond before the read left. The venue's answer
        carries no time; it holds every fill made before it was asked for, and none of an
        order placed after it came, though such a fill may share the answer's millisecond
        (always, on a virtual clock): stamped with the answer's time, it read as part of the
        balances, and the positions kept from fills dropped it. A fill made while the read
        was on its way is now taken as newer, whether the read held it or not (after the
        startup's cancel-all, no order of the service's can fill then)."""
        asked_ms = self.now_ms()
        balances = await self.balances()
        return account.account_state(balances, self.value_currency, asked_ms - 1)

    async def fills_since(self, time_ms: int) -> list[Fill]:
        pages = await _read_all(self.symbols, partial(self._symbol_fills, time_ms=time_ms))
        fills = sorted((fill for page in pages for fill in page), key=lambda f: (f.time_ms, f.tid))
        return fills[: self.fills_page]

    async def recent_fills(self, symbol: str) -> list[Fill]:
        """The symbol's latest fills (one page, newest first)."""
        query = {"symbol": symbol, "limit": str(FILLS_PAGE)}
        page = await self._read(account.parse_fills, "GET", "/api/v1/hf/fills", query=query)
        return list(page.fills)

    async def _symbol_fills(self, symbol: str, time_ms: int) -> list[Fill]:
        """Every fill of ``symbol`` from ``time_ms`` on, paging back from the newest (a time
        before the venue's earliest ``startAt`` is asked without one: from the newest back)."""
        query = {"symbol": symbol, "limit": str(FILLS_PAGE)}
        if time_ms > EARLIEST_START_MS:
            query["startAt"] = str(time_ms)
        fills: list[Fill] = []
        for _ in range(MAX_FILL_PAGES):
            page = await self._read(account.parse_fills, "GET", "/api/v1/hf/fills", query=query)
            fills.extend(fill for fill in page.fills if fill.time_ms >= time_ms)
            for fill in page.fills:
                self._remember(venue_oid(fill.oid), symbol)
            if len(page.fills) < FILLS_PAGE or page.last_id is None:
                return fills
            query = query | {"lastId": str(page.last_id)}
        raise VenueError(
            f"{symbol}: more than {MAX_FILL_PAGES * FILLS_PAGE} fills since {time_ms}: "
            "ask from a later time"
        )

    async def rate_limit(self) -> RateLimitState:
        """The Spot pool as the venue's latest answer left it (KuCoin reports its budget on
        every answer's headers, so nothing is asked); no traded volume (the venue reports
        none, and gates nothing on it)."""
        pool = self.rest.budget.pool(ORDER_POOL)
        now = trio.current_time()
        left = (
            pool.quota if pool.resets_at is not None and now >= pool.resets_at else pool.remaining
        )
        return RateLimitState(
            cum_volume=0.0, requests_used=max(0, pool.quota - left), requests_cap=pool.quota
        )

    # --- order reads -------------------------------------------------------------------------

    async def open_orders(self) -> list[OpenOrder]:
        """The account's open orders on the followed symbols (others are not mm's)."""

        async def read(symbol: str) -> list[OpenOrder]:
            reads = await self._read(
                order_answers.parse_orders,
                "GET",
                "/api/v1/hf/orders/active",
                query={"symbol": symbol},
            )
            for read in reads:
                self._remember_order(read.open_order.oid, read.open_order.cloid, symbol)
            return [read.open_order for read in reads]

        found = await _read_all(self.symbols, read)
        return [order for orders in found for order in orders]

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        if oid is not None and cloid is None:
            key, path = venue_oid(oid), f"/api/v1/hf/orders/{venue_oid(oid)}"
        elif cloid is not None and oid is None:
            key, path = cloid, f"/api/v1/hf/orders/client-order/{cloid}"
        else:
            raise ValueError("order_status needs exactly one of oid and cloid")
        known = self._symbols.get(key)
        candidates = [known] if known is not None else list(self.symbols)
        for symbol in candidates:
            read = await self._order_read(path, symbol)
            if read is not None:
                return read.report
        return None

    async def _order_read(self, path: str, symbol: str) -> order_answers.OrderRead | None:
        try:
            read = await self._read(
                order_answers.parse_order, "GET", path, query={"symbol": symbol}
            )
        except KucoinError as error:
            if error.code == NOT_FOUND:
                return None
            raise
        self._remember_order(read.report.oid, read.report.cloid, symbol)
        return read

    # --- placing -----------------------------------------------------------------------------

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        if len(orders) == 1:
            return [await self._place_one(orders[0])]
        results: list[PlaceResult | None] = [None] * len(orders)
        bodies: dict[int, dict[str, Any]] = {}
        for index, order in enumerate(orders):
            spec = self.spec(order.coin)
            if order.reduce_only:
                results[index] = Rejected("KuCoin spot has no reduce-only orders")
                continue
            try:
                bodies[index] = order_answers.order_body(order, spec)
            except ValueError as error:
                results[index] = Rejected(str(error))
        chunks: list[list[int]] = []
        for symbol in dict.fromkeys(order.coin for order in orders):
            indexes = [i for i in bodies if orders[i].coin == symbol]
            chunks += [indexes[i : i + MAX_BATCH] for i in range(0, len(indexes), MAX_BATCH)]
        refused: list[tuple[list[int], VenueError]] = []
        unknown: list[OrderFateUnknown] = []

        async def send(indexes: list[int]) -> None:
            cloids = [orders[i].cloid for i in indexes]
            sent_ms = self.now_ms()
            try:
                if len(indexes) == 1:
                    data = await self.rest.request(
                        "POST", "/api/v1/hf/orders/sync", body=bodies[indexes[0]]
                    )
                    answers = [order_answers.parse_sync(data)]
                else:
                    body = {"orderList": [bodies[i] for i in indexes]}
                    data = await self.rest.request(
                        "POST", "/api/v1/hf/orders/multi/sync", body=body
                    )
                    answers = order_answers.parse_multi_sync(data, len(indexes))
            except KucoinNotSent as error:  # never written: nothing of it reached the venue
                refused.append((indexes, error))
                return
            except _LOST as error:
                unknown.append(
                    OrderFateUnknown(
                        cloids, str(error), lands_by_ms=sent_ms + self.landing_window_ms
                    )
                )
                return
            except (MalformedAnswer, CodecError) as error:
                unknown.append(OrderFateUnknown(cloids, f"unreadable answer: {error}"))
                return
            except KucoinError as error:  # the venue refused these orders (balance, grid...)
                for index in indexes:
                    results[index] = Rejected(str(error))
                return
            except VenueError as error:  # refused whole (the rate limit): nothing of it acted
                refused.append((indexes, error))
                return
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = await self._placed(orders[index], answer)

        if len(chunks) == 1:
            await send(chunks[0])  # one request carries them all: no task to spawn
        elif chunks:
            async with trio.open_nursery() as nursery:
                for chunk in chunks:
                    nursery.start_soon(send, chunk)
        if refused and len(chunks) == 1 and len(bodies) == len(orders) and not unknown:
            raise refused[0][1]
        for indexes, failure in refused:
            for index in indexes:
                results[index] = Rejected(str(failure))
        if unknown:
            known = {orders[i].cloid: r for i, r in enumerate(results) if r is not None}
            raise _combined(unknown, known)
        return [result for result in results if result is not None]

    async def _place_one(self, order: PlaceOrder) -> PlaceResult:
        """``place`` of one order, by the same rules, in fewer steps (the legs' case)."""
        body = self._one_body(order)
        if not isinstance(body, dict):
            return body
        sent_ms = self.now_ms()
        request = partial(self.rest.request, "POST", PLACE, body=body)
        return await self._answered_one(order, sent_ms, request)

    def place_ready(self) -> bool:
        """Whether ``send_place`` can write an order now: an order-lane connection idle, and
        the order pool's budget needs no wait."""
        return self.rest.ready_now("POST", PLACE)

    def send_place(self, order: PlaceOrder) -> PlaceResult | PendingPlace | None:
        """``place`` of one order written at once on the order lane (``rest.send_now``), in
        no task's name: the result at once when it is refused before the venue, else the
        ``PendingPlace`` whose ``result`` awaits the answer (in any task; as ``place``
        answers); None, with nothing sent, when the request cannot go without waiting.
        Raises ``KucoinNotSent`` (a ``VenueError``: refused whole) when its socket refused
        the write."""
        body = self._one_body(order)
        if not isinstance(body, dict):
            return body
        sent_ms = self.now_ms()
        call = self.rest.send_now("POST", PLACE, body)
        if call is None:
            return None
        return _Pending(partial(self._answered_one, order, sent_ms, call.answer))

    def _one_body(self, order: PlaceOrder) -> dict[str, Any] | Rejected:
        """The request body of one order, or why it is refused before the venue (an unknown
        symbol raises ``UnknownInstrument``, as ``place`` does)."""
        spec = self.spec(order.coin)
        if order.reduce_only:
            return Rejected("KuCoin spot has no reduce-only orders")
        try:
            return order_answers.order_body(order, spec)
        except ValueError as error:
            return Rejected(str(error))

    async def _answered_one(
        self, order: PlaceOrder, sent_ms: int, request: Callable[[], Awaitable[Any]]
    ) -> PlaceResult:
        """One order's result from its request's ``data`` (``sent_ms``: when it was sent)."""
        try:
            data = await request()
            answer = order_answers.parse_sync(data)
        except KucoinNotSent:
            raise  # refused whole: never sent
        except _LOST as error:
            raise _combined(
                [
                    OrderFateUnknown(
                        [order.cloid], str(error), lands_by_ms=sent_ms + self.landing_window_ms
                    )
                ],
                {},
            ) from error
        except (MalformedAnswer, CodecError) as error:
            unreadable = OrderFateUnknown([order.cloid], f"unreadable answer: {error}")
            raise _combined([unreadable], {}) from error
        except KucoinError as error:  # the venue refused it (balance, grid...)
            return Rejected(str(error))
        return await self._placed(order, answer)

    async def market_by_funds(
        self, symbol: str, side: Side, funds: float, cloid: str
    ) -> PlaceResult:
        """A market order sized in the quote currency (``funds``): what it filled, or why
        not (the same rules as ``place``)."""
        body = order_answers.market_funds_body(symbol, side, funds, cloid, self.spec(symbol))
        sent_ms = self.now_ms()
        try:
            data = await self.rest.request("POST", "/api/v1/hf/orders/sync", body=body)
            answer = order_answers.parse_sync(data)
        except KucoinNotSent:
            raise  # refused whole: never sent
        except _LOST as error:
            raise OrderFateUnknown(
                [cloid], str(error), lands_by_ms=sent_ms + self.landing_window_ms
            ) from error
        except (MalformedAnswer, CodecError) as error:
            raise OrderFateUnknown([cloid], f"unreadable answer: {error}") from error
        order = PlaceOrder(symbol, side, 0.0, 0.0, Tif.IOC, cloid)
        return await self._placed(order, answer, float(body["funds"]))

    async def test_order(self, order: PlaceOrder) -> Rejected | None:
        """Whether the venue would take ``order`` (``/hf/orders/test``: validated, never
        placed): None, or why not."""
        try:
            body = order_answers.order_body(order, self.spec(order.coin))
        except ValueError as error:
            return Rejected(str(error))
        try:
            await self.rest.request("POST", "/api/v1/hf/orders/test", body=body)
        except KucoinError as error:
            return Rejected(str(error))
        return None

    async def _placed(
        self, order: PlaceOrder, answer: order_answers.SyncAnswer, funds: float | None = None
    ) -> PlaceResult:
        """The port's result of an answered order (``funds``: a market order's, by funds)."""
        if answer.refused is not None:
            return Rejected(answer.refused)
        assert answer.oid is not None
        oid = order_id(answer.oid)
        self._remember_order(oid, order.cloid, order.coin)
        if answer.status == "open":
            return Resting(oid, order.cloid)
        if answer.deal_size <= 0:
            why = "post-only order would have taken" if order.tif is Tif.ALO else "no fill"
            return Rejected(f"canceled by the venue on arrival: {why}")
        # A bound of the average, for when it cannot be read: the limit price, or what the
        # funds would buy at most.
        bound = order.px if funds is None else funds / answer.deal_size
        average = await self._average(order, answer, bound)
        return Filled(oid, order.cloid, answer.deal_size, average)

    async def _average(
        self, order: PlaceOrder, answer: order_answers.SyncAnswer, bound: float
    ) -> float:
        """The average price of a filled order, from its ``dealFunds``; ``bound`` when that
        read fails, or would wait for the rate budget (after a 429 it is empty until its
        reset, seconds away: the order's answer, a leg's, is never held for it)."""
        assert answer.oid is not None
        path = f"/api/v1/hf/orders/{answer.oid}"
        if self.rest.would_wait("GET", path):
            logger.debug("{}: the fill's average price unread (the budget says wait)", order.cloid)
            return bound
        try:
            read = await self._order_read(path, order.coin)
        except (VenueError, MalformedAnswer) as error:
            logger.warning("{}: the fill's average price unread ({})", order.cloid, error)
            read = None
        if read is None or read.average_px is None:
            return bound
        return read.average_px

    # --- cancel and modify ---------------------------------------------------------------

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        outcomes = await _each(cancels, self._cancel_one)
        lost = [o for o in outcomes if isinstance(o, _LOST)]
        if lost:
            raise RequestTimeout(f"{len(lost)} of {len(cancels)} cancel(s) unanswered: {lost[0]}")
        if outcomes and all(isinstance(o, RateLimited) for o in outcomes):
            assert isinstance(outcomes[0], RateLimited)
            raise outcomes[0]
        results: list[CancelResult] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                results.append(Rejected(str(outcome)))
            else:
                results.append(outcome)
        return results

    async def _cancel_one(self, cancel: CancelOrder) -> CancelResult:
        if cancel.oid is not None:
            path = f"/api/v1/hf/orders/{venue_oid(cancel.oid)}"
        else:
            path = f"/api/v1/hf/orders/client-order/{cancel.cloid}"
        try:
            await self.rest.request("DELETE", path, query={"symbol": cancel.coin})
        except KucoinError as error:
            return Rejected(str(error))
        except MalformedAnswer as error:
            raise RequestTimeout(f"cancel answered unreadably: {error}") from error
        return None

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        sent_ms = self.now_ms()
        outcomes = await _each(modifies, self._alter)
        cloids = [modify.order.cloid for modify in modifies]
        results: dict[str, PlaceResult] = {}
        lost: list[str] = []
        unreadable: list[str] = []
        refused: list[VenueError] = []
        for cloid, outcome in zip(cloids, outcomes, strict=True):
            if isinstance(outcome, _LOST) and not isinstance(outcome, KucoinNotSent):
                lost.append(cloid)
            elif isinstance(outcome, MalformedAnswer | CodecError):
                unreadable.append(cloid)
            elif isinstance(outcome, VenueError):
                refused.append(outcome)
                results[cloid] = Rejected(str(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results[cloid] = outcome
        if lost or unreadable:
            lands_by = sent_ms + self.landing_window_ms if lost else None
            raise OrderFateUnknown(
                lost + unreadable, "modify answer lost or unreadable", results, lands_by_ms=lands_by
            )
        if len(modifies) == 1 and refused and not isinstance(refused[0], KucoinError):
            raise refused[0]  # the whole request refused (the rate limit)
        return [results[cloid] for cloid in cloids]

    async def _alter(self, modify: ModifyOrder) -> PlaceResult:
        order = modify.order
        spec = self.spec(order.coin)
        try:
            body = order_answers.order_body(order, spec)
        except ValueError as error:
            return Rejected(str(error))
        alter: dict[str, Any] = {
            "symbol": order.coin,
            "newPrice": body["price"],
            "newSize": body["size"],
        }
        if modify.oid is not None:
            alter["orderId"] = venue_oid(modify.oid)
        else:
            alter["clientOid"] = order.cloid
        data = await self.rest.request("POST", "/api/v1/hf/orders/alter", body=alter)
        answer = order_answers.parse_alter(data)
        oid = order_id(answer.new_oid)
        self._remember_order(oid, order.cloid, order.coin)
        return Resting(oid, order.cloid)

    # --- the streams' REST ----------------------------------------------------------------

    async def level2_snapshot(self, symbol: str) -> Snapshot:
        """The symbol's full book and its sequence (signed, as the venue wants it)."""
        return await self._read(
            lambda data: parse_level2_snapshot(data, symbol),
            "GET",
            "/api/v3/market/orderbook/level2",
            query={"symbol": symbol},
        )

    async def bullet(self, private: bool) -> Bullet:
        """A WebSocket connect token: the account's (signed), or a public one."""
        path = "/api/v1/bullet-private" if private else "/api/v1/bullet-public"
        return await self._read(parse_bullet, "POST", path, signed=private)

    # --- plumbing -----------------------------------------------------------------------------

    async def _read(
        self,
        parse: Callable[[Any], _T],
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        signed: bool = True,
    ) -> _T:
        data = await self.rest.request(method, path, query=query, signed=signed)
        try:
            return parse(data)
        except CodecError as error:
            raise MalformedAnswer(f"{method} {path}: {error}") from error

    def _remember(self, key: str, symbol: str) -> None:
        self._symbols[key] = symbol
        self._symbols.move_to_end(key)
        while len(self._symbols) > REMEMBERED:
            self._symbols.popitem(last=False)

    def _remember_order(self, oid: OrderId, cloid: str | None, symbol: str) -> None:
        self._remember(venue_oid(oid), symbol)
        if cloid is not None:
            self._remember(cloid, symbol)


_I = TypeVar("_I")


async def _each(items: Sequence[_I], send: Callable[[_I], Awaitable[_T]]) -> list[_T | Exception]:
    """``send`` each item concurrently: its answer, or the ``VenueError`` (or unreadable
    answer) it raised, in the items' order."""
    outcomes: list[_T | Exception | None] = [None] * len(items)

    async def one(index: int, item: _I) -> None:
        try:
            outcomes[index] = await send(item)
        except (VenueError, MalformedAnswer, CodecError) as error:
            outcomes[index] = error

    async with trio.open_nursery() as nursery:
        for index, item in enumerate(items):
            nursery.start_soon(one, index, item)
    return outcomes  # type: ignore[return-value]  # every slot was set


async def _read_all(items: Sequence[_I], read: Callable[[_I], Awaitable[_T]]) -> list[_T]:
    """``read`` each item concurrently: the answers in the items' order, or the first error
    one raised, as itself (a read of several requests fails as a read of one does: the
    port's ``VenueError`` or ``MalformedAnswer``, never a group of them)."""
    outcomes = await _each(items, read)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes  # type: ignore[return-value]  # (none is an exception)


def _combined(unknown: list[OrderFateUnknown], known: dict[str, PlaceResult]) -> OrderFateUnknown:
    cloids = [cloid for failure in unknown for cloid in failure.cloids]
    bounds = [f.lands_by_ms for f in unknown if f.lands_by_ms is not None]
    return OrderFateUnknown(
        cloids,
        "; ".join(failure.cause for failure in unknown),
        known,
        lands_by_ms=max(bounds, default=None),
    )


class _Pending:
    """A place ``send_place`` wrote: ``result`` awaits its answer (see ``send_place``)."""

    __slots__ = ("_result",)

    def __init__(self, result: Callable[[], Awaitable[PlaceResult]]) -> None:
        self._result = result

    async def result(self) -> PlaceResult:
        return await self._result()
