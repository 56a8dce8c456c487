"""Property tests of the matching engine under random sequences of operations.

Several funded users, one poorly funded user and a system user place (random side, price, size,
time in force, reduce-only, cloid), cancel, cancel by cloid, modify (by oid and by cloid) and
arm the dead-man's switch, on two assets. A ``Harness`` drives the engine and, after every
operation, checks it against a plain reference model of the resting orders:

- the book is never crossed;
- every trade hits the reference's best resting order of another user first, at that order's
  price, within the taker's limit; only the taker's own orders may vanish (self-trade expiry);
- sizes are conserved per order (orig = resting + filled + canceled remainder), trades sum up
  per user to the positions, and UserFills agree with Trades;
- cancel-replace keeps the cloid and assigns a new, larger oid;
- the same operations on a fresh engine give identical events (determinism);
- the engine's tally of what each trading user has resting (the count, the margin orders hold,
  the reduce-only orders) is what walking the books finds, to the last bit of the margin.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.book import Order
from mm.venues.sim.engine import (
    Engine,
    Filled,
    OrderRequest,
    PlaceResult,
    Reject,
    Rejected,
    Resting,
)
from mm.venues.sim.events import NonUserCancel, OrderUpdate, Trade, UserFill

ETH = AssetSpec(0, "ETH", 4)  # prices 3000 +- 0.5 steps, lots of 0.0001
BTC = AssetSpec(1, "BTC", 5)  # prices 50000 +- 10 steps, lots of 0.00001
SPECS = (ETH, BTC)
MKT = "mkt"
RICH = ("u0", "u1", "u2")
POOR = "poor"  # 15 USDC: often out of margin
USERS = (*RICH, POOR, MKT)
CLOIDS = tuple(f"0x{index:032x}" for index in range(4))
TIFS = ("Gtc",) * 5 + ("Ioc",) * 3 + ("Alo",) * 3 + ("Fok",)  # "Fok": BAD_TIF
T0 = 1_700_000_000_000
STEP_MS = 700  # per operation, so schedules (>= 5 s ahead) fire during a run
TERMINAL = {"filled", "canceled", "selfTradeCanceled", "scheduledCancel", "reduceOnlyCanceled"}
TERMINAL |= {"badAloPxRejected", "iocCancelRejected"}


def price_text(asset: int, level: int) -> str:
    """Level 7 is off the tick grid; the others are valid prices around the mid."""
    if asset == 0:
        return "3000.123" if level == 7 else str(3000 + level / 2)
    return "50000.5" if level == 7 else str(50000 + level * 10)


# --- operations ----------------------------------------------------------------------------------


@attrs.frozen
class Place:
    user: str
    asset: int
    is_buy: bool
    level: int
    lots: int
    tif: str
    reduce_only: bool
    cloid: int | None


@attrs.frozen
class Cancel:
    user: str
    pick: int  # an index into the user's open orders, or a missing oid when it has none


@attrs.frozen
class CancelByCloid:
    user: str
    asset: int
    cloid: int


@attrs.frozen
class Modify:
    user: str
    pick: int
    by_cloid: bool
    is_buy: bool
    level: int
    lots: int
    tif: str


@attrs.frozen
class Schedule:
    user: str
    delay_ms: int


Op = Place | Cancel | CancelByCloid | Modify | Schedule

users = st.sampled_from(USERS)
real_users = st.sampled_from((*RICH, POOR))
levels = st.integers(-6, 7)
# Mostly tradable sizes; one in six is small: under the $10 minimum, or zero.
sizes = st.integers(0, 5).flatmap(
    lambda kind: st.integers(0, 40) if kind == 0 else st.integers(40, 700)
)

places = st.builds(
    Place,
    user=users,
    asset=st.sampled_from((0, 0, 1)),
    is_buy=st.booleans(),
    level=levels,
    lots=sizes,
    tif=st.sampled_from(TIFS),
    reduce_only=st.sampled_from((False,) * 7 + (True,)),
    cloid=st.none() | st.integers(0, len(CLOIDS) - 1),
)
cancels = st.builds(Cancel, user=users, pick=st.integers(0, 5))
cancels_by_cloid = st.builds(
    CancelByCloid, user=real_users, asset=st.sampled_from((0, 1)), cloid=st.integers(0, 3)
)
modifies = st.builds(
    Modify,
    user=users,
    pick=st.integers(0, 5),
    by_cloid=st.booleans(),
    is_buy=st.booleans(),
    level=levels,
    lots=sizes,
    tif=st.sampled_from(("Gtc", "Gtc", "Alo", "Ioc")),
)
schedules = st.builds(Schedule, user=real_users, delay_ms=st.sampled_from((4_000, 5_000, 6_000)))
# Weighted by kind: mostly placements, so that books fill up and trade.
KINDS: tuple[st.SearchStrategy[Op], ...] = (
    *[places] * 12,
    *[cancels] * 3,
    cancels_by_cloid,
    *[modifies] * 3,
    schedules,
)
ops: st.SearchStrategy[Op] = st.integers(0, len(KINDS) - 1).flatmap(lambda kind: KINDS[kind])
op_lists = st.lists(ops, min_size=20, max_size=80)


# --- the harness ---------------------------------------------------------------------------------


@attrs.define
class RefOrder:
    """The reference model's view of a resting order."""

    oid: int
    user: str
    asset: int
    is_buy: bool
    px: int
    sz: int
    cloid: str | None

    def priority(self) -> tuple[int, int]:
        return (-self.px if self.is_buy else self.px, self.oid)


