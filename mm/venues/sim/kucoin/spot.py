"""The simulator's KuCoin spot matching: orders of every kind against price-time books, on the
spot ledger, with the order-change events the venue pushes. Pure and synchronous.

Orders (KuCoin's docs, "Add Order" of the HF spot API):

* **limit** with a ``price`` and ``size`` on the symbol's increments (``priceIncrement``,
  ``baseIncrement``), the size at least ``baseMinSize`` and the notional at least
  ``minFunds``; ``timeInForce`` ``GTC`` (rests), ``IOC`` (the rest cancelled), ``FOK`` (all of it
  at once, or nothing and cancelled); ``postOnly`` (an order that would take is cancelled, never
  traded);
* **market** buying by ``funds`` (on ``quoteIncrement``, at least ``quoteMinSize``: it takes
  whole lots while the funds, fees included, pay for them; what is left is freed, the "dust
  cancel"), buying by ``size`` (on all the quote it could freeze, the rest freed after), or
  selling by ``size``; a market order never rests, and ends ``filled`` when it took all it
  asked for, else ``canceled``.

A refusal is the venue's code and message, nothing held or changed: ``400100`` for parameters
(``Order size increment invalid.``, ``Price increment invalid.``, a size below the minimum...),
``200004`` (``Balance insufficient!``) when the ledger cannot freeze what the order needs.

Every step is an ``OrderChange`` for ``/spotMarket/tradeOrdersV2``: ``received``, then for a
taker its ``match``es (each also a ``match`` of the maker hit, ``liquidity`` maker), then
``open`` (rests), ``filled`` or ``canceled``. Fees: the taker rate on what an order takes, the
maker rate on what it makes, charged in the quote currency by the ledger.

A ``clientOid`` is unique among the account's active orders: another order with one an active
order of the account already has is refused ``400100`` "clientOid duplicated" (KuCoin's docs ask
clients not to reuse one and document no code for it; this is the face's choice). A done
order's ``clientOid`` may be used again.

Requests beyond placing and cancelling one order: ``cancel_all`` (the account's orders, of some
symbols or all), ``alter`` (KuCoin's "Modify Order": the order cancelled and a new one placed on
the same symbol, side and time in force, at the new price and for the new size less what the old
one filled; when that is nothing the old order is only cancelled).

Fills: every trade is a ``Fill`` for each of its two orders' accounts (the account's trade
history, ``/api/v1/hf/fills``), numbered in the order they happened; each account's latest
``FILLS_KEPT`` are kept, the oldest forgotten first.

Self-trade: a taker that meets its own resting order cancels that resting order (as the
Hyperliquid face's book does) and goes on; the venue's ``stp`` options are not offered.

Fails: ``KeyError`` naming an unknown symbol (the caller answers 400100 for it first).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from decimal import ROUND_FLOOR, Decimal

import attrs

from mm.venues.sim.book import Order, OrderBook
from mm.venues.sim.kucoin.ledger import SpotLedger

__all__ = [
    "DONE_KEPT",
    "FILLS_KEPT",
    "Altered",
    "Fill",
    "OrderChange",
    "Placed",
    "Refusal",
    "SpotExchange",
    "SpotOrder",
    "SpotOrderRequest",
    "SpotSymbol",
]

TIMES_IN_FORCE = ("GTC", "IOC", "FOK")
DONE_KEPT = 10_000  # each account's done orders kept for queries, its oldest forgotten first
FILLS_KEPT = 10_000  # each account's latest fills kept for its trade history


@attrs.frozen
class SpotSymbol:
    """A symbol's grid and minimums, as ``/api/v2/symbols`` lists them."""

    name: str
    base: str
    quote: str
    price_increment: Decimal
    base_increment: Decimal
    quote_increment: Decimal
    base_min_size: Decimal
    quote_min_size: Decimal
    min_funds: Decimal

    def ticks(self, price: Decimal) -> int | None:
        return _units(price, self.price_increment)

    def lots(self, size: Decimal) -> int | None:
        return _units(size, self.base_increment)

    def price(self, ticks: int) -> Decimal:
        return ticks * self.price_increment

    def size(self, lots: int) -> Decimal:
        return lots * self.base_increment


