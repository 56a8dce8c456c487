"""The simulator's exchange core: order lifecycle, matching, accounts, margin, events.

Pure and synchronous: every call takes ``now`` (milliseconds) and returns typed results; what
the protocol faces must publish (trades, user fills, order updates, book changes) is appended
to ``events`` for the shell to drain. Rejections carry a reason code and the face words them
in the venue's own language. System users (the synthetic market's liquidity and taker flow)
trade without margin, accounting or history.
"""

from __future__ import annotations

import enum
import operator
from collections import deque
from collections.abc import Iterable, Sequence

import attrs

from mm.venues.sim.accounts import Account
from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.book import OpenTally, Order, OrderBook
from mm.venues.sim.events import (
    BookChanged,
    Event,
    FundingPayment,
    NonUserCancel,
    OrderUpdate,
    Trade,
    UserFill,
)

MIN_NOTIONAL_USDC = 10.0
MAX_SCHEDULED_CANCEL_TRIGGERS_PER_DAY = 10
MIN_SCHEDULE_DELAY_MS = 5_000
DAY_MS = 86_400_000
HISTORY_PER_USER = 2_000
FILLS_PER_USER = 10_000
FUNDINGS_PER_USER = 10_000
# Open orders per user (the venue's "Rate limits and user limits" page): 1000, plus one for
# every 5M USDC traded, at most 5000; and with 1000 or more open, a reduce-only order is refused.
OPEN_ORDERS_BASE = 1_000
OPEN_ORDERS_PER_VOLUME_USDC = 5_000_000
OPEN_ORDERS_MAX = 5_000
HOUR_MS = 3_600_000
MAX_FUNDING_RATE = 0.04  # the venue caps funding at 4% an hour
TIFS = ("Gtc", "Ioc", "Alo")

_order_fields = operator.attrgetter(*(field.name for field in attrs.fields(Order)))


def _snapshot(order: Order) -> Order:
    """A copy of ``order``; ``attrs.evolve`` costs several times more on this hot path."""
    return Order(*_order_fields(order))


class Reject(enum.Enum):
    TICK = "tick"
    INVALID_SIZE = "invalid_size"
    OPEN_ORDER_LIMIT = "open_order_limit"
    ZERO_SIZE = "zero_size"
    MIN_NOTIONAL = "min_notional"
    MARGIN = "margin"
    REDUCE_ONLY = "reduce_only"
    BAD_ALO = "bad_alo"
    IOC_CANCEL = "ioc_cancel"
    DUPLICATE_CLOID = "duplicate_cloid"
    BAD_ASSET = "bad_asset"
    BAD_TIF = "bad_tif"
    MISSING_ORDER = "missing_order"
    CANNOT_MODIFY = "cannot_modify"


@attrs.frozen
class OrderRequest:
    asset: int
    is_buy: bool
    px: str
    sz: str
    reduce_only: bool = False
    tif: str = "Gtc"
    cloid: str | None = None


@attrs.frozen
class Resting:
    oid: int
    cloid: str | None


@attrs.frozen
class Filled:
    oid: int
    cloid: str | None
    asset: int
    total_sz: int
    avg_px: float


@attrs.frozen
class Rejected:
    reason: Reject
    asset: int
    detail: str = ""


PlaceResult = Resting | Filled | Rejected


@attrs.frozen
class Fees:
    """Fee rates on notional; a negative maker rate is a rebate."""

    maker: float = 0.00015
    taker: float = 0.00045


@attrs.define
class OrderRecord:
    """What the venue remembers of a user's order, for status and history queries."""

    order: Order  # as placed (orig_sz), with ``sz`` the size remaining
    status: str
    status_time: int


@attrs.define
class _Schedule:
    time: int | None = None
    triggers: deque[int] = attrs.field(factory=deque)