def snapshot(engine: Engine) -> dict[int, RefOrder]:
    return {
        order.oid: RefOrder(
            order.oid, order.user, order.asset, order.is_buy, order.px, order.sz, order.cloid
        )
        for book in engine.books
        for order in book.iter_orders()
    }


def check_tally(engine: Engine) -> None:
    """The tally the engine's per-order checks read agrees with a walk of every book: the open
    orders, the margin they hold (summed as the engine summed it before it kept a tally) and
    the reduce-only orders in the order they rested; the system users are not in it."""
    tally = engine.tally
    for user in USERS:
        walked = [order for book in engine.books for order in book.user_orders(user)]
        assert engine.open_order_count(user) == len(walked)
        if user in engine.system_users:
            assert user not in tally.counts
            assert user not in tally.margin
            assert user not in tally.reduce_only
            continue
        assert tally.counts.get(user, 0) == len(walked)
        account = engine.accounts.get(user)
        if account is None:  # never funded: it could place nothing
            assert not walked
            assert engine.order_margin(user) == 0.0
            continue
        margin = 0.0
        for asset, book in enumerate(engine.books):
            ticks_lots = sum(o.px * o.sz for o in book.user_orders(user) if not o.reduce_only)
            if ticks_lots:
                margin += engine.specs[asset].notional(ticks_lots, 1) / account.leverage_for(asset)
        assert engine.order_margin(user) == margin
        for asset, book in enumerate(engine.books):
            mine = [o for o in tally.reduce_only.get(user, {}).values() if o.asset == asset]
            assert mine == [o for o in book.user_orders(user) if o.reduce_only]