def _units(value: Decimal, increment: Decimal) -> int | None:
    units = value / increment
    return int(units) if units == units.to_integral_value() else None


@attrs.frozen
class SpotOrderRequest:
    """What an order request asks (its fields as the venue takes them, numbers as text)."""

    symbol: str
    side: str  # "buy" | "sell"
    type: str = "limit"  # "limit" | "market"
    price: str | None = None
    size: str | None = None
    funds: str | None = None
    time_in_force: str = "GTC"
    post_only: bool = False
    client_oid: str | None = None


@attrs.frozen
class Refusal:
    code: str
    msg: str


@attrs.frozen
class OrderChange:
    """One step of an order's life, for its owner's ``tradeOrdersV2`` channel."""

    user: str
    oid: str
    client_oid: str | None
    symbol: str
    side: str
    order_type: str
    type: str  # received | open | match | filled | canceled
    price: Decimal | None  # None: a market order
    origin_size: Decimal | None  # None: a market buy by funds
    origin_funds: Decimal | None
    filled_size: Decimal
    remain_size: Decimal
    ts_ns: int
    match_price: Decimal | None = None
    match_size: Decimal | None = None
    trade_id: str | None = None
    liquidity: str | None = None
    fee: Decimal | None = None


@attrs.frozen
class Placed:
    """An order the venue took: its id and the changes it made (its own and its makers')."""

    oid: str
    changes: tuple[OrderChange, ...]


@attrs.frozen
class Altered:
    """A modified order: the old one's cancel, and the new order (None: the new size was no
    more than the old order had filled, so only the cancel; or the new order was refused, the
    refusal in ``refusal``)."""

    cancelled: tuple[OrderChange, ...]
    placed: Placed | None
    refusal: Refusal | None = None


@attrs.frozen
class Fill:
    """One side of a trade, for its account's trade history (``/api/v1/hf/fills``)."""

    id: int  # fills are numbered across the venue in the order they happen (paging goes by it)
    trade_id: int
    user: str
    oid: str
    counter_oid: str
    symbol: str
    side: str
    order_type: str
    liquidity: str  # taker | maker
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_rate: Decimal
    fee_currency: str
    ts_ns: int

    @property
    def funds(self) -> Decimal:
        return self.price * self.size


@attrs.define
class SpotOrder:
    """An order the exchange took: what it asked, and what it has done so far."""

    user: str
    oid: str
    number: int  # the book's integer id
    request: SpotOrderRequest
    symbol: SpotSymbol
    price: Decimal | None
    size: Decimal | None  # None: a market buy by funds
    funds: Decimal | None
    created_ns: int
    filled: Decimal = Decimal(0)  # base traded
    deal_funds: Decimal = Decimal(0)  # quote traded (the notional, fees apart)
    fee: Decimal = Decimal(0)
    updated_ns: int = 0
    end: str | None = None  # "filled" or "canceled" once done; None while active
    in_book: bool = False
    done_number: int = 0  # once done: the order it became done in (done orders page by it)


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return Decimal(-1)  # (refused below as an invalid number)
    return value if value.is_finite() else Decimal(-1)