class Engine:
    def __init__(
        self,
        specs: Sequence[AssetSpec],
        fees: Fees | None = None,
        *,
        system_users: Iterable[str] = (),
        first_id: int = 1,
    ) -> None:
        """``first_id``: the first order id and trade id it gives (an embedded simulator's
        ids must not repeat a previous run's, which the service's journal remembers)."""
        self.specs = list(specs)
        self.by_name = {spec.name: spec for spec in self.specs}
        self.fees = fees or Fees()
        self.system_users = frozenset(system_users)
        # What each trading user has resting, over every book: the per-order checks read it.
        self.tally = OpenTally(self.system_users)
        self.books = [OrderBook(self.tally) for _ in self.specs]
        # One BookChanged per asset, shared (it is frozen): the engine says it twice for every
        # order the synthetic market re-quotes, hundreds of times a market second.
        self._book_changed = [BookChanged(asset) for asset in range(len(self.specs))]
        self.accounts: dict[str, Account] = {}
        self.events: list[Event] = []
        self.last_trade_px: dict[int, int] = {}
        self.records: dict[int, OrderRecord] = {}
        self.history: dict[str, deque[int]] = {}
        self.fills: dict[str, deque[UserFill]] = {}
        self.fundings: dict[str, deque[FundingPayment]] = {}
        self._open_cloids: dict[str, dict[str, int]] = {}
        self._cloid_history: dict[str, dict[str, int]] = {}
        self._schedules: dict[str, _Schedule] = {}
        self._next_oid = first_id
        self._next_tid = first_id

    # --- accounts ------------------------------------------------------------------------------

    def account(self, user: str) -> Account | None:
        return self.accounts.get(user)

    def fund(self, user: str, usdc: float) -> Account:
        account = self.accounts.get(user)
        if account is None:
            account = self.accounts[user] = Account(user)
        account.usdc += usdc
        return account

    def mark(self, asset: int) -> float | None:
        """Mid of the book, else the last trade price."""
        book = self.books[asset]
        bid, ask = book.best_bid(), book.best_ask()
        spec = self.specs[asset]
        if bid is not None and ask is not None:
            return (spec.px_float(bid) + spec.px_float(ask)) / 2
        last = self.last_trade_px.get(asset)
        return spec.px_float(last) if last is not None else None

    def marks(self) -> dict[int, float]:
        found = {}
        for asset in range(len(self.specs)):
            mark = self.mark(asset)
            if mark is not None:
                found[asset] = mark
        return found

    def open_orders(self, user: str) -> list[Order]:
        orders = [order for book in self.books for order in book.user_orders(user)]
        orders.sort(key=lambda order: order.oid, reverse=True)
        return orders

    def open_order_count(self, user: str) -> int:
        """How many orders ``user`` has resting, over every book."""
        if user in self.system_users:  # not in the tally
            return sum(book.user_count(user) for book in self.books)
        return self.tally.counts.get(user, 0)

    def open_order_limit(self, user: str) -> int:
        """``user``'s open-order limit: 1000 plus one per 5M USDC traded, at most 5000."""
        account = self.accounts.get(user)
        volume = account.cum_volume if account is not None else 0.0
        extra = int(volume // OPEN_ORDERS_PER_VOLUME_USDC)
        return min(OPEN_ORDERS_BASE + extra, OPEN_ORDERS_MAX)

    def order_margin(self, user: str) -> float:
        """Initial margin held by a user's resting orders."""
        account = self.accounts.get(user)
        if account is None:
            return 0.0
        # Exact in integers (ticks x lots) per asset, kept by the tally, then one conversion
        # to USDC each, summed in the order of the assets.
        by_asset = self.tally.margin.get(user)
        if not by_asset:
            return 0.0
        total = 0.0
        for asset in sorted(by_asset):
            total += self.specs[asset].notional(by_asset[asset], 1) / account.leverage_for(asset)
        return total

    def _held_marks(self, account: Account) -> dict[int, float]:
        """The marks of the assets ``account`` holds a position in: all that its value and its
        margin in use read of ``marks()``, without a mark for every listed asset."""
        marks = {}
        for asset, position in account.positions.items():
            if position.szi:
                mark = self.mark(asset)
                if mark is not None:
                    marks[asset] = mark
        return marks

    # --- orders --------------------------------------------------------------------------------

    def place(self, user: str, request: OrderRequest, now: int) -> PlaceResult:
        """An order as the venue's wire gives it (price and size as decimal strings)."""
        asset = request.asset
        if not 0 <= asset < len(self.specs):
            return Rejected(Reject.BAD_ASSET, asset)
        spec = self.specs[asset]
        if request.tif not in TIFS:
            return Rejected(Reject.BAD_TIF, asset, request.tif)
        px = spec.parse_px(request.px)
        if px is None:
            return Rejected(Reject.TICK, asset)
        lots = spec.parse_sz(request.sz)
        if lots is None:
            return Rejected(Reject.INVALID_SIZE, asset)
        return self.place_ticks(
            user,
            asset,
            request.is_buy,
            px,
            lots,
            now,
            tif=request.tif,
            reduce_only=request.reduce_only,
            cloid=request.cloid,
        )

    def place_ticks(
        self,
        user: str,
        asset: int,
        is_buy: bool,
        px: int,
        lots: int,
        now: int,
        *,
        tif: str = "Gtc",
        reduce_only: bool = False,
        cloid: str | None = None,
    ) -> PlaceResult:
        """An order in ticks and lots, under the same rules as :meth:`place` (which parses the
        wire's strings into this): the synthetic market's own orders skip the round trip
        through strings, a third of the simulator's time when it was the only way in."""
        if not 0 <= asset < len(self.specs):
            return Rejected(Reject.BAD_ASSET, asset)
        spec = self.specs[asset]
        if tif not in TIFS:
            return Rejected(Reject.BAD_TIF, asset, tif)
        if not spec.valid_ticks(px):
            return Rejected(Reject.TICK, asset)
        if lots < 0:
            return Rejected(Reject.INVALID_SIZE, asset)
        if not lots:
            return Rejected(Reject.ZERO_SIZE, asset)
        system = user in self.system_users
        account = None if system else self.accounts.get(user)
        if not system and account is None:
            return Rejected(Reject.MARGIN, asset)
        if cloid is not None and cloid in self._open_cloids.get(user, {}):
            return Rejected(Reject.DUPLICATE_CLOID, asset)
        if account is not None:
            open_now = self.open_order_count(user)
            if open_now >= self.open_order_limit(user) or (
                reduce_only and open_now >= OPEN_ORDERS_BASE
            ):
                return Rejected(Reject.OPEN_ORDER_LIMIT, asset)
        if reduce_only and account is not None:
            position = account.position(asset).szi
            if position == 0 or (position > 0) == is_buy:
                return Rejected(Reject.REDUCE_ONLY, asset)
            lots = min(lots, abs(position))
        elif spec.notional(px, lots) < MIN_NOTIONAL_USDC and not system:
            return Rejected(Reject.MIN_NOTIONAL, asset)
        book = self.books[asset]
        order = Order(
            oid=0,  # numbered below, once the order is taken (a refused one takes none)
            user=user,
            asset=asset,
            is_buy=is_buy,
            px=px,
            sz=lots,
            orig_sz=lots,
            timestamp=now,
            tif=tif,
            reduce_only=reduce_only,
            cloid=cloid,
        )
        if tif == "Alo" and book.would_cross(is_buy, px):
            bid, ask = book.best_bid(), book.best_ask()
            bbo = "@".join(spec.px_str(p) if p is not None else "None" for p in (bid, ask))
            if not system:  # the venue gives the rejected order an oid and reports it
                rejected = self._numbered(order)
                self._remember(rejected, now)
                self._set_status(rejected, "badAloPxRejected", now)
            return Rejected(Reject.BAD_ALO, asset, bbo)
        if account is not None and not reduce_only:
            marks = self._held_marks(account)
            free = (
                account.account_value(self.specs, marks)
                - account.margin_used(self.specs, marks)
                - self.order_margin(user)
            )
            if spec.notional(px, lots) / account.leverage_for(asset) > free:
                return Rejected(Reject.MARGIN, asset)
        return self._execute(self._numbered(order), now)

    def rest_system(
        self,
        user: str,
        asset: int,
        quotes: Sequence[tuple[bool, int, int]],
        now: int,
    ) -> list[int]:
        """A system user's good-till-canceled orders, placed in turn, each ``(is_buy, px,
        lots)``: what :meth:`place_ticks` does with them, without the checks only a trading
        user's order can fail (margin, notional, cloids). Each ``px`` must be a valid price
        (``AssetSpec.round_px`` gives one) and each ``lots`` positive. The oids of those that
        rested on arrival (one that traded in full rests not); the oids run on in ``quotes``'
        order, one each."""
        first = self._next_oid
        orders = [
            Order(first + index, user, asset, is_buy, px, lots, lots, now)
            for index, (is_buy, px, lots) in enumerate(quotes)
        ]
        self._next_oid = first + len(orders)
        book = self.books[asset]
        changed = self._book_changed[asset]
        events = self.events
        rested: list[int] = []
        index = 0
        while index < len(orders):
            # What _execute does with an order that meets nothing (the synthetic market's
            # ladder, nearly always): no match, no trade, no record for a system user; it rests.
            stop = book.rest_passive(orders, index)
            events.extend([changed] * (stop - index))
            rested.extend(order.oid for order in orders[index:stop])
            if stop < len(orders):
                crossing = orders[stop]
                self._execute(crossing, now)
                if crossing.sz:
                    rested.append(crossing.oid)
            index = stop + 1
        return rested

    def cancel_system(self, user: str, asset: int, oids: Iterable[int], now: int) -> None:
        """:meth:`cancel` of each of a system user's ``oids`` that still rests (one traded
        away is skipped, as :meth:`cancel` refuses it), with the same events: a system user's
        order has no status, record or cloid to close."""
        if user not in self.system_users:
            for oid in oids:
                self.cancel(user, asset, oid, now)
            return
        removed = self.books[asset].remove_many(user, oids)
        self.events.extend([self._book_changed[asset]] * removed)

    def _numbered(self, order: Order) -> Order:
        """``order`` with the venue's next oid."""
        order.oid = self._next_oid
        self._next_oid += 1
        return order

    def _execute(self, order: Order, now: int) -> PlaceResult:
        system = order.user in self.system_users
        book = self.books[order.asset]
        matches, expired, remaining = book.match(order.is_buy, order.px, order.sz, order.user)
        for maker in expired:
            self._close(maker, "selfTradeCanceled", now)
        filled = order.sz - remaining
        notional_ticks = 0
        for match in matches:
            notional_ticks += match.px * match.sz
            self._trade(order, match.maker, match.px, match.sz, now)
        order.sz = remaining
        if matches or expired:
            self.events.append(self._book_changed[order.asset])
        avg_px = self.specs[order.asset].px_float(notional_ticks) / filled if filled else 0.0
        if not system:
            self._remember(order, now)
        if remaining and order.tif == "Ioc":
            if not filled:
                self._set_status(order, "iocCancelRejected", now)
                return Rejected(Reject.IOC_CANCEL, order.asset)
            self._set_status(order, "canceled", now)
            return Filled(order.oid, order.cloid, order.asset, filled, avg_px)
        if remaining:
            book.insert(order)
            self.events.append(self._book_changed[order.asset])
            if not system:
                self._open_cloids_of(order.user).update(
                    {order.cloid: order.oid} if order.cloid else {}
                )
                self._set_status(order, "open", now)
            return Resting(order.oid, order.cloid)
        self._set_status(order, "filled", now)
        return Filled(order.oid, order.cloid, order.asset, filled, avg_px)

    def _trade(self, taker: Order, maker: Order, px: int, lots: int, now: int) -> None:
        tid = self._next_tid
        self._next_tid += 1
        self.last_trade_px[taker.asset] = px
        buyer, seller = (taker.user, maker.user) if taker.is_buy else (maker.user, taker.user)
        self.events.append(Trade(taker.asset, taker.is_buy, px, lots, now, tid, buyer, seller))
        self._fill(maker, px, lots, now, tid, crossed=False)
        self._fill(taker, px, lots, now, tid, crossed=True)
        if maker.sz == 0 and maker.user not in self.system_users:
            self._forget_cloid(maker)
            self._set_status(maker, "filled", now)

    def _fill(self, order: Order, px: int, lots: int, now: int, tid: int, crossed: bool) -> None:
        account = self.accounts.get(order.user)
        if account is None or order.user in self.system_users:
            return
        spec = self.specs[order.asset]
        rate = self.fees.taker if crossed else self.fees.maker
        outcome = account.apply_fill(spec, order.is_buy, px, lots, rate)
        fill = UserFill(
            user=order.user,
            asset=order.asset,
            is_buy=order.is_buy,
            px=px,
            sz=lots,
            time=now,
            start_position=outcome.start_position,
            direction=outcome.direction,
            closed_pnl=outcome.closed_pnl,
            fee=outcome.fee,
            oid=order.oid,
            tid=tid,
            crossed=crossed,
            cloid=order.cloid,
        )
        fills = self.fills.setdefault(order.user, deque(maxlen=FILLS_PER_USER))
        fills.append(fill)
        self.events.append(fill)
        self._recheck_reduce_only(order.user, order.asset, now)

    def _recheck_reduce_only(self, user: str, asset: int, now: int) -> None:
        """After a position change: cancel resting reduce-only orders that could now increase it
        (wrong side, or larger than the position), so none can open or flip a position."""
        account = self.accounts.get(user)
        if account is None:
            return
        reduce_only = self.tally.reduce_only.get(user)
        if not reduce_only:
            return
        position = account.position(asset).szi
        book = self.books[asset]
        for order in [o for o in reduce_only.values() if o.asset == asset]:
            if position == 0 or (position > 0) == order.is_buy or order.sz > abs(position):
                book.remove(order.oid)
                self.events.append(self._book_changed[asset])
                self._close(order, "reduceOnlyCanceled", now)

    def cancel(self, user: str, asset: int, oid: int, now: int) -> Rejected | None:
        if not 0 <= asset < len(self.specs):
            return Rejected(Reject.BAD_ASSET, asset)
        order = self.books[asset].orders.get(oid)
        if order is None or order.user != user:
            return Rejected(Reject.MISSING_ORDER, asset)
        self.books[asset].remove(oid)
        self.events.append(self._book_changed[asset])
        self._close(order, "canceled", now)
        return None

    def cancel_by_cloid(self, user: str, asset: int, cloid: str, now: int) -> Rejected | None:
        oid = self._open_cloids.get(user, {}).get(cloid)
        if oid is None:
            return Rejected(Reject.MISSING_ORDER, asset)
        return self.cancel(user, asset, oid, now)

    def modify(self, user: str, target: int | str, request: OrderRequest, now: int) -> PlaceResult:
        """Cancel-and-replace: the new order gets a new oid and keeps the old one's cloid."""
        oid = target if isinstance(target, int) else self._open_cloids.get(user, {}).get(target)
        order = self._resting(user, oid)
        if order is None:
            return Rejected(Reject.CANNOT_MODIFY, request.asset)
        self.books[order.asset].remove(order.oid)
        self.events.append(self._book_changed[order.asset])
        self._close(order, "canceled", now)
        cloid = request.cloid if request.cloid is not None else order.cloid
        return self.place(user, attrs.evolve(request, cloid=cloid), now)

    def _resting(self, user: str, oid: int | None) -> Order | None:
        if oid is None:
            return None
        for book in self.books:
            order = book.orders.get(oid)
            if order is not None:
                return order if order.user == user else None
        return None

    def cancel_all(self, user: str, now: int, status: str) -> list[Order]:
        canceled = []
        for order in self.open_orders(user):
            self.books[order.asset].remove(order.oid)
            self.events.append(self._book_changed[order.asset])
            self._close(order, status, now)
            canceled.append(order)
        return canceled

    def schedule_cancel(self, user: str, time: int | None, now: int) -> str | None:
        """Set (or clear, with None) the dead-man's switch; an error text when refused."""
        schedule = self._schedules.setdefault(user, _Schedule())
        if time is None:
            schedule.time = None
            return None
        if time < now + MIN_SCHEDULE_DELAY_MS:
            return "Scheduled cancel time too early, must be at least 5 seconds from now."
        # The count of the UTC day: "The max number of triggers per day is 10. This trigger
        # count is reset at 00:00 UTC." (the SDK's schedule_cancel, from the venue's docs).
        while schedule.triggers and schedule.triggers[0] // DAY_MS < now // DAY_MS:
            schedule.triggers.popleft()
        if len(schedule.triggers) >= MAX_SCHEDULED_CANCEL_TRIGGERS_PER_DAY:
            return "Too many scheduled cancel triggers today."
        schedule.time = time
        return None

    def run_schedules(self, now: int) -> None:
        """Fire every dead-man's switch whose time has come."""
        for user, schedule in self._schedules.items():
            if schedule.time is not None and schedule.time <= now:
                schedule.time = None
                schedule.triggers.append(now)
                self.cancel_all(user, now, "scheduledCancel")

    def scheduled_time(self, user: str) -> int | None:
        schedule = self._schedules.get(user)
        return schedule.time if schedule else None

    def force_position(self, user: str, asset: int, szi: int, now: int) -> None:
        """Set a position without a fill (a forced liquidation): the old one closes at the mark."""
        account = self.accounts.get(user)
        mark = self.mark(asset)
        if account is None or mark is None:
            return
        spec = self.specs[asset]
        position = account.position(asset)
        if position.szi:
            account.usdc += position.unrealized(spec, mark)
        position.szi = szi
        position.entry_ntl = abs(spec.sz_float(szi)) * mark

    # --- funding -------------------------------------------------------------------------------

    def pay_funding(self, rate: float, now: int) -> None:
        """Settle an hour's funding on every open position, at the mark: a position of ``szi``
        receives ``-szi x mark x rate`` USDC (a positive rate has longs pay shorts), rounded to
        the USDC's 6 decimals, credited to (or taken from) its account."""
        if not rate:
            return
        marks = self.marks()
        for user, account in self.accounts.items():
            if user in self.system_users:
                continue
            for asset, position in sorted(account.positions.items()):
                mark = marks.get(asset)
                if not position.szi or mark is None:
                    continue
                usdc = round(-self.specs[asset].sz_float(position.szi) * mark * rate, 6)
                account.usdc += usdc
                payment = FundingPayment(user, asset, usdc, position.szi, rate, now)
                self.fundings.setdefault(user, deque(maxlen=FUNDINGS_PER_USER)).append(payment)
                self.events.append(payment)

    # --- history -------------------------------------------------------------------------------

    def _remember(self, order: Order, now: int) -> None:
        self.records[order.oid] = OrderRecord(_snapshot(order), "open", now)
        history = self.history.setdefault(order.user, deque())
        history.append(order.oid)
        if order.cloid:
            self._cloid_history.setdefault(order.user, {})[order.cloid] = order.oid
        while len(history) > HISTORY_PER_USER:
            forgotten = self.records.pop(history.popleft(), None)
            if forgotten is not None and forgotten.order.cloid is not None:
                cloids = self._cloid_history.get(order.user, {})
                if cloids.get(forgotten.order.cloid) == forgotten.order.oid:
                    del cloids[forgotten.order.cloid]

    def _set_status(self, order: Order, status: str, now: int) -> None:
        if order.user in self.system_users:
            return
        record = self.records.get(order.oid)
        if record is not None:
            record.order.sz = order.sz
            record.status = status
            record.status_time = now
        self.events.append(OrderUpdate(order.user, _snapshot(order), status, now))

    def _close(self, order: Order, status: str, now: int) -> None:
        if order.user in self.system_users:
            return
        self._forget_cloid(order)
        self._set_status(order, status, now)
        if status not in ("canceled", "filled"):
            self.events.append(NonUserCancel(order.user, order.asset, order.oid))

    def _forget_cloid(self, order: Order) -> None:
        if order.cloid is not None:
            self._open_cloids.get(order.user, {}).pop(order.cloid, None)

    def _open_cloids_of(self, user: str) -> dict[str, int]:
        return self._open_cloids.setdefault(user, {})

    def find_record(self, user: str, target: int | str) -> OrderRecord | None:
        """A user's order by oid or cloid, open or closed, while it is remembered."""
        oid = target if isinstance(target, int) else self._cloid_history.get(user, {}).get(target)
        record = self.records.get(oid) if oid is not None else None
        return record if record is not None and record.order.user == user else None