class Harness:
    """Drives one engine through operations and checks it after each against a reference."""

    def __init__(self) -> None:
        self.engine = Engine(SPECS, system_users={MKT})
        for user in RICH:
            self.engine.fund(user, 1_000_000.0)
        self.engine.fund(POOR, 15.0)
        self.now = T0
        self.seen = 0  # events already checked
        self.max_oid = 0  # the largest oid the engine has handed out so far
        self.results: list[PlaceResult | Rejected | str | None] = []

    # - running -

    def run(self, op: Op) -> None:
        self.now += STEP_MS
        events_before = len(self.engine.events)
        before = snapshot(self.engine)
        self.engine.run_schedules(self.now)
        self.check_schedules(before)
        before = snapshot(self.engine)
        if isinstance(op, Place):
            self.run_place(op, before)
        elif isinstance(op, Cancel):
            self.run_cancel(op, before)
        elif isinstance(op, CancelByCloid):
            self.run_cancel_by_cloid(op, before)
        elif isinstance(op, Modify):
            self.run_modify(op, before)
        else:
            result = self.engine.schedule_cancel(op.user, self.now + op.delay_ms, self.now)
            self.results.append(result)
            assert (result is not None) == (op.delay_ms < 5_000)
            self.check_no_change(before)
        self.check_book_not_crossed()
        check_tally(self.engine)
        # A fill cancels the reduce-only orders it makes wrong in the order they rested.
        canceled = [
            event.order.oid
            for event in self.engine.events[events_before:]
            if isinstance(event, OrderUpdate) and event.status == "reduceOnlyCanceled"
        ]
        assert canceled == sorted(canceled)

    def request(
        self, asset: int, is_buy: bool, level: int, lots: int, tif: str, **extra: Any
    ) -> OrderRequest:
        spec = SPECS[asset]
        return OrderRequest(
            asset, is_buy, price_text(asset, level), spec.sz_str(lots), tif=tif, **extra
        )

    def run_place(self, op: Place, before: dict[int, RefOrder]) -> None:
        cloid = CLOIDS[op.cloid] if op.cloid is not None else None
        request = self.request(
            op.asset, op.is_buy, op.level, op.lots, op.tif, reduce_only=op.reduce_only, cloid=cloid
        )
        result = self.engine.place(op.user, request, self.now)
        self.results.append(result)
        duplicate = cloid is not None and any(
            o.user == op.user and o.cloid == cloid for o in before.values()
        )
        if isinstance(result, Rejected) and result.reason is Reject.DUPLICATE_CLOID:
            assert duplicate
        elif cloid is not None and op.user != MKT and not isinstance(result, Rejected):
            assert not duplicate
        self.check_placement(op.user, request, result, before)

    def run_cancel(self, op: Cancel, before: dict[int, RefOrder]) -> None:
        mine = sorted(o.oid for o in before.values() if o.user == op.user)
        target = mine[op.pick % len(mine)] if mine else self.max_oid + 1 + op.pick
        asset = before[target].asset if target in before else 0
        result = self.engine.cancel(op.user, asset, target, self.now)
        self.results.append(result)
        if target in before:
            assert result is None
            del before[target]
        else:
            assert result == Rejected(Reject.MISSING_ORDER, asset)
        self.check_book_is(before)
        self.check_events(before, taker=None)

    def run_cancel_by_cloid(self, op: CancelByCloid, before: dict[int, RefOrder]) -> None:
        cloid = CLOIDS[op.cloid]
        target = next(
            (
                o.oid
                for o in before.values()
                if (o.user, o.cloid, o.asset) == (op.user, cloid, op.asset)
            ),
            None,
        )
        result = self.engine.cancel_by_cloid(op.user, op.asset, cloid, self.now)
        self.results.append(result)
        if target is None:
            assert result == Rejected(Reject.MISSING_ORDER, op.asset)
        else:
            assert result is None
            del before[target]
        self.check_book_is(before)
        self.check_events(before, taker=None)

    def run_modify(self, op: Modify, before: dict[int, RefOrder]) -> None:
        mine = sorted(o.oid for o in before.values() if o.user == op.user)
        target: int | str
        old: RefOrder | None
        if op.by_cloid:
            target = CLOIDS[op.pick % len(CLOIDS)]
            old = next(
                (o for o in before.values() if o.user == op.user and o.cloid == target), None
            )
            if op.user == MKT:
                old = None  # the market's cloids are not tracked
        else:
            target = mine[op.pick % len(mine)] if mine else self.max_oid + 1 + op.pick
            old = before.get(target)
        asset = old.asset if old is not None else 0
        request = self.request(asset, op.is_buy, op.level, op.lots, op.tif)
        result = self.engine.modify(op.user, target, request, self.now)
        self.results.append(result)
        if old is None:
            assert result == Rejected(Reject.CANNOT_MODIFY, asset)
            self.check_no_change(before)
            return
        assert result != Rejected(Reject.CANNOT_MODIFY, asset)
        del before[old.oid]
        if op.user != MKT:
            record = self.engine.find_record(op.user, old.oid)
            assert record is not None
            assert record.status == "canceled"
        if isinstance(result, Resting | Filled):
            # Cancel-replace: a new, larger oid under the same cloid.
            assert result.oid > old.oid
            assert result.oid > self.max_oid
            assert result.cloid == old.cloid
        self.check_placement(op.user, attrs.evolve(request, cloid=old.cloid), result, before)

    # - checks -

    def check_placement(
        self,
        user: str,
        request: OrderRequest,
        result: PlaceResult,
        before: dict[int, RefOrder],
    ) -> None:
        """Replay the trades of a placement on the reference and compare with the book."""
        spec = SPECS[request.asset]
        limit = spec.parse_px(request.px)
        trades = [e for e in self.engine.events[self.seen :] if isinstance(e, Trade)]
        ref = {oid: attrs.evolve(o) for oid, o in before.items()}
        if trades:
            assert limit is not None
            assert not isinstance(result, Rejected)
        for trade in trades:
            assert trade.asset == request.asset
            assert trade.taker_is_buy == request.is_buy
            taker, maker_user = (
                (trade.buyer, trade.seller) if trade.taker_is_buy else (trade.seller, trade.buyer)
            )
            assert taker == user
            assert maker_user != user
            assert limit is not None
            assert trade.px <= limit if request.is_buy else trade.px >= limit
            hit_side = [
                o
                for o in ref.values()
                if o.asset == request.asset and o.is_buy != request.is_buy and o.user != user
            ]
            best = min(hit_side, key=RefOrder.priority)
            assert (trade.px, maker_user) == (best.px, best.user), "price-time priority"
            assert 0 < trade.sz <= best.sz
            best.sz -= trade.sz
            if best.sz == 0:
                del ref[best.oid]
        resting = self.book_orders()
        # A fill may leave resting reduce-only orders able to increase a position: the venue
        # cancels them (reduceOnlyCanceled).
        for event in self.engine.events[self.seen :]:
            if isinstance(event, OrderUpdate) and event.status == "reduceOnlyCanceled":
                assert event.order.reduce_only
                ref.pop(event.order.oid, None)
        # Only the taker's own opposite orders within its limit may vanish: self-trade expiry.
        for oid, order in list(ref.items()):
            if oid not in resting:
                assert (order.user, order.asset) == (user, request.asset), "vanished"
                assert order.is_buy != request.is_buy
                assert limit is not None
                assert order.px <= limit if request.is_buy else order.px >= limit
                del ref[oid]
        if isinstance(result, Filled):
            assert result.total_sz == sum(t.sz for t in trades)
            avg = sum(t.px * t.sz for t in trades) / result.total_sz / 10**spec.px_decimals
            assert abs(result.avg_px - avg) <= 1e-9 * avg
        if isinstance(result, Resting):
            new = self.engine.books[request.asset].orders[result.oid]
            assert result.oid > self.max_oid
            assert new.sz == new.orig_sz - sum(t.sz for t in trades)
            assert new.cloid == request.cloid
            ref[result.oid] = RefOrder(
                new.oid, new.user, new.asset, new.is_buy, new.px, new.sz, new.cloid
            )
        self.check_book_is(ref)
        self.check_events(ref, taker=user)

    def book_orders(self) -> dict[int, Order]:
        return {o.oid: o for book in self.engine.books for o in book.iter_orders()}

    def check_book_is(self, ref: dict[int, RefOrder]) -> None:
        assert snapshot(self.engine) == ref

    def check_no_change(self, before: dict[int, RefOrder]) -> None:
        self.check_book_is(before)
        assert not self.engine.events[self.seen :]

    def check_schedules(self, before: dict[int, RefOrder]) -> None:
        new = self.engine.events[self.seen :]
        canceled = {e.oid for e in new if isinstance(e, NonUserCancel)}
        updates = {e.order.oid: e.status for e in new if isinstance(e, OrderUpdate)}
        assert set(updates.values()) <= {"scheduledCancel"}
        assert set(updates) == canceled
        after = snapshot(self.engine)
        assert set(before) - set(after) == canceled
        assert not set(after) - set(before)
        self.check_events(after, taker=None)

    def check_book_not_crossed(self) -> None:
        for book in self.engine.books:
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None:
                assert bid < ask

    def check_events(self, ref: dict[int, RefOrder], taker: str | None) -> None:
        new = self.engine.events[self.seen :]
        self.seen = len(self.engine.events)
        oids = [o.oid for o in ref.values()]
        oids += [e.order.oid for e in new if isinstance(e, OrderUpdate)]
        self.max_oid = max([self.max_oid, *oids])
        trades = [e for e in new if isinstance(e, Trade)]
        fills = [e for e in new if isinstance(e, UserFill)]
        # One maker fill and one taker fill per trade for every real user in it.
        expected = sorted(
            (trade.tid, user)
            for trade in trades
            for user in (trade.buyer, trade.seller)
            if user != MKT
        )
        assert sorted((fill.tid, fill.user) for fill in fills) == expected
        by_tid = {trade.tid: trade for trade in trades}
        for fill in fills:
            trade = by_tid[fill.tid]
            assert (fill.px, fill.sz, fill.asset) == (trade.px, trade.sz, trade.asset)
            assert fill.crossed == (fill.user == taker)
            assert fill.is_buy == (fill.user == trade.buyer)

    def check_conservation(self) -> None:
        """Per order, per user and overall, at the end of a run."""
        events = self.engine.events
        filled: dict[int, int] = defaultdict(int)
        signed: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for fill in (e for e in events if isinstance(e, UserFill)):
            filled[fill.oid] += fill.sz
            signed[fill.user][fill.asset] += fill.sz if fill.is_buy else -fill.sz
        traded: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        bought = sold = 0
        for trade in (e for e in events if isinstance(e, Trade)):
            assert trade.buyer != trade.seller
            traded[trade.buyer][trade.asset] += trade.sz
            traded[trade.seller][trade.asset] -= trade.sz
            bought += trade.sz
            sold += trade.sz
        assert bought == sold
        for asset in range(len(SPECS)):
            assert sum(per_user[asset] for per_user in traded.values()) == 0
        for user in (*RICH, POOR):
            account = self.engine.accounts[user]
            for asset in range(len(SPECS)):
                szi = account.position(asset).szi
                assert szi == signed[user][asset] == traded[user][asset]
        last: dict[int, OrderUpdate] = {}
        for update in (e for e in events if isinstance(e, OrderUpdate)):
            previous = last.get(update.order.oid)
            assert previous is None or previous.status not in TERMINAL, "no update after the end"
            last[update.order.oid] = update
        resting = self.book_orders()
        for oid, update in last.items():
            order = update.order
            if update.status == "open":
                assert oid in resting
                remaining = resting[oid].sz
                assert order.orig_sz == remaining + filled[oid]
            else:
                assert update.status in TERMINAL
                assert oid not in resting
                assert order.orig_sz == order.sz + filled[oid]
                if update.status == "filled":
                    assert order.sz == 0
            record = self.engine.find_record(update.user, oid)
            assert record is not None
            assert record.status == update.status
        # Every real user's resting order has been announced as open.
        for oid, order in resting.items():
            if order.user != MKT:
                assert last[oid].status == "open"