class SpotExchange:
    """Every symbol's book, the orders living in them, and the ledger they hold on."""

    def __init__(
        self,
        symbols: Iterable[SpotSymbol],
        ledger: SpotLedger,
        fee_rates: Callable[[str, str], tuple[Decimal, Decimal]],
        *,
        first_number: int = 1,
    ) -> None:
        """``fee_rates(user, symbol)``: the account's (maker, taker) rates for the symbol.
        ``first_number``: the first order, trade and fill number it gives (an embedded
        simulator's ids must not repeat a previous run's, which the service's journal
        remembers: a fill of a repeated trade id is dropped as seen)."""
        self.symbols = {symbol.name: symbol for symbol in symbols}
        self.books = {name: OrderBook() for name in self.symbols}
        self.ledger = ledger
        self._fee_rates = fee_rates
        self._numbers = itertools.count(first_number)
        self._trades = itertools.count(first_number)
        self.live: dict[str, SpotOrder] = {}  # active orders by order id
        self.orders: dict[str, SpotOrder] = {}  # every order kept, active or done, by id
        # Each account's done orders, oldest first: kept per account, so that the liquidity
        # provider's churn (a re-quote every step) never pushes a trader's orders out.
        self._done: dict[str, deque[str]] = {}
        self._done_numbers = itertools.count(1)
        self._by_number: dict[int, SpotOrder] = {}
        self._client_oids: dict[tuple[str, str], str] = {}  # (user, clientOid) -> active order
        self._fill_numbers = itertools.count(first_number)
        self.fills: dict[str, deque[Fill]] = {}  # each account's latest fills, oldest first

    # --- requests -----------------------------------------------------------------------------

    def place(self, user: str, request: SpotOrderRequest, now_ns: int) -> Placed | Refusal:
        symbol = self.symbols[request.symbol]
        checked = self._check(request, symbol)
        if isinstance(checked, Refusal):
            return checked
        price, size, funds = checked
        if request.client_oid is not None and (user, request.client_oid) in self._client_oids:
            return Refusal("400100", "clientOid duplicated")
        number = next(self._numbers)
        oid = f"{number:024x}"
        order = SpotOrder(user, oid, number, request, symbol, price, size, funds, now_ns)
        _, taker_rate = self._fee_rates(user, symbol.name)
        if request.side == "buy":
            if funds is not None:
                held = self.ledger.hold(oid, user, symbol.quote, funds)
            elif price is None:  # a market buy by size: what it costs is known as it trades
                available = self.ledger.balance(user, symbol.quote).available
                held = available > 0 and self.ledger.hold(oid, user, symbol.quote, available)
            else:
                assert price is not None
                assert size is not None
                per_unit = price * (1 + taker_rate)
                held = self.ledger.hold(oid, user, symbol.quote, per_unit * size, per_unit)
        else:
            assert size is not None
            held = self.ledger.hold(oid, user, symbol.base, size)
        if not held:
            return Refusal("200004", "Balance insufficient!")
        changes = [self._change(order, "received", now_ns)]
        self.live[oid] = order
        self.orders[oid] = order
        self._by_number[number] = order
        if request.client_oid is not None:
            self._client_oids[user, request.client_oid] = oid
        self._execute(order, now_ns, changes)
        return Placed(oid, tuple(changes))

    def cancel(self, user: str, oid: str, now_ns: int) -> tuple[OrderChange, ...] | Refusal:
        order = self.live.get(oid)
        if order is None or order.user != user:
            return Refusal("400100", "order not exist.")
        self.books[order.symbol.name].remove(order.number)
        return (self._end(order, "canceled", now_ns),)

    def cancel_all(
        self, user: str, symbols: Iterable[str] | None, now_ns: int
    ) -> tuple[OrderChange, ...]:
        """Cancel every active order of the account on ``symbols`` (None: on every symbol)."""
        wanted = None if symbols is None else set(symbols)
        doomed = [
            oid
            for oid, order in self.live.items()
            if order.user == user and (wanted is None or order.symbol.name in wanted)
        ]
        changes: list[OrderChange] = []
        for oid in doomed:
            result = self.cancel(user, oid, now_ns)
            assert not isinstance(result, Refusal)
            changes.extend(result)
        return tuple(changes)

    def active_by_client_oid(self, user: str, client_oid: str) -> SpotOrder | None:
        """The account's active order with this ``clientOid`` (unique among them), or None."""
        oid = self._client_oids.get((user, client_oid))
        return None if oid is None else self.live[oid]

    def alter(
        self,
        user: str,
        oid: str,
        new_price: str | None,
        new_size: str | None,
        now_ns: int,
    ) -> Altered | Refusal:
        """Modify an active limit order (see the module): refused, nothing changed, when the
        order is not the account's active one (``400100`` "order not exist.") or the new order
        would be refused for its fields. A new order the balance cannot cover after the cancel
        is ``Altered`` with the ``200004`` refusal and the old order cancelled (the venue
        cancels first)."""
        order = self.live.get(oid)
        if order is None or order.user != user:
            return Refusal("400100", "order not exist.")
        if new_price is None and new_size is None:
            return Refusal("400100", "newPrice or newSize: one of them is required")
        assert order.price is not None
        assert order.size is not None
        size = _decimal(new_size) if new_size is not None else order.size
        assert size is not None
        if size <= 0 or order.symbol.lots(size) is None:
            return Refusal("400100", "Order size increment invalid.")
        left = size - order.filled
        request = attrs.evolve(
            order.request,
            price=new_price if new_price is not None else _number(order.price),
            size=_number(left),
        )
        if left > 0:
            checked = self._check(request, order.symbol)
            if isinstance(checked, Refusal):
                return checked
        cancelled = self.cancel(user, oid, now_ns)
        assert not isinstance(cancelled, Refusal)
        if left <= 0:
            return Altered(cancelled, None)
        placed = self.place(user, request, now_ns)
        if isinstance(placed, Refusal):
            return Altered(cancelled, None, placed)
        return Altered(cancelled, placed)

    def done_orders(self, user: str, symbol: str) -> Iterable[SpotOrder]:
        """The account's done orders of the symbol still kept, the latest done first."""
        for oid in reversed(self._done.get(user, ())):
            order = self.orders.get(oid)
            if order is not None and order.symbol.name == symbol:
                yield order

    def check(self, request: SpotOrderRequest) -> Refusal | None:
        """The refusal ``place`` would answer for the request's own fields (the balance
        apart), or None: what a test order answers."""
        checked = self._check(request, self.symbols[request.symbol])
        return checked if isinstance(checked, Refusal) else None

    def fee_rates(self, user: str, symbol: str) -> tuple[Decimal, Decimal]:
        """The account's (maker, taker) rates for the symbol."""
        return self._fee_rates(user, symbol)

    def open_orders(self, user: str, symbol: str) -> list[str]:
        return [
            oid
            for oid, order in self.live.items()
            if order.user == user and order.symbol.name == symbol
        ]

    # --- checks -------------------------------------------------------------------------------

    def _check(
        self, request: SpotOrderRequest, symbol: SpotSymbol
    ) -> tuple[Decimal | None, Decimal | None, Decimal | None] | Refusal:
        if request.side not in ("buy", "sell"):
            return Refusal("400100", "side: must be buy or sell")
        if request.time_in_force not in TIMES_IN_FORCE:
            return Refusal("400100", "timeInForce: must be GTC, IOC or FOK")
        price, size, funds = (
            _decimal(request.price),
            _decimal(request.size),
            _decimal(request.funds),
        )
        if request.type == "limit":
            if price is None or size is None or funds is not None:
                return Refusal("400100", "a limit order takes price and size")
            if price <= 0 or symbol.ticks(price) is None:
                return Refusal("400100", "Price increment invalid.")
        elif request.type == "market":
            if price is not None or (size is None) == (funds is None):
                return Refusal("400100", "a market order takes size or funds, and no price")
            if request.post_only:
                return Refusal("400100", "postOnly: a market order cannot be post-only")
            if funds is not None:
                if request.side != "buy":
                    return Refusal("400100", "funds: only a market buy is by funds")
                if funds <= 0 or _units(funds, symbol.quote_increment) is None:
                    return Refusal("400100", "Order funds increment invalid.")
                if funds < symbol.quote_min_size:
                    return Refusal("400100", f"funds: at least {symbol.quote_min_size}")
                return None, None, funds
        else:
            return Refusal("400100", "type: must be limit or market")
        assert size is not None
        if size <= 0 or symbol.lots(size) is None:
            return Refusal("400100", "Order size increment invalid.")
        if size < symbol.base_min_size:
            return Refusal("400100", f"size: at least {symbol.base_min_size}")
        if price is not None and price * size < symbol.min_funds:
            return Refusal("400100", f"the order's value: at least {symbol.min_funds}")
        return price, size, None

    # --- matching -----------------------------------------------------------------------------

    def _execute(self, order: SpotOrder, now_ns: int, changes: list[OrderChange]) -> None:
        request, symbol = order.request, order.symbol
        book = self.books[symbol.name]
        is_buy = request.side == "buy"
        if order.price is not None:
            assert order.size is not None
            ticks = symbol.ticks(order.price)
            assert ticks is not None
            crosses = book.would_cross(is_buy, ticks)
            if request.post_only and crosses:
                changes.append(self._end(order, "canceled", now_ns))
                return
            lots = symbol.lots(order.size)
            assert lots is not None
            if (
                request.time_in_force == "FOK"
                and self._fillable(book, is_buy, ticks, order.user) < lots
            ):
                changes.append(self._end(order, "canceled", now_ns))
                return
            self._take(order, book, is_buy, ticks, lots, now_ns, changes)
            if order.filled == order.size:
                changes.append(self._end(order, "filled", now_ns))
            elif request.time_in_force == "GTC":
                left = lots - (symbol.lots(order.filled) or 0)
                book.insert(Order(order.number, order.user, 0, is_buy, ticks, left, lots, now_ns))
                order.in_book = True
                changes.append(self._change(order, "open", now_ns))
            else:
                changes.append(self._end(order, "canceled", now_ns))
        elif order.funds is not None:
            self._spend_funds(order, book, now_ns, changes)
            hold = self.ledger.holding(order.oid)
            spent = hold is not None and hold.remaining == 0
            changes.append(self._end(order, "filled" if spent else "canceled", now_ns))  # dust
        else:
            assert order.size is not None
            lots = symbol.lots(order.size)
            assert lots is not None
            if is_buy:  # by size, on all it could hold of the quote currency
                self._spend_funds(order, book, now_ns, changes, max_lots=lots)
            else:
                self._take(order, book, is_buy, 0, lots, now_ns, changes)  # any bid: no floor
            changes.append(
                self._end(order, "filled" if order.filled == order.size else "canceled", now_ns)
            )

    def _fillable(self, book: OrderBook, is_buy: bool, ticks: int, user: str) -> int:
        """The lots a taker at ``ticks`` could take now (own orders excluded)."""
        total = 0
        for order in book.iter_orders():
            if order.is_buy == is_buy or order.user == user:
                continue
            if (order.px <= ticks) if is_buy else (order.px >= ticks):
                total += order.sz
        return total

    def _take(
        self,
        order: SpotOrder,
        book: OrderBook,
        is_buy: bool,
        ticks: int,
        lots: int,
        now_ns: int,
        changes: list[OrderChange],
    ) -> None:
        matches, expired, _ = book.match(is_buy, ticks, lots, order.user)
        for resting in expired:
            changes.append(self._end(self._by_number[resting.oid], "canceled", now_ns))
        for match in matches:
            self._trade(
                order, self._by_number[match.maker.oid], match.px, match.sz, now_ns, changes
            )

    def _spend_funds(
        self,
        order: SpotOrder,
        book: OrderBook,
        now_ns: int,
        changes: list[OrderChange],
        max_lots: int | None = None,
    ) -> None:
        """Take the asks, best first, in whole lots while the order's hold pays for them (fees
        included), and at most ``max_lots`` in all."""
        symbol = order.symbol
        _, taker_rate = self._fee_rates(order.user, symbol.name)
        while max_lots is None or (symbol.lots(order.filled) or 0) < max_lots:
            hold = self.ledger.holding(order.oid)
            assert hold is not None
            ask = book.best_ask()
            if ask is None:
                return
            price = symbol.price(ask)
            per_lot = price * symbol.base_increment * (1 + taker_rate)
            affordable = int((hold.remaining / per_lot).to_integral_value(rounding=ROUND_FLOOR))
            if affordable <= 0:
                return
            want = min(affordable, book.level_size(False, ask))
            if max_lots is not None:
                want = min(want, max_lots - (symbol.lots(order.filled) or 0))
            before = len(changes)
            self._take(order, book, True, ask, want, now_ns, changes)
            if len(changes) == before:
                return  # nothing taken (only own orders there, now cancelled): stop

    def _trade(
        self,
        taker: SpotOrder,
        maker: SpotOrder,
        ticks: int,
        lots: int,
        now_ns: int,
        changes: list[OrderChange],
    ) -> None:
        symbol = taker.symbol
        price, size = symbol.price(ticks), symbol.size(lots)
        taker_buys = taker.request.side == "buy"
        buyer, seller = (taker, maker) if taker_buys else (maker, taker)
        _, taker_rate = self._fee_rates(taker.user, symbol.name)
        maker_rate, _ = self._fee_rates(maker.user, symbol.name)
        buy_fee, sell_fee = self.ledger.settle(
            buy=buyer.oid,
            sell=seller.oid,
            base=symbol.base,
            quote=symbol.quote,
            price=price,
            size=size,
            buy_fee_rate=taker_rate if taker_buys else maker_rate,
            sell_fee_rate=maker_rate if taker_buys else taker_rate,
        )
        trade_number = next(self._trades)
        trade_id = str(trade_number)
        fees = {buyer.oid: buy_fee, seller.oid: sell_fee}
        rates = {taker.oid: taker_rate, maker.oid: maker_rate}
        for side in (taker, maker):
            side.filled += size
            side.deal_funds += price * size
            side.fee += fees[side.oid]
            side.updated_ns = now_ns
        for side, liquidity in ((taker, "taker"), (maker, "maker")):
            counter = maker if side is taker else taker
            self._record(
                Fill(
                    id=next(self._fill_numbers),
                    trade_id=trade_number,
                    user=side.user,
                    oid=side.oid,
                    counter_oid=counter.oid,
                    symbol=symbol.name,
                    side=side.request.side,
                    order_type=side.request.type,
                    liquidity=liquidity,
                    price=price,
                    size=size,
                    fee=fees[side.oid],
                    fee_rate=rates[side.oid],
                    fee_currency=symbol.quote,
                    ts_ns=now_ns,
                )
            )
            changes.append(
                self._change(
                    side,
                    "match",
                    now_ns,
                    match_price=price,
                    match_size=size,
                    trade_id=trade_id,
                    liquidity=liquidity,
                    fee=fees[side.oid],
                )
            )
        if maker.size is not None and maker.filled == maker.size:
            changes.append(self._end(maker, "filled", now_ns))

    # --- bookkeeping --------------------------------------------------------------------------

    def _record(self, fill: Fill) -> None:
        kept = self.fills.setdefault(fill.user, deque(maxlen=FILLS_KEPT))
        kept.append(fill)

    def _end(self, order: SpotOrder, kind: str, now_ns: int) -> OrderChange:
        self.live.pop(order.oid, None)
        self._by_number.pop(order.number, None)
        client_key = (order.user, order.request.client_oid or "")
        if self._client_oids.get(client_key) == order.oid:
            del self._client_oids[client_key]
        order.end, order.in_book, order.updated_ns = kind, False, now_ns
        order.done_number = next(self._done_numbers)
        done = self._done.setdefault(order.user, deque())
        done.append(order.oid)
        if len(done) > DONE_KEPT:
            self.orders.pop(done.popleft(), None)
        if self.ledger.holding(order.oid) is not None:
            self.ledger.release(order.oid)
        return self._change(order, kind, now_ns)

    def _change(self, order: SpotOrder, kind: str, now_ns: int, **match: object) -> OrderChange:
        ended = kind in ("filled", "canceled")
        remaining = Decimal(0)
        if not ended and order.size is not None:
            remaining = order.size - order.filled
        return OrderChange(
            user=order.user,
            oid=order.oid,
            client_oid=order.request.client_oid,
            symbol=order.symbol.name,
            side=order.request.side,
            order_type=order.request.type,
            type=kind,
            price=order.price,
            origin_size=order.size,
            origin_funds=order.funds,
            filled_size=order.filled,
            remain_size=remaining,
            ts_ns=now_ns,
            **match,  # type: ignore[arg-type]
        )