def comparable(harness: Harness) -> list[tuple[Any, ...]]:
    """Events as plain tuples: ``Order`` snapshots compare by identity."""
    return [(type(e).__name__, *attrs.astuple(e)) for e in harness.engine.events]


@settings(max_examples=150, deadline=None)
@given(op_lists)
def test_random_operations_keep_the_engine_consistent(operations: list[Op]) -> None:
    harness = Harness()
    for op in operations:
        harness.run(op)
    harness.check_conservation()


@settings(max_examples=40, deadline=None)
@given(op_lists)
def test_same_operations_give_the_same_events(operations: list[Op]) -> None:
    first, second = Harness(), Harness()
    for op in operations:
        first.run(op)
        second.run(op)
    assert comparable(first) == comparable(second)
    assert first.results == second.results
    assert snapshot(first.engine) == snapshot(second.engine)


def test_a_busy_sequence_trades() -> None:
    """The generators reach the interesting paths: a fixed run that trades and rejects."""
    harness = Harness()
    script: list[Op] = [
        Place(MKT, 0, False, 2, 500, "Gtc", False, None),
        Place(MKT, 0, False, 2, 500, "Gtc", False, None),
        Place(MKT, 0, True, -2, 500, "Gtc", False, None),
        Place("u0", 0, False, 1, 300, "Alo", False, 0),
        Place("u1", 0, True, 3, 1500, "Gtc", False, 1),  # sweeps u0 and the market, rests
        Place("u1", 0, True, -1, 300, "Gtc", False, 1),  # duplicate cloid
        Modify("u1", 1, True, True, 4, 300, "Gtc"),  # by cloid 1
        Place("u1", 0, False, 0, 300, "Gtc", True, None),  # reduce-only, expires its own bid
        Place(POOR, 1, True, 0, 700, "Gtc", False, None),  # $350 on $15: out of margin
        Schedule("u1", 5_000),
        Cancel("u0", 0),
        CancelByCloid("u1", 0, 1),
        *[Cancel(MKT, 0)] * 9,  # the schedule fires during these
    ]
    for op in script:
        harness.run(op)
    harness.check_conservation()
    reasons = {r.reason for r in harness.results if isinstance(r, Rejected)}
    assert {Reject.DUPLICATE_CLOID, Reject.MARGIN} <= reasons
    assert sum(isinstance(e, Trade) for e in harness.engine.events) >= 3
    assert any(
        isinstance(e, OrderUpdate) and e.status == "scheduledCancel" for e in harness.engine.events
    )


# --- the synthetic market's own way in -----------------------------------------------------------

ORDER = st.tuples(
    st.sampled_from((MKT, "u0")),
    st.sampled_from((0, 1)),
    st.booleans(),
    st.integers(min_value=-6, max_value=6),
    st.integers(min_value=1, max_value=400),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ORDER, min_size=1, max_size=60))
def test_rest_system_is_place_ticks_for_a_system_users_order(orders: list[Any]) -> None:
    """System users' Gtc orders sent through ``rest_system`` (a run of them on one asset in one
    call, as the synthetic market sends its ladder) leave the same books, events and numbering
    as each through ``place_ticks``; other users' orders in between go the usual way."""
    engines = [Engine(SPECS, system_users=(MKT,)) for _ in range(2)]
    for engine in engines:
        engine.fund("u0", 1_000_000.0)
    runs = itertools.groupby(orders, key=lambda order: (order[0], order[1]))
    for time, ((user, asset), run) in enumerate(runs, start=1):
        spec = SPECS[asset]
        quotes = []
        for _, _, is_buy, level, lots in run:
            ticks = spec.parse_px(price_text(asset, level))
            assert ticks is not None
            quotes.append((is_buy, ticks, lots * 10))
        if user == MKT:
            placed = [
                engines[0].place_ticks(user, asset, is_buy, ticks, lots, T0 + time)
                for is_buy, ticks, lots in quotes
            ]
            rested = engines[1].rest_system(user, asset, quotes, T0 + time)
            assert rested == [result.oid for result in placed if isinstance(result, Resting)]
        else:
            for is_buy, ticks, lots in quotes:
                placed_one = engines[0].place_ticks(user, asset, is_buy, ticks, lots, T0 + time)
                assert (
                    engines[1].place_ticks(user, asset, is_buy, ticks, lots, T0 + time)
                    == placed_one
                )
    first, second = engines
    check_tally(first)
    check_tally(second)
    assert repr(first.events) == repr(second.events)  # orders compare by identity
    for one, other in zip(first.books, second.books, strict=True):
        assert one.levels(True, 20) == other.levels(True, 20)
        assert one.levels(False, 20) == other.levels(False, 20)
        assert [attrs.astuple(o) for o in one.iter_orders()] == [
            attrs.astuple(o) for o in other.iter_orders()
        ]
